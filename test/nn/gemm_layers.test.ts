import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Conv2d, ConvTranspose2d, FLOAT32_COMPUTE, Linear, type GemmCompute } from '../../src/nn/index.js';
import { conv2d, convTranspose2d, linear } from '../../src/ops/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';
import { randomTensor } from '../helpers/tensors.js';

describe('GEMM layers', () => {
  const g = new Generator(5);

  test('Conv2d computes conv2d with its options; shapes and MACs', () => {
    const layer = new Conv2d(4, 6, 3, { stride: 2, padding: 1, groups: 2, generator: g });
    assert.deepEqual(layer.weight.shape, [6, 2, 3, 3]);
    const x = randomTensor([2, 4, 7, 7], 1);
    const y = layer.call(x);
    assert.deepEqual(y.data, conv2d(x, layer.weight, layer.bias, { stride: 2, padding: 1, groups: 2 }).data);
    assert.equal(layer.macs([x], y), y.size * 2 * 9);
    assert.equal(layer.describe(), 'Conv2d(4, 6, k=3x3, s=2, g=2)');
  });

  test('ConvTranspose2d weight is [C_in, C_out/groups, KH, KW] and doubles the size at stride 2', () => {
    const layer = new ConvTranspose2d(4, 2, 2, { stride: 2, generator: g });
    assert.deepEqual(layer.weight.shape, [4, 2, 2, 2]);
    const x = randomTensor([1, 4, 3, 3], 2);
    const y = layer.call(x);
    assert.deepEqual(y.shape, [1, 2, 6, 6]);
    assert.deepEqual(y.data, convTranspose2d(x, layer.weight, layer.bias, { stride: 2 }).data);
  });

  test('Linear checks its input width', () => {
    const layer = new Linear(3, 2, { generator: g, bias: false });
    assert.equal(layer.bias, null);
    const x = randomTensor([5, 3], 3);
    assert.deepEqual(layer.call(x).data, linear(x, layer.weight).data);
    assert.throws(() => layer.call(randomTensor([5, 4], 4)), /expected \[N, 3\]/);
  });

  test('a replaced compute is what the layer runs (the hook recipes use)', () => {
    const calls: string[] = [];
    const spy: GemmCompute = {
      name: 'spy',
      run: (x, weight, bias, product) => (calls.push(JSON.stringify(product)), FLOAT32_COMPUTE.run(x, weight, bias, product)),
    };
    const conv = new Conv2d(1, 1, 1, { generator: g, stride: 2 });
    const up = new ConvTranspose2d(1, 1, 2, { generator: g, stride: 2 });
    const lin = new Linear(1, 1, { generator: g });
    for (const layer of [conv, up, lin]) layer.compute = spy;
    conv.call(Tensor.ones([1, 1, 1, 1]));
    up.call(Tensor.ones([1, 1, 1, 1]));
    lin.call(Tensor.ones([1, 1]));
    assert.deepEqual(calls.map((c) => JSON.parse(c)), [
      { kind: 'conv2d', options: { stride: 2, groups: 1 } },
      { kind: 'convTranspose2d', options: { stride: 2, groups: 1 } },
      { kind: 'linear' },
    ]);
  });

  test('bad configurations are refused with the reason', () => {
    assert.throws(() => new Conv2d(3, 4, 3, { groups: 2, generator: g }), /do not divide into 2 groups/);
    assert.throws(() => new Conv2d(0, 4, 3, { generator: g }), /inChannels is 0/);
    assert.throws(() => new Linear(2, 1.5, { generator: g }), /outFeatures is 1.5/);
  });
});
