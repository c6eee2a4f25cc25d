import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward, dropIntermediate, noGrad, tape, withActivationRelease } from '../../src/autograd/index.js';
import { bufferPoolStats, recycle, setBufferPoolLimit, takeBuffer } from '../../src/kernels/index.js';
import { BatchNorm2d, buildModel } from '../../src/nn/index.js';
import { add, conv2d, mul, relu, relu6, reshape, softmaxCrossEntropy, sum } from '../../src/ops/index.js';
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

describe('backward releases the activations it was told are dead', () => {
  const step = (recipe: string, release: boolean) => {
    const model = buildModel('resnet20', { width: 8, classes: 10, inChannels: 1, seed: 3 });
    const session = applyRecipe(model, presetRecipe(recipe), { seed: 1 });
    const x = new Tensor(uniform(16 * 28 * 28, 5), [16, 1, 28, 28]);
    let seen = new Float32Array(0);
    const run = () => {
      const logits = model.call(x);
      seen = Float32Array.from(logits.data);
      backward(session.scaleLoss(softmaxCrossEntropy(logits, Int32Array.from({ length: 16 }, (_, i) => i % 10))), { releaseActivations: release });
    };
    if (release) withActivationRelease(run);
    else run();
    // Stale pool contents must not leak into the next step.
    const stale = Array.from({ length: 8 }, () => takeBuffer(8 * 28 * 28 * 16).fill(Number.NaN));
    for (const a of stale) recycle(a);
    return { logits: seen, input: Float32Array.from(x.data), x, grads: model.namedParameters().map(([name, p]) => [name, Float32Array.from(p.grad!.data)] as const) };
  };

  for (const recipe of ['fp32', 'fp8']) {
    test(`${recipe}: ResNet steps give the same bits with the activations released as without, and the activations are reused`, () => {
      // Fresh bytes of the second step of each pair: the first one's backward filled the pool.
      const fresh = (fn: () => ReturnType<typeof step>): [ReturnType<typeof step>, number] => {
        const before = bufferPoolStats().freshBytes;
        return [fn(), bufferPoolStats().freshBytes - before];
      };
      const plain = [step(recipe, false), step(recipe, false)];
      const [plainSecond, keptBytes] = fresh(() => step(recipe, false));
      const released = [step(recipe, true), step(recipe, true)];
      const [, releasedBytes] = fresh(() => step(recipe, true));
      void plainSecond;
      // A float32 step's activations are the convolutions' saved inputs, handed back by backward;
      // an fp8 step's are dead once quantized, handed back in the forward pass, and its codes
      // come from the pool: either way the next step takes them instead of fresh memory.
      assert.ok(releasedBytes < 0.5 * keptBytes, `fresh bytes: ${releasedBytes} released, ${keptBytes} kept`);
      for (let s = 0; s < 2; s++) {
        assert.deepEqual(released[s].logits, plain[s].logits);
        assert.deepEqual(released[s].x.data, released[s].input, 'the input data is never recycled');
        for (let i = 0; i < plain[s].grads.length; i++) assert.deepEqual(released[s].grads[i], plain[s].grads[i], plain[s].grads[i][0]);
      }
    });
  }

  test('a convolution\'s saved input comes back to the pool once its rule has run; parameters and data never do', () => {
    // Weights of 64 x 64 x 3 x 3: large enough for the pool, which takes no small arrays.
    const x = new Tensor(uniform(2 * 64 * 16 * 16, 21), [2, 64, 16, 16]);
    const w1 = new Tensor(uniform(64 * 64 * 9, 22), [64, 64, 3, 3]).requireGrad();
    const w2 = new Tensor(uniform(64 * 64 * 9, 23), [64, 64, 3, 3]).requireGrad();
    const h = relu(conv2d(x, w1, null, { padding: 1 }));
    const y = conv2d(h, reshape(w2, [64, 64, 3, 3]), null, { padding: 1 });
    const hData = h.data;
    backward(sum(y), { releaseActivations: true });
    const handed: Float32Array[] = [];
    for (let k = 0; k < 8; k++) handed.push(takeBuffer(h.size));
    assert.ok(handed.includes(hData), 'the activation went back to the pool');
    assert.ok(!handed.includes(x.data), 'the input data stays the caller\'s');
    const weights: Float32Array[] = [];
    for (let k = 0; k < 8; k++) weights.push(takeBuffer(w2.size));
    assert.ok(!weights.includes(w2.data) && !weights.includes(w1.data), 'a parameter (even through a reshape) is never recycled');
  });

  test('an activation that some op keeps without declaring it (a ReLU6 input) is never recycled', () => {
    const x = new Tensor(uniform(2 * 8 * 32 * 32, 31), [2, 8, 32, 32]);
    const w1 = new Tensor(uniform(8 * 8 * 9, 32), [8, 8, 3, 3]).requireGrad();
    const w2 = new Tensor(uniform(8 * 8 * 9, 33), [8, 8, 3, 3]).requireGrad();
    const run = (release: boolean) => {
      w1.grad = null;
      w2.grad = null;
      const h = conv2d(x, w1, null, { padding: 1 });
      // relu6 keeps h's values; the second convolution borrows them; backward runs the convolution's rule first.
      const y = add(sum(relu6(h)), sum(conv2d(h, w2, null, { padding: 1 })));
      backward(y, { releaseActivations: release });
      return { h: h.data, g1: Float32Array.from(w1.grad!.data), g2: Float32Array.from(w2.grad!.data) };
    };
    const plain = run(false);
    const released = run(true);
    const handed: Float32Array[] = [];
    for (let k = 0; k < 8; k++) handed.push(takeBuffer(x.size));
    assert.ok(!handed.includes(released.h), 'kept by relu6: not recycled');
    assert.deepEqual(released.g1, plain.g1);
    assert.deepEqual(released.g2, plain.g2);
  });
});

