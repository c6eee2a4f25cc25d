import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { linear, matmul, sum } from '../../src/ops/index.js';
import { productOperands } from '../../src/ops/saved.js';
import { backward, type GradNode } from '../../src/autograd/index.js';
import { Tensor } from '../../src/tensor/index.js';

describe('what products keep for backward', () => {
  test('each operand\'s values only when the other needs a gradient', () => {
    const a = Tensor.from([1, 2]);
    const b = Tensor.from([3, 4]);
    assert.deepEqual(productOperands(a, b), { aData: null, bData: null });
    b.requireGrad();
    assert.deepEqual(productOperands(a, b), { aData: a.data, bData: null });
    a.requireGrad();
    assert.deepEqual(productOperands(a, b), { aData: a.data, bData: b.data });
  });

  test('a frozen weight: linear keeps the weight, not the input, and the input gradient is right', () => {
    const x = Tensor.from([1, 2, 3, 4], [2, 2]).requireGrad();
    const w = Tensor.from([1, 0, 2, 1], [2, 2]);
    const y = linear(x, w);
    assert.deepEqual((y.gradFn as GradNode).saved, { aData: null, bData: w.data });
    backward(sum(y));
    // d sum(x w^T) / dx = column sums of w, per row of x
    assert.deepEqual(Array.from(x.grad!.data), [3, 1, 3, 1]);
    const z = matmul(Tensor.from([1, 2], [1, 2]), Tensor.from([1, 2], [2, 1]).requireGrad());
    assert.equal(((z.gradFn as GradNode).saved as { bData: unknown }).bData, null);
  });
});
