import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../../src/autograd/index.js';
import { buildModel } from '../../../src/nn/index.js';
import { sum } from '../../../src/ops/index.js';
import { Tensor } from '../../../src/tensor/index.js';
import { overfit, randomInput, randomLabels } from '../../helpers/overfit.js';

describe('UNet', () => {
  test('output has the input size and one channel per class; paths follow the reference', () => {
    const model = buildModel('unet', { width: 4, depth: 3, classes: 5, inChannels: 1 });
    assert.deepEqual(model.call(Tensor.zeros([2, 1, 16, 24])).shape, [2, 5, 16, 24]);
    const names = model.namedParameters().map(([n]) => n);
    assert.ok(names.includes('inc.double_conv.0.weight') && names.includes('down3.maxpool_conv.1.double_conv.3.weight'));
    assert.ok(names.includes('up1.up.weight') && names.includes('outc.conv.bias') && !names.includes('down4.maxpool_conv.1.double_conv.0.weight'));
  });

  test('an input that the depth cannot halve evenly is refused with the rule', () => {
    const model = buildModel('unet', { width: 4, depth: 3 });
    assert.throws(() => model.call(Tensor.zeros([1, 3, 20, 16])), /multiples of 8/);
  });

  test('backward reaches every parameter, and it overfits a tiny segmentation batch', () => {
    const model = buildModel('unet', { width: 4, depth: 2, classes: 3, inChannels: 1, seed: 3 });
    backward(sum(model.call(randomInput([1, 1, 8, 8], 1))));
    for (const [name, p] of model.namedParameters()) assert.ok(p.grad && p.grad.data.some((v) => v !== 0), name);
    const { first, last } = overfit(model, randomInput([2, 1, 8, 8], 2), randomLabels(2 * 64, 3, 4), 60, 0.02);
    assert.ok(last < first * 0.3, `loss ${first} -> ${last}`);
  });
});
