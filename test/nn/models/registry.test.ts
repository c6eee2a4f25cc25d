import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UnknownNameError } from '../../../src/errors.js';
import { MODELS, buildModel, modelInfo, withoutInit } from '../../../src/nn/index.js';

// The standard counts (torchvision for the classifiers; see docs/models.md for UNet and Fast-SCNN).
const COUNTS: [string, { classes?: number; inChannels?: number }, number][] = [
  ['resnet18', {}, 11_689_512],
  ['resnet101', {}, 44_549_160],
  ['resnet18-cifar', { classes: 100 }, 11_220_132],
  ['resnet20', { classes: 10 }, 269_722],
  ['squeezenet1_0', {}, 1_248_424],
  ['squeezenet1_1', {}, 1_235_496],
  ['unet', { classes: 2, inChannels: 3 }, 31_037_698],
  ['fastscnn', { classes: 19 }, 1_138_051],
];

describe('model zoo', () => {
  for (const [name, options, count] of COUNTS) {
    test(`${name} has ${count.toLocaleString('en')} parameters`, () => {
      assert.equal(withoutInit(() => buildModel(name, options)).numParameters(), count);
    });
  }

  test('every model is listed with its default configuration', () => {
    assert.deepEqual(MODELS.map((m) => m.name).sort(), [
      'fastscnn', 'resnet101', 'resnet101-cifar', 'resnet18', 'resnet18-cifar', 'resnet20', 'squeezenet1_0', 'squeezenet1_1', 'unet',
    ]);
    assert.equal(modelInfo('resnet18-cifar').classes, 100);
  });

  test('classes and input channels change only the first and last layers', () => {
    const base = buildModel('resnet18-cifar', { classes: 100 }).numParameters();
    const mnist = buildModel('resnet18-cifar', { classes: 10, inChannels: 1 }).numParameters();
    assert.equal(base - mnist, 2 * 64 * 9 + 90 * 513);
  });

  test('an unknown model name lists the choices', () => {
    assert.throws(() => buildModel('resnet19'), (e: unknown) => e instanceof UnknownNameError && /resnet19.*resnet18, resnet101/.test(e.message));
  });
});
