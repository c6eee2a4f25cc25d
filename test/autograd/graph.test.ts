/** The recorded graph refers to handles, never to tensors: it keeps alive only what ops save. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward, type GradNode } from '../../src/autograd/index.js';
import { linear, mul, relu, sum } from '../../src/ops/index.js';
import { GradHandle, Tensor } from '../../src/tensor/index.js';
import { isCollected } from '../helpers/collect.js';

describe('autograd graph', () => {
  test('nodes point at the inputs\' handles, which carry shape and gradient state but no values', () => {
    const x = Tensor.from([1, -2, 3], [1, 3]).requireGrad();
    const w = Tensor.from([1, 1, 1, 2, 2, 2], [2, 3]).requireGrad();
    const y = relu(linear(x, w));
    const node = y.gradFn as GradNode;
    assert.equal(node.op, 'relu');
    const [h] = node.inputs;
    assert.ok(h instanceof GradHandle);
    assert.ok(!('data' in h!));
    assert.deepEqual(h!.shape, [1, 2]);
    assert.equal((h!.gradFn as GradNode).inputs[0], x.handle);
  });

  test('an activation that no gradient rule needs is freed after the forward pass', async () => {
    const x = Tensor.from([1, -2, 3, 0.5], [2, 2]);
    const w = Tensor.from([0.5, -1, 2, 1], [2, 2]).requireGrad();
    let h: Tensor | null = linear(x, w);
    const ref = new WeakRef(h.data);
    const y = sum(relu(h)); // relu keeps a bit mask, not h
    h = null;
    assert.equal(await isCollected(ref), true, 'relu input still referenced');
    backward(y);
    // x w^T = [[2.5, 0], [1, 6.5]]: dW[o] sums the rows of x whose output o is positive.
    assert.deepEqual(Array.from(w.grad!.data), [4, -1.5, 3, 0.5]);
  });

  test('an activation an op saves stays alive until backward (control)', async () => {
    const a = Tensor.from([1, 2]).requireGrad();
    let h: Tensor | null = mul(a, Tensor.from([3, 4]));
    const ref = new WeakRef(h.data);
    const y = sum(mul(h, h)); // mul keeps both operands
    h = null;
    assert.equal(await isCollected(ref), false);
    backward(y);
    assert.deepEqual(Array.from(a.grad!.data), [2 * 3 * 3, 2 * 8 * 4]);
  });
});
