/**
 * Batch norm's saved input in a low-precision format: the forward output is unchanged, backward
 * keeps codes instead of float32 values, and the gradients stay close to the float32 ones.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward, type GradNode } from '../../src/autograd/index.js';
import { clearBufferPool, setBufferPoolLimit } from '../../src/kernels/index.js';
import { batchNorm2d, mul, sum } from '../../src/ops/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

function run(saveAs: string | null, zeroChannel = false) {
  const g = new Generator(3);
  const x = Tensor.randn([4, 3, 5, 5], g).requireGrad();
  if (zeroChannel) for (let n = 0; n < 4; n++) x.data.fill(1.5, (n * 3 + 1) * 25, (n * 3 + 2) * 25);
  const w = Tensor.from([1.5, -0.5, 2]).requireGrad();
  const b = Tensor.from([0.1, 0.2, 0.3]).requireGrad();
  const y = batchNorm2d(x, w, b, Tensor.zeros([3]), Tensor.ones([3]), { training: true, saveAs });
  const saved = (y.gradFn as GradNode<{ xhat: unknown }>).saved.xhat;
  // A loss whose gradient differs per element, so every term of the backward formula matters.
  backward(sum(mul(y, Tensor.randn([4, 3, 5, 5], new Generator(9)))));
  return { y: y.data, saved, gx: x.grad!.data, gw: w.grad!.data, gb: b.grad!.data };
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

describe('batch norm with non-finite input', () => {
  test('training on a batch with a NaN or Inf is refused, and the running statistics stay as they were', () => {
    for (const bad of [NaN, Infinity]) {
      const x = Tensor.randn([2, 3, 4, 4], new Generator(5));
      x.data[2 * 16 + 5] = bad;
      const runningMean = Tensor.from([0.1, 0.2, 0.3]);
      const runningVar = Tensor.from([1, 2, 3]);
      assert.throws(() => batchNorm2d(x, null, null, runningMean, runningVar, { training: true }), /batchNorm2d: channel 2 of the batch holds NaN or Inf .* running statistics are left as they were/);
      assert.deepEqual(Array.from(runningMean.data), Array.from(Float32Array.of(0.1, 0.2, 0.3)));
      assert.deepEqual(Array.from(runningVar.data), [1, 2, 3]);
    }
  });
});

describe('batch norm with a low-precision saved input', () => {
  const exact = run(null);

  test('float32 by default: the saved input is float32', () => {
    assert.ok(exact.saved instanceof Float32Array);
  });

  for (const [format, bound] of [['e4m3', 0.05], ['e5m2', 0.1], ['bf16', 0.01]] as const) {
    test(`${format}: same output, codes saved, gradients within ${bound} of float32`, () => {
      const r = run(format);
      assert.deepEqual(r.y, exact.y);
      const saved = r.saved as { codes: Uint8Array | Uint16Array; format: string; scale: number };
      assert.ok(!(r.saved instanceof Float32Array) && saved.codes.length === 300);
      assert.equal(saved.codes.BYTES_PER_ELEMENT, format === 'bf16' ? 2 : 1);
      assert.equal(Math.log2(saved.scale) % 1, 0, 'power-of-two scale');
      assert.deepEqual(r.gb, exact.gb, 'the bias gradient does not read the saved input');
      for (const [name, got, want] of [['input', r.gx, exact.gx], ['weight', r.gw, exact.gw]] as const) {
        const e = relativeError(got, want);
        assert.ok(e > 0 && e < bound, `${name} gradient relative error ${e}`);
      }
    });
  }

  test('a constant channel (normalized input all zero) stays finite', () => {
    const r = run('e4m3', true);
    assert.ok(r.gx.every(Number.isFinite) && r.gw.every(Number.isFinite));
  });

  test('saved codes go back to the pool after backward and serve the next step, with the same values as fresh ones', () => {
    const step = () => {
      const g = new Generator(4);
      const x = Tensor.randn([8, 4, 32, 32], g).requireGrad();
      const w = Tensor.from([1.5, -0.5, 2, 1]).requireGrad();
      const y = batchNorm2d(x, w, null, Tensor.zeros([4]), Tensor.ones([4]), { training: true, saveAs: 'e5m2' });
      const codes = (y.gradFn as GradNode<{ xhat: { codes: Uint8Array } }>).saved.xhat.codes;
      backward(sum(mul(y, Tensor.randn([8, 4, 32, 32], new Generator(9)))));
      return { codes, gx: x.grad!.data, gw: w.grad!.data };
    };
    const previous = setBufferPoolLimit(0);
    let fresh;
    try {
      fresh = step();
    } finally {
      setBufferPoolLimit(previous);
    }
    clearBufferPool();
    const first = step();
    // A stale array of the same length and width, full of other codes, handed back in between.
    first.codes.fill(0x7b);
    const second = step();
    assert.equal(second.codes, first.codes, 'the second step reused the first step\'s code array');
    assert.deepEqual(second.gx, fresh.gx);
    assert.deepEqual(second.gw, fresh.gw);
    assert.deepEqual(first.gx, fresh.gx);
  });
});

