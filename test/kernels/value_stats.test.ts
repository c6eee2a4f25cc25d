import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { kernelThreads, setKernelThreads } from '../../src/kernels/index.js';
import {
  countAtMost, countsAndQuantiles, errorEnergy, errorEnergyReference, quantiles, scaledLog2, valueHistogram,
} from '../../src/kernels/value_stats.js';
import { uniform } from '../helpers/random.js';

/** Values over many binades (float32 subnormals included), with zeros, NaN and Inf; n above the native threshold. */
function spread(n: number, seed: number): Float32Array {
  const x = uniform(n, seed);
  for (let i = 0; i < n; i++) x[i] = i % 11 === 0 ? 0 : (x[i] - 0.5) * 2 ** ((i % 97) - 150);
  x[5] = NaN;
  x[17] = -Infinity;
  return x;
}

/** Nonzero finite |x| as a sorted float32 array: the brute-force view. */
function sortedMagnitudes(x: Float32Array): Float32Array {
  return Float32Array.from(Array.from(x).filter((v) => v !== 0 && Number.isFinite(v)).map(Math.abs)).sort();
}

const threads = kernelThreads();
afterEach(() => setKernelThreads(threads));

describe('value statistics', () => {
  test('powers of two over 40 binades: one value per binade, zeros and non-finite counted apart', () => {
    const values = [];
    for (let k = -30; k < 10; k++) values.push(k % 2 ? -(2 ** k) : 2 ** k);
    const x = Float32Array.from([...values, 0, -0, NaN, Infinity]);
    for (const reference of [false, true]) {
      const h = valueHistogram(x, reference);
      assert.equal(h.count, 44);
      assert.equal(h.zeros, 2);
      assert.equal(h.nonfinite, 2);
      assert.equal(h.amax, 2 ** 9);
      assert.deepEqual([...h.log2], Array.from({ length: 40 }, (_, i) => [i - 30, 1]));
    }
  });

  test('floor(log2) is exact for float32 subnormals, the bottom bin included', () => {
    const x = Float32Array.from([2 ** -149, 3 * 2 ** -149, 2 ** -140, 3 * 2 ** -140, 2 ** -127, 1.5 * 2 ** -127, 2 ** -126]);
    assert.deepEqual([...valueHistogram(x).log2], [[-149, 1], [-148, 1], [-140, 1], [-139, 1], [-127, 2], [-126, 1]]);
    // Native path (a long tensor): the same.
    const long = new Float32Array(10_000);
    long.set(x);
    assert.deepEqual([...valueHistogram(long).log2], [[-149, 1], [-148, 1], [-140, 1], [-139, 1], [-127, 2], [-126, 1]]);
  });

  test('native and reference histograms agree; log2 bins match brute force', () => {
    const x = spread(300_001, 4);
    const native = valueHistogram(x);
    const reference = valueHistogram(x, true);
    assert.deepEqual(native.bins, reference.bins);
    assert.deepEqual([native.zeros, native.nonfinite, native.amax], [reference.zeros, reference.nonfinite, reference.amax]);
    const brute = new Map<number, number>();
    for (const v of sortedMagnitudes(x)) {
      const e = Math.floor(Math.log2(v));
      brute.set(e, (brute.get(e) ?? 0) + 1);
    }
    assert.deepEqual([...native.log2], [...brute].sort((a, b) => a[0] - b[0]));
    assert.equal(native.amax, sortedMagnitudes(x).at(-1));
  });

  test('counts below thresholds are exact, strict and not, on both paths', () => {
    const x = spread(200_003, 7);
    const sorted = sortedMagnitudes(x);
    // Thresholds at values present (ties), between them, at binade edges, outside the range.
    const thresholds = [0, 2 ** -149, sorted[1000], sorted[1000] * (1 + 2 ** -30), 2 ** -100, 2 ** -60, sorted[150_000], 1e-300, 1e300, sorted.at(-1)!];
    for (const reference of [false, true]) {
      const h = valueHistogram(x, reference);
      for (const strict of [false, true]) {
        const counts = countAtMost(h, thresholds.map((value) => ({ value, strict })));
        const brute = thresholds.map((t) => sorted.filter((v) => (strict ? v < t : v <= t)).length);
        assert.deepEqual(counts, brute, `reference ${reference}, strict ${strict}`);
      }
    }
  });

  test('quantiles are the exact lower-rank order statistics', () => {
    const x = spread(100_000, 9);
    const sorted = sortedMagnitudes(x);
    const qs = [0, 0.001, 0.5, 0.999, 1];
    const expected = qs.map((q) => sorted[Math.floor(q * (sorted.length - 1))]);
    assert.deepEqual(quantiles(valueHistogram(x), qs), expected);
    assert.deepEqual(quantiles(valueHistogram(x, true), qs), expected);
    assert.ok(quantiles(valueHistogram(new Float32Array(5)), [0.5]).every(Number.isNaN));
    assert.throws(() => quantiles(valueHistogram(x), [1.5]), /quantile 1.5/);
    // Thresholds and quantiles in one call give the same as apart.
    const both = countsAndQuantiles(valueHistogram(x), [{ value: sorted[5000] }], qs);
    assert.deepEqual(both, { counts: [sorted.filter((v) => v <= sorted[5000]).length], quantiles: expected });
  });

  test('the histogram after scaling: a shift for powers of two, the quantizer\'s float32 product otherwise', () => {
    const x = spread(50_000, 11);
    const h = valueHistogram(x);
    assert.deepEqual([...scaledLog2(h, 2 ** 20)], [...h.log2].map(([e, n]) => [e + 20, n]));
    const s = Math.fround(3.7);
    const brute = new Map<number, number>();
    for (const v of sortedMagnitudes(x)) {
      const scaled = Math.fround(v * s);
      const e = scaled === 0 ? -150 : Math.floor(Math.log2(scaled));
      brute.set(e, (brute.get(e) ?? 0) + 1);
    }
    assert.deepEqual([...scaledLog2(h, 3.7)], [...brute].sort((a, b) => a[0] - b[0]));
    assert.throws(() => scaledLog2(h, 0), /scale 0/);
  });

  test('error energy: native equals the reference on 1 and 2 threads, with and without a middle version', () => {
    const n = 200_000;
    const ref = uniform(n, 1);
    const value = ref.map((v, i) => v + (i % 3) * 1e-3);
    const middle = ref.map((v, i) => v + (i % 5) * 1e-4);
    const expected = errorEnergyReference(value, ref, middle);
    for (const t of [1, 2]) {
      setKernelThreads(t);
      assert.deepEqual(errorEnergy(value, ref, middle), expected);
      assert.deepEqual(errorEnergy(value, ref), errorEnergyReference(value, ref));
    }
    const plain = errorEnergyReference(value, ref);
    assert.equal(plain.first, plain.total);
    assert.equal(plain.second, 0);
    assert.ok(Math.abs(expected.signal - ref.reduce((a, v) => a + v * v, 0)) < 1e-6 * expected.signal);
    assert.throws(() => errorEnergy(value, ref.subarray(1)), /errorEnergy: 200000 values against 199999/);
  });
});
