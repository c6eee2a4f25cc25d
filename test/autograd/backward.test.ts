import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward, noGrad, tape } from '../../src/autograd/index.js';
import { bufferPoolStats, setBufferPoolLimit, takeBuffer } from '../../src/kernels/index.js';
import { BatchNorm2d, buildModel } from '../../src/nn/index.js';
import { add, mul, relu, softmaxCrossEntropy, sum } from '../../src/ops/index.js';
import { applyRecipe, presetRecipe } from '../../src/quant/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { uniform } from '../helpers/random.js';

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

describe('backward recycles dead gradients', () => {
  const step = (recipe: string) => {
    const model = buildModel('resnet20', { width: 8, classes: 10, inChannels: 1, seed: 3 });
    const session = applyRecipe(model, presetRecipe(recipe), { seed: 1 });
    const x = new Tensor(uniform(4 * 28 * 28, 5), [4, 1, 28, 28]);
    const logits = model.call(x);
    backward(session.scaleLoss(softmaxCrossEntropy(logits, Int32Array.from([1, 2, 3, 4]))));
    return { logits: Float32Array.from(logits.data), grads: model.namedParameters().map(([name, p]) => [name, Float32Array.from(p.grad!.data)] as const) };
  };

  for (const recipe of ['fp32', 'fp8']) {
    test(`${recipe}: a ResNet step gives the same bits with the buffer pool as without`, () => {
      const previous = setBufferPoolLimit(0);
      let plain;
      try {
        plain = step(recipe);
      } finally {
        setBufferPoolLimit(previous);
      }
      const before = bufferPoolStats().reused;
      // Twice: the second step's forward pass takes arrays the first step's backward pass freed.
      step(recipe);
      const pooled = step(recipe);
      assert.ok(bufferPoolStats().reused > before, 'arrays were reused');
      assert.deepEqual(pooled.logits, plain.logits);
      for (let i = 0; i < plain.grads.length; i++) assert.deepEqual(pooled.grads[i], plain.grads[i], plain.grads[i][0]);
    });
  }

  test('one array returned for two inputs, a tensor used twice, and a kept graph stay correct', () => {
    const n = 1 << 15;
    const values = uniform(n, 9);
    const x = new Tensor(Float32Array.from(values), [n]).requireGrad();
    const h = relu(x);
    // add hands g to both inputs (h twice): the second gets a copy, then both reach relu and x.
    const y = sum(mul(add(h, h), add(h, x)));
    backward(y, { retainGraph: true });
    const once = Float32Array.from(x.grad!.data);
    backward(y);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      // y = sum(2h (h + x)) with h = relu(x): 4x^2 where x > 0 (gradient 8x), 0 elsewhere.
      const expected = v > 0 ? 8 * v : 0;
      assert.ok(Math.abs(once[i] - expected) <= 1e-5 * (1 + Math.abs(expected)), `x.grad[${i}] = ${once[i]} for x = ${v}`);
      assert.equal(x.grad!.data[i], Math.fround(once[i] + once[i]), `second pass through the kept graph [${i}]`);
    }
  });
});

describe('a kept graph keeps what its ops saved', () => {
  test('batch norm\'s saved input is not recycled while the graph is kept for another pass', () => {
    const bn = new BatchNorm2d(4);
    const x = new Tensor(uniform(8 * 4 * 32 * 32, 11), [8, 4, 32, 32]).requireGrad();
    const c = new Tensor(uniform(x.size, 12), x.shape);
    const y = sum(mul(bn.call(x), c));
    backward(y, { retainGraph: true });
    const once = Float32Array.from(x.grad!.data);
    // Whatever the pool holds now gets overwritten before the second pass.
    for (let k = 0; k < 4; k++) takeBuffer(x.size).fill(Number.NaN);
    backward(y);
    for (let i = 0; i < x.size; i++) assert.equal(x.grad!.data[i], Math.fround(once[i] + once[i]), `x.grad[${i}]`);
  });
});
