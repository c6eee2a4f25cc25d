import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encode } from '../../src/kernels/codec.js';
import {
  absMax,
  absMaxReference,
  countUnderflowReference,
  dequantize,
  encodeScaled,
  encodeScaledReference,
  scaleCountOverflow,
  scaleCountOverflowReference,
} from '../../src/kernels/quant_stats.js';
import { makeQTensor, resolveFormat } from '../../src/formats/index.js';
import { uniform } from '../helpers/random.js';

/** Values over many binades, with zeros; n above the native threshold. */
function spread(n: number, seed: number): Float32Array {
  const x = uniform(n, seed);
  for (let i = 0; i < n; i++) x[i] = i % 7 === 0 ? 0 : x[i] * 2 ** ((i % 61) - 40);
  return x;
}

describe('quantization statistics: native equals the reference', () => {
  test('absMax, and NaN for any NaN or Inf wherever it sits', () => {
    const x = spread(100_003, 1);
    assert.equal(absMax(x), absMaxReference(x));
    for (const bad of [NaN, Infinity, -Infinity]) {
      const y = Float32Array.from(x);
      y[77_777] = bad;
      assert.ok(Number.isNaN(absMax(y)) && Number.isNaN(absMaxReference(y)));
    }
    assert.equal(absMax(new Float32Array(10_000)), 0);
    // The native kernel compares magnitudes' bit patterns: negative maxima, subnormals, -0.
    const negative = x.map((v) => -v);
    negative[99_999] = -(2 ** 30);
    assert.equal(absMax(negative), 2 ** 30);
    assert.equal(absMax(new Float32Array(70_000).fill(-0)), 0);
    const tiny = new Float32Array(70_000).fill(2 ** -149);
    tiny[69_999] = -(2 ** -130);
    assert.equal(absMax(tiny), 2 ** -130);
    assert.equal(absMax(new Float32Array(70_000).fill(-3.4028234663852886e38)), 3.4028234663852886e38);
  });

  test('scaled copy and overflow count (non-power-of-two scale taken as float32)', () => {
    const x = spread(50_001, 2);
    for (const scale of [1, 2 ** 20, 1 / 3, 1e30]) {
      const a = new Float32Array(x.length);
      const b = new Float32Array(x.length);
      assert.equal(scaleCountOverflow(x, scale, a, 57344), scaleCountOverflowReference(x, scale, b, 57344));
      assert.deepEqual(a, b);
    }
  });

  test('underflow count for 1-, 2- and 4-byte codes: fused encode equals the reference count', () => {
    const x = spread(40_000, 3);
    for (const name of ['e5m2', 'e6m9', 'fp32']) {
      const f = resolveFormat(name);
      const counted = countUnderflowReference(x, encode(x, f), f.signMask - 1);
      const fused = encodeScaled(x, 1, f);
      assert.deepEqual({ nonzero: fused.nonzero, underflow: fused.underflow }, counted);
      assert.ok(counted.nonzero > 30_000 && (name === 'fp32' ? counted.underflow === 0 : counted.underflow > 0));
    }
  });

  test('fused scaled encode with counts, every rounding mode, 1/2/4-byte codes, with saturation and NaN', () => {
    const x = spread(70_001, 4);
    x[12_345] = NaN;
    x[54_321] = Infinity;
    for (const name of ['e5m2', 'e4m3', 'e6m9', 'bf16', 'fp32']) {
      for (const rounding of ['nearest', 'stochastic', 'toward-zero'] as const) {
        for (const saturate of [false, true]) {
          const options = { rounding, saturate, seed: 9 };
          const fast = encodeScaled(x, 2 ** 12, name, options);
          const ref = encodeScaledReference(x, 2 ** 12, name, options);
          assert.deepEqual(fast.coded.codes, ref.coded.codes, `${name} ${rounding} ${saturate}`);
          assert.deepEqual([fast.overflow, fast.nonzero, fast.underflow], [ref.overflow, ref.nonzero, ref.underflow]);
        }
      }
    }
  });

  test('dequantize: decode(code) / scale, rounded as the division rounds, for every kind of scale', () => {
    const x = spread(50_003, 6);
    for (const name of ['e5m2', 'e6m9']) {
      const codes = encode(x, name);
      const decoded = dequantize(makeQTensor(codes, name));
      for (const scale of [1, 2 ** 12, 2 ** -20, 2 ** 125, 2 ** 127, 3, 0.1]) {
        const got = dequantize(makeQTensor(codes, name, scale));
        for (let i = 0; i < got.length; i++) {
          if (!Object.is(got[i], Math.fround(decoded[i] / scale))) assert.fail(`${name} scale ${scale} [${i}]: ${got[i]} vs ${decoded[i] / scale}`);
        }
      }
    }
  });

  test('encodeScaled into a given array: every code written, the same result as a fresh array; a wrong length refused', () => {
    for (const n of [100, 1 << 17]) {
      const x = uniform(n, 21, -3, 3);
      const fresh = encodeScaled(x, 8, 'e5m2');
      const out = new Uint8Array(n).fill(0xee);
      const into = encodeScaled(x, 8, 'e5m2', {}, out);
      assert.equal(into.coded.codes, out);
      assert.deepEqual(out, fresh.coded.codes);
      assert.deepEqual([into.overflow, into.underflow, into.coded.scale], [fresh.overflow, fresh.underflow, fresh.coded.scale]);
    }
    assert.throws(() => encodeScaled(new Float32Array(10), 1, 'e5m2', {}, new Uint8Array(9)), /out holds 9 codes for 10 values/);
  });
});

