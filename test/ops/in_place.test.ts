/**
 * In-place batch norm, ReLU and addition: the same outputs and gradients as the out-of-place
 * ops, with the output sharing the input's array. The input is an intermediate (the output of a
 * convolution, as in a ResNet block), which is what the in-place contract allows.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../src/autograd/index.js';
import { add, batchNorm2d, conv2d, mul, relu, sum } from '../../src/ops/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

function block(inPlace: boolean) {
  const g = new Generator(5);
  // Spatial size past the native kernels' minimum, so the fast paths run in place too.
  const x = Tensor.randn([2, 4, 24, 24], g).requireGrad();
  const w1 = Tensor.randn([4, 4, 3, 3], g, 0.3).requireGrad();
  const w2 = Tensor.randn([4, 4, 3, 3], g, 0.3).requireGrad();
  const gamma = Tensor.from([1.5, -0.5, 2, 1]).requireGrad();
  const beta = Tensor.from([0.1, 0.2, 0.3, -0.1]).requireGrad();
  const bn = (t: Tensor) => batchNorm2d(t, gamma, beta, Tensor.zeros([4]), Tensor.ones([4]), { training: true, inPlace });
  const c1 = conv2d(x, w1, null, { padding: 1 });
  const h = relu(bn(c1), { inPlace });
  const c2 = conv2d(h, w2, null, { padding: 1 });
  const y = relu(add(bn(c2), x, { inPlace }), { inPlace });
  backward(sum(mul(y, Tensor.randn(y.shape, new Generator(9)))));
  return { y: y.data, c2: c2.data, gx: x.grad!.data, gw1: w1.grad!.data, gw2: w2.grad!.data, ggamma: gamma.grad!.data, gbeta: beta.grad!.data };
}

describe('in-place batch norm, ReLU and add', () => {
  test('give the same output and gradients as out of place, bit for bit', () => {
    const a = block(false);
    const b = block(true);
    for (const key of ['y', 'gx', 'gw1', 'gw2', 'ggamma', 'gbeta'] as const) assert.deepEqual(b[key], a[key], key);
  });

  test('the output shares the input array (the convolution output is overwritten)', () => {
    const b = block(true);
    assert.equal(b.y.buffer, b.c2.buffer);
    const a = block(false);
    assert.notEqual(a.y.buffer, a.c2.buffer);
  });

  test('in-place add needs operands of one shape', () => {
    assert.throws(() => add(Tensor.zeros([2, 3]), Tensor.zeros([1, 3]), { inPlace: true }), /inPlace needs operands of one shape/);
  });
});