describe('dropIntermediate', () => {
  const big = (seed: number) => new Tensor(uniform(1 << 15, seed), [1 << 15]);
  const handedOut = (n: number) => {
    const taken = Array.from({ length: 8 }, () => takeBuffer(n));
    for (const a of taken) recycle(a);
    return taken;
  };

  test('hands back a dead op output inside withActivationRelease, and nothing outside it', () => {
    const w = big(41).requireGrad();
    const x = big(42);
    const h = mul(x, w);
    const y = relu(h);
    dropIntermediate(h, y, x);
    assert.ok(!handedOut(h.size).includes(h.data), 'outside the mode nothing is recycled');
    withActivationRelease(() => {
      const h2 = mul(x, w);
      const y2 = relu(h2);
      dropIntermediate(h2, y2, x);
      assert.ok(handedOut(h2.size).includes(h2.data), 'a dead intermediate goes back to the pool');
    });
  });

  test('keeps the chain\'s input, an array shared with the next tensor, parameters, and whatever a node saved', () => {
    const w = big(43).requireGrad();
    const x = big(44);
    withActivationRelease(() => {
      const h = mul(x, w); // mul keeps both operands' values: h is kept by no node yet
      const inPlace = relu(h, { inPlace: true });
      dropIntermediate(h, inPlace, x);
      assert.ok(!handedOut(h.size).includes(h.data), 'shared with the next tensor');
      const kept = mul(inPlace, w); // mul saves inPlace's values for w's gradient
      dropIntermediate(inPlace, kept, x);
      assert.ok(!handedOut(h.size).includes(inPlace.data), 'saved by a node');
      const view = reshape(w, [1 << 15]);
      dropIntermediate(view, relu(view), x);
      assert.ok(!handedOut(w.size).includes(w.data), 'a view of a parameter');
      dropIntermediate(x, relu(x), x);
      assert.ok(!handedOut(x.size).includes(x.data), 'the chain\'s input');
    });
  });
});

describe('dropIntermediate without a graph (evaluation)', () => {
  test('hands back what ops allocated, never the input, a view of it or a parameter', () => {
    const x = new Tensor(uniform(1 << 15, 51), [1 << 15]);
    const w = new Tensor(uniform(1 << 15, 52), [1 << 15]).requireGrad();
    const handedBack = (a: Float32Array) => {
      const taken = Array.from({ length: 8 }, () => takeBuffer(a.length));
      for (const t of taken) recycle(t);
      return taken.includes(a);
    };
    withActivationRelease(() => noGrad(() => {
      const h = mul(x, w);
      dropIntermediate(h, relu(h), x);
      assert.ok(handedBack(h.data), 'an op\'s output');
      const inPlace = relu(mul(x, w), { inPlace: true });
      dropIntermediate(inPlace, relu(inPlace), x);
      assert.ok(handedBack(inPlace.data), 'an in-place op over an op\'s output');
      const view = reshape(x, [1 << 15]);
      dropIntermediate(view, relu(view), view);
      dropIntermediate(view, relu(view), w);
      assert.ok(!handedBack(x.data), 'a view of the data');
      const weightView = reshape(w, [1 << 15]);
      dropIntermediate(weightView, relu(weightView), x);
      assert.ok(!handedBack(w.data), 'a view of a parameter');
    }));
  });

  for (const recipe of ['fp32', 'fp8']) {
    test(`${recipe}: a ResNet's evaluation gives the same logits with its intermediates released`, () => {
      const model = buildModel('resnet20', { width: 8, classes: 10, inChannels: 1, seed: 3 });
      applyRecipe(model, presetRecipe(recipe), { seed: 1 });
      model.eval();
      const x = new Tensor(uniform(16 * 28 * 28, 53), [16, 1, 28, 28]);
      const plain = noGrad(() => Float32Array.from(model.call(x).data));
      for (let round = 0; round < 2; round++) {
        const released = withActivationRelease(() => noGrad(() => Float32Array.from(model.call(x).data)));
        const stale = Array.from({ length: 8 }, () => takeBuffer(8 * 28 * 28 * 16).fill(Number.NaN));
        for (const a of stale) recycle(a);
        assert.deepEqual(released, plain);
      }
      assert.deepEqual(Array.from(x.data), Array.from(uniform(16 * 28 * 28, 53)), 'the input is untouched');
    });
  }
});
