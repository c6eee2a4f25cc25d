import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../../src/autograd/index.js';
import { buildModel, summarize } from '../../../src/nn/index.js';
import { sum } from '../../../src/ops/index.js';
import { Tensor } from '../../../src/tensor/index.js';
import { overfit, randomInput, randomLabels } from '../../helpers/overfit.js';

describe('ResNets', () => {
  test('resnet18 (ImageNet stem) downsamples by 32 and names layers as torchvision', () => {
    const model = buildModel('resnet18', { width: 8, classes: 7 });
    const s = summarize(model, Tensor.zeros([1, 3, 64, 64]));
    assert.deepEqual(s.rows.find((r) => r.name === 'maxpool')!.outputShape, [1, 8, 16, 16]);
    assert.deepEqual(s.rows.find((r) => r.name === 'layer4.1.conv2')!.outputShape, [1, 64, 2, 2]);
    assert.ok(model.namedParameters().some(([n]) => n === 'layer2.0.downsample.0.weight'));
    assert.deepEqual(s.rows.at(-1)!.outputShape, [1, 7]);
  });

  test('resnet101 has bottlenecks with 4x expansion and 3-4-23-3 blocks', () => {
    const model = buildModel('resnet101', { width: 4, classes: 5 });
    const names = model.namedParameters().map(([n]) => n);
    assert.ok(names.includes('layer3.22.conv3.weight') && !names.includes('layer3.23.conv1.weight'));
    assert.deepEqual(model.call(Tensor.zeros([2, 3, 32, 32])).shape, [2, 5]);
  });

  test('a backward pass reaches every parameter (resnet18-cifar, resnet20)', () => {
    for (const [name, width] of [['resnet18-cifar', 4], ['resnet20', 4]] as const) {
      const model = buildModel(name, { width, classes: 3, inChannels: 1 });
      backward(sum(model.call(randomInput([2, 1, 16, 16], 1))));
      for (const [param, p] of model.namedParameters()) assert.ok(p.grad && p.grad.data.some((v) => v !== 0), `${name} ${param}`);
    }
  });

  test('every ResNet overfits a tiny batch (small widths)', () => {
    const cases = [['resnet20', 8, 16], ['resnet18-cifar', 8, 16], ['resnet101-cifar', 4, 16], ['resnet18', 8, 32], ['resnet101', 4, 32]] as const;
    for (const [name, width, size] of cases) {
      const model = buildModel(name, { width, classes: 4, seed: 2 });
      const { first, last } = overfit(model, randomInput([8, 3, size, size], 3), randomLabels(8, 4, 4), 30);
      assert.ok(last < first * 0.1, `${name}: loss ${first} -> ${last}`);
    }
  });
});
