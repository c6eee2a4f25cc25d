import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward, noGrad, tape } from '../../src/autograd/index.js';
import { add, mul, relu, sum } from '../../src/ops/index.js';
import { Tensor } from '../../src/tensor/index.js';

describe('backward', () => {
  test('a tensor used twice receives the sum of both gradients', () => {
    const x = Tensor.from([1, -2, 3]).requireGrad();
    const y = sum(add(mul(x, x), x)); // d/dx (x^2 + x) = 2x + 1
    backward(y);
    assert.deepEqual(Array.from(x.grad!.data), [3, -3, 7]);
  });

  test('gradients accumulate across calls until zeroed', () => {
    const x = Tensor.from([2]).requireGrad();
    backward(sum(mul(x, x)));
    backward(sum(mul(x, x)));
    assert.deepEqual(Array.from(x.grad!.data), [8]);
  });

  test('noGrad records nothing; tensors without requiresGrad get no gradient', () => {
    const x = Tensor.from([1, 2]).requireGrad();
    const c = Tensor.from([3, 4]);
    const y = noGrad(() => mul(x, c));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    backward(sum(mul(x, c)));
    assert.equal(c.grad, null);
    assert.deepEqual(Array.from(x.grad!.data), [3, 4]);
  });

  test('the tape lists inputs before the ops that use them, and is freed after backward', () => {
    const x = Tensor.from([1, -1]).requireGrad();
    const h = relu(x);
    const y = sum(h);
    const order = tape(y);
    assert.ok(order.indexOf(x.handle) < order.indexOf(h.handle) && order.indexOf(h.handle) < order.indexOf(y.handle));
    backward(y);
    assert.equal(h.gradFn, null);
  });

  test('clear errors for a non-scalar output without a gradient, and an output without grad', () => {
    const x = Tensor.from([1, 2]).requireGrad();
    assert.throws(() => backward(mul(x, x)), /output has shape \[2\]; pass options.gradient/);
    assert.throws(() => backward(Tensor.from([1])), /does not require gradients/);
    assert.throws(() => backward(mul(x, x), { gradient: Tensor.from([1, 2, 3]) }), /gradient has shape \[3\]; expected the output's shape \[2\]/);
  });
});
