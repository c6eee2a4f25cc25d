/**
 * Low-precision GEMM: the native kernel against the naive contract loop, bit for bit, over
 * random shapes, every accumulation mode, transposes, scales, output rounding and thread
 * counts; and the swamping that a 16-bit accumulator shows and chunking removes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encode } from '../../src/kernels/codec.js';
import { lowpGemm, lowpGemmColumns, lowpGemmReference, nativeOperand, type LowpGemmOptions, type LowpOperand } from '../../src/kernels/lowp_gemm.js';
import { im2colBatchReference } from '../../src/kernels/im2col.js';
import { nativeCore } from '../../src/kernels/native.js';
import { makeQTensor, resolveFormat } from '../../src/formats/index.js';
import { hopperGemm } from '../../src/kernels/hopper_gemm.js';
import { assertSameBits } from '../helpers/bits.js';
import { uniform, xorshift } from '../helpers/random.js';

/** A row-major rows x cols matrix of codes, transposed. */
function transpose(codes: Uint8Array, rows: number, cols: number): Uint8Array {
  const out = new Uint8Array(codes.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = codes[i * cols + j];
  return out;
}

const MODES: LowpGemmOptions[] = [
  {},
  { accumulation: 'e6m9' },
  { accumulation: 'e6m9', chunk: 1 },
  { accumulation: 'e6m9', chunk: 7 },
  { accumulation: 'e6m9', chunk: 64 },
  { accumulation: 'e6m9', rounding: 'stochastic', seed: 5 },
  { accumulation: 'e6m9', rounding: 'stochastic', chunk: 16, seed: 6 },
  { accumulation: 'fp16' },
  { accumulation: 'bf16', chunk: 32 },
  { accumulation: 'fp32', chunk: 8 },
  { accumulation: 'e7m8', rounding: 'stochastic', seed: 3 },
  { accumulation: 'e5m6' },
  { accumulation: 'e4m3' },
  { accumulation: 'e6m9', output: { format: 'e5m2', saturate: true } },
  { accumulation: 'e6m9', output: { format: 'bf16', rounding: 'stochastic', seed: 2 } },
];

describe('low-precision GEMM', () => {
  test('equals the contract loop on random shapes, modes, transposes, scales and 1 or 2 threads', () => {
    const next = xorshift(77);
    const sizes = [1, 2, 3, 8, 9, 15, 16, 17, 33];
    for (let trial = 0; trial < 24; trial++) {
      const m = sizes[next() % sizes.length];
      const n = sizes[next() % sizes.length];
      const k = trial % 6 === 0 ? 1 : trial % 5 === 0 ? 700 : sizes[next() % sizes.length] * 3;
      const transA = (next() & 1) === 1;
      const transB = (next() & 1) === 1;
      const formats = ['e5m2', 'e4m3', 'fp32'];
      const fa = formats[next() % 3];
      const fb = formats[next() % 3];
      const av = uniform(m * k, trial * 2 + 1, -3, 3);
      const bv = uniform(k * n, trial * 2 + 2, -3, 3);
      const a: LowpOperand = fa === 'fp32' ? av : makeQTensor(encode(av, fa), fa, 2 ** ((next() % 5) - 2));
      const b: LowpOperand = fb === 'fp32' ? bv : makeQTensor(encode(bv, fb), fb, 3);
      for (const mode of MODES) {
        const expected = lowpGemmReference(m, n, k, a, b, { ...mode, transA, transB });
        for (const threads of [1, 2]) {
          const got = lowpGemm(m, n, k, a, b, { ...mode, transA, transB, threads });
          assertSameBits(got, expected, `${m}x${n}x${k} ${fa}*${fb} trans ${transA},${transB} ${JSON.stringify(mode)} threads ${threads}`);
        }
      }
    }
  });

  test('scratch kept between calls: a large product, then smaller ones of other shapes, each equals the contract', () => {
    // The kernel keeps its decoded op(A) and packed strips from call to call without clearing
    // them: a smaller product after a larger one must not read what the larger one left.
    // 600 x 17 x 900: a large op(A), strips packed once; 5 x 70 x 37: a small op(A), strip by
    // strip; 40 x 9 x 50: few strips, split over row blocks.
    for (const [m, n, k] of [[600, 17, 900], [5, 70, 37], [40, 9, 50], [600, 17, 900], [3, 40, 11]]) {
      const a: LowpOperand = makeQTensor(encode(uniform(m * k, m + k, -3, 3), 'e5m2'), 'e5m2', 2);
      const b: LowpOperand = makeQTensor(encode(uniform(k * n, n + k, -3, 3), 'e5m2'), 'e5m2', 1);
      const options: LowpGemmOptions = { accumulation: 'e6m9', chunk: 64 };
      assertSameBits(lowpGemm(m, n, k, a, b, options), lowpGemmReference(m, n, k, a, b, options), `${m}x${n}x${k}`);
    }
  });

  test('chunked sums near the accumulator\'s largest value: the fast path taken by the chunk-aware bound equals the contract', () => {
    // k products of at most 2^9 * 2^10 sum to at most 2^31; with chunks of 64 every value goes
    // through at most 64 + 64 roundings, so it stays below 2^31 * e^(129 / 1024) < e6m9's largest
    // (about 2^32): the kernel skips its range checks. Without chunks the bound is not met.
    const m = 5, n = 17, k = 4096;
    const a: LowpOperand = makeQTensor(encode(uniform(m * k, 21, 2 ** 8, 2 ** 9), 'e5m2'), 'e5m2');
    const b: LowpOperand = makeQTensor(encode(uniform(k * n, 22, 2 ** 9, 2 ** 10), 'e5m2'), 'e5m2');
    for (const options of [{ accumulation: 'e6m9', chunk: 64 }, { accumulation: 'e6m9' }, { accumulation: 'e6m9', chunk: 64, rounding: 'stochastic' as const, seed: 3 }]) {
      const expected = lowpGemmReference(m, n, k, a, b, options);
      assert.ok(expected.every((v) => Number.isFinite(v) && v >= 2 ** 29), 'sums reach the top binades (2^29 where unchunked sums stall)');
      for (const threads of [1, 2]) assertSameBits(lowpGemm(m, n, k, a, b, { ...options, threads }), expected, `${JSON.stringify(options)} threads ${threads}`);
    }
  });

  test('a few large values among small ones: the bound from the rows\' sums of magnitudes, and the contract still holds', () => {
    // k * amaxA * amaxB = 2^13 * 2^12 * 2^10 is beyond e6m9, but each row of A sums to about 2^13.6,
    // so every sum stays below 2^24: the kernel may skip its range checks, and must still agree.
    const m = 4, n = 20, k = 8192;
    const av = uniform(m * k, 31, 0.5, 1);
    for (let i = 0; i < m; i++) av[i * k + ((i * 977) % k)] = 2 ** 12;
    const a = makeQTensor(encode(av, 'e5m2'), 'e5m2');
    const b: LowpOperand = makeQTensor(encode(uniform(k * n, 32, -(2 ** 10), 2 ** 10), 'e5m2'), 'e5m2');
    for (const options of [{ accumulation: 'e6m9' }, { accumulation: 'e6m9', chunk: 64 }, { accumulation: 'e6m9', transA: true }]) {
      const aOp = options.transA ? makeQTensor(transpose(a.codes as Uint8Array, m, k), a.format, a.scale) : a;
      const expected = lowpGemmReference(m, n, k, aOp, b, options);
      for (const threads of [1, 2]) assertSameBits(lowpGemm(m, n, k, aOp, b, { ...options, threads }), expected, `${JSON.stringify(options)} threads ${threads}`);
    }
  });

  test('float32 times codes with fp32 accumulation, past the cache blocks: a multiply then an add per step', () => {
    // Products of a float32 and an FP8 value are not exact in float32: the contract rounds the
    // product, then the sum; a fused multiply-add would round once and differ.
    const m = 30, n = 700, k = 900;
    const a = uniform(m * k, 8, -3, 3);
    const b: LowpOperand = makeQTensor(encode(uniform(k * n, 9, -3, 3), 'e5m2'), 'e5m2', 2);
    const expected = lowpGemmReference(m, n, k, a, b);
    for (const threads of [1, 2]) assertSameBits(lowpGemm(m, n, k, a, b, { threads }), expected, `mixed threads ${threads}`);
  });

  test('shapes past the cache blocks (several column and k blocks, few rows): codes decoded while packing', () => {
    // n > the kernel's column block and k > its k block, with few rows: op(A) is packed once and
    // shared by every column block; A and B in E5M2 (half-conversion decode) and E4M3 (table).
    for (const [m, n, k, transA, transB, fa] of [
      [20, 1100, 800, false, false, 'e5m2'],
      [37, 1030, 500, true, false, 'e4m3'],
      [64, 600, 1300, false, true, 'e5m2'],
    ] as const) {
      const a: LowpOperand = makeQTensor(encode(uniform(m * k, m, -3, 3), fa), fa, 2);
      const b: LowpOperand = makeQTensor(encode(uniform(k * n, n, -3, 3), 'e5m2'), 'e5m2', 0.5);
      const expected = lowpGemmReference(m, n, k, a, b, { transA, transB });
      for (const threads of [1, 2, 3]) {
        assertSameBits(lowpGemm(m, n, k, a, b, { transA, transB, threads }), expected, `${m}x${n}x${k} ${fa} trans ${transA},${transB} threads ${threads}`);
      }
    }
  });

  test('edge values: sums below the normal range, overflow to Inf or saturation, NaN operands', () => {
    const k = 40;
    const tiny = new Float32Array(3 * k).fill(2 ** -14).map((v, i) => (i % 3 === 0 ? -v : v));
    const huge = new Float32Array(3 * k).fill(2 ** 15);
    const ones = new Float32Array(k * 4).fill(1).map((v, i) => (i % 5 === 0 ? -v : v));
    for (const [name, values] of [['tiny', tiny], ['huge', huge]] as const) {
      const a = makeQTensor(encode(values, 'e5m2'), 'e5m2');
      const b = makeQTensor(encode(ones, 'e5m2'), 'e5m2');
      for (const mode of [{ accumulation: 'e6m9' }, { accumulation: 'fp16' }, { accumulation: 'fp16', saturate: true }, { accumulation: 'e4m3' }]) {
        assertSameBits(lowpGemm(3, 4, k, a, b, mode), lowpGemmReference(3, 4, k, a, b, mode), `${name} ${JSON.stringify(mode)}`);
      }
    }
    const overflow = lowpGemm(1, 1, 8, makeQTensor(encode(new Float32Array(8).fill(57344), 'e5m2'), 'e5m2'), makeQTensor(encode(new Float32Array(8).fill(57344), 'e5m2'), 'e5m2'), { accumulation: 'e6m9' });
    assert.equal(overflow[0], Infinity);
    const saturated = lowpGemm(1, 1, 8, makeQTensor(encode(new Float32Array(8).fill(57344), 'e5m2'), 'e5m2'), makeQTensor(encode(new Float32Array(8).fill(57344), 'e5m2'), 'e5m2'), { accumulation: 'e6m9', saturate: true });
    assert.equal(saturated[0], resolveFormat('e6m9').maxFinite);
    // E5M2 operands holding Inf and NaN codes must take the checked path and give Inf/NaN.
    for (const special of [0x7c, 0x7e, 0xfc]) {
      const codes = encode(uniform(4 * 20, 9), 'e5m2');
      codes[13] = special;
      const a = makeQTensor(codes, 'e5m2');
      const b = makeQTensor(encode(uniform(20 * 17, 10), 'e5m2'), 'e5m2');
      for (const mode of [{ accumulation: 'e6m9' }, { accumulation: 'e6m9', rounding: 'stochastic' as const }, {}]) {
        assertSameBits(lowpGemm(4, 17, 20, a, b, mode), lowpGemmReference(4, 17, 20, a, b, mode), `special code 0x${special.toString(16)} ${JSON.stringify(mode)}`);
      }
    }
    const withNaN = Float32Array.of(1, NaN, 2);
    assert.ok(Number.isNaN(lowpGemm(1, 1, 3, withNaN, Float32Array.of(1, 1, 1), { accumulation: 'e6m9' })[0]));
  });

  test('swamping: 4096 additions of 2^-10 in e6m9 stall at 1, as the contract predicts; chunks of 64 are exact', () => {
    const k = 4096;
    const a = makeQTensor(encode(new Float32Array(k).fill(2 ** -10), 'e5m2'), 'e5m2');
    const b = makeQTensor(encode(new Float32Array(k).fill(1), 'e5m2'), 'e5m2');
    // The running sum stops growing once 2^-10 is no more than half a unit in the last place:
    // in [2^e, 2^(e+1)) a unit is 2^(e-9), so at e = 0 the increment is exactly half a unit, a
    // tie, which rounds to the even neighbour, 1.
    const e6m9 = resolveFormat('e6m9');
    const stall = 2 ** (-10 + e6m9.mantissaBits + 1);
    assert.equal(stall, 1);
    assert.equal(lowpGemm(1, 1, k, a, b, { accumulation: 'e6m9' })[0], stall);
    assert.equal(lowpGemmReference(1, 1, k, a, b, { accumulation: 'e6m9' })[0], stall);
    assert.equal(lowpGemm(1, 1, k, a, b, { accumulation: 'e6m9', chunk: 64 })[0], 4);
    assert.equal(lowpGemm(1, 1, k, a, b, {})[0], 4);
    // Stochastic rounding keeps growing on average instead of stalling.
    const stochastic = lowpGemm(1, 1, k, a, b, { accumulation: 'e6m9', rounding: 'stochastic', seed: 1 })[0];
    assert.ok(stochastic > 3 && stochastic < 5, `stochastic sum ${stochastic}`);
  });

  test('chunkEnds: uneven and empty chunks equal the contract; even ones equal `chunk`', () => {
    const m = 13, n = 21, k = 150;
    const a = makeQTensor(encode(uniform(m * k, 91, -4, 4), 'e5m2', { saturate: true }), 'e5m2');
    const b = makeQTensor(encode(uniform(k * n, 92, -4, 4), 'e5m2', { saturate: true }), 'e5m2');
    const uneven = Int32Array.of(0, 7, 7, 40, 41, 41, 100, 150, 150);
    for (const options of [{ accumulation: 'e6m9', chunkEnds: uneven }, { accumulation: 'fp16', chunkEnds: uneven }, { chunkEnds: uneven }] as LowpGemmOptions[]) {
      assertSameBits(lowpGemm(m, n, k, a, b, options), lowpGemmReference(m, n, k, a, b, options), `chunkEnds ${JSON.stringify(options.accumulation)}`);
    }
    const even = Int32Array.from({ length: Math.ceil(k / 64) }, (_, c) => Math.min(k, 64 * (c + 1)));
    assertSameBits(lowpGemm(m, n, k, a, b, { accumulation: 'e6m9', chunkEnds: even }), lowpGemm(m, n, k, a, b, { accumulation: 'e6m9', chunk: 64 }), 'even chunk ends');
  });

  test('chunkEnds: leaving out exact-zero terms, with the chunks mapped onto what is left, gives the full sum\'s bits', () => {
    // B has zero rows at every third t (as a dilated image's holes); the reduced GEMM keeps the
    // other rows and ends each chunk of 16 where the full sequence's chunk ended.
    const m = 24, n = 40, k = 300, chunk = 16;
    const av = uniform(m * k, 93, -8, 8);
    const bv = uniform(k * n, 94, -8, 8);
    for (let t = 0; t < k; t += 3) bv.fill(0, t * n, (t + 1) * n);
    const a = makeQTensor(encode(av, 'e5m2', { saturate: true }), 'e5m2');
    const b = makeQTensor(encode(bv, 'e5m2', { saturate: true }), 'e5m2');
    const kept = Array.from({ length: k }, (_, t) => t).filter((t) => t % 3 !== 0);
    const ra = new Uint8Array(m * kept.length), rb = new Uint8Array(kept.length * n);
    kept.forEach((t, q) => {
      for (let i = 0; i < m; i++) ra[i * kept.length + q] = a.codes[i * k + t];
      rb.set(b.codes.subarray(t * n, (t + 1) * n), q * n);
    });
    const ends = Int32Array.from({ length: Math.ceil(k / chunk) }, (_, c) => kept.filter((t) => t < Math.min(k, chunk * (c + 1))).length);
    for (const accumulation of ['e6m9', 'fp16', 'bf16']) {
      const full = lowpGemm(m, n, k, a, b, { accumulation, chunk });
      const reduced = lowpGemm(m, n, kept.length, makeQTensor(ra, 'e5m2'), makeQTensor(rb, 'e5m2'), { accumulation, chunkEnds: ends });
      assertSameBits(reduced, full, `${accumulation} without the zero terms`);
      assertSameBits(full, lowpGemmReference(m, n, k, a, b, { accumulation, chunk }), `${accumulation} full against the contract`);
    }
  });

  test('the emulated kernel reading the transposed columns from the images equals it on the stored column matrix', () => {
    // A weight gradient's product: dY [OC x N*P] times col^T, col read from E5M2 images.
    for (const [geometry, batch] of [
      [{ channels: 5, height: 9, width: 8, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, outH: 9, outW: 8 }, 3],
      [{ channels: 3, height: 11, width: 7, kernelH: 3, kernelW: 2, strideH: 2, strideW: 1, padH: 0, padW: 1, dilationH: 1, dilationW: 2, outH: 5, outW: 6 }, 2],
    ] as const) {
      const imageStride = geometry.channels * geometry.height * geometry.width + 7;
      const images = makeQTensor(encode(uniform(batch * imageStride, 95, -4, 4), 'e5m2', { saturate: true }), 'e5m2');
      const rows = geometry.channels * geometry.kernelH * geometry.kernelW, k = batch * geometry.outH * geometry.outW, m = 11;
      const col = new Uint8Array(rows * k);
      im2colBatchReference(images.codes as Uint8Array, col, geometry, batch, imageStride);
      const a = makeQTensor(encode(uniform(m * k, 96, -4, 4), 'e5m2', { saturate: true }), 'e5m2');
      for (const options of [{ accumulation: 'e6m9', chunk: 64 }, { accumulation: 'e6m9', rounding: 'stochastic' as const, seed: 3 }, { accumulation: 'fp16' }]) {
        const want = lowpGemm(m, rows, k, a, makeQTensor(col, 'e5m2'), { ...options, transB: true });
        const got = lowpGemmColumns(m, rows, k, nativeOperand(a)!, nativeOperand(images)!, { geometry, batch, imageStride }, { ...options, transB: true });
        if (!got) {
          assert.equal(nativeCore(), null, 'only without the addon');
          continue;
        }
        assertSameBits(got, want, `${JSON.stringify(options)} ${JSON.stringify(geometry)}`);
      }
    }
  });

  test('writes into a given output array, in both paths', () => {
    const a = makeQTensor(encode(uniform(6 * 5, 1), 'e5m2'), 'e5m2');
    const b = makeQTensor(encode(uniform(5 * 4, 2), 'e5m2'), 'e5m2');
    for (const options of [{}, { accumulation: 'e6m9' }]) {
      const out = new Float32Array(24).fill(NaN);
      assert.equal(lowpGemm(6, 4, 5, a, b, { ...options, out }), out);
      assertSameBits(out, lowpGemmReference(6, 4, 5, a, b, options), 'out');
      assert.throws(() => lowpGemm(6, 4, 5, a, b, { ...options, out: new Float32Array(23) }), /out must be a Float32Array of 24 elements/);
    }
  });

  test('bad options and shapes get clear errors', () => {
    const ca = makeQTensor(new Uint8Array(6), 'e5m2');
    assert.throws(() => lowpGemm(2, 3, 3, ca, makeQTensor(new Uint8Array(9), 'e5m2'), { accumulation: 'e6m9', rounding: 'stochastic', chunkEnds: Int32Array.of(3) }), /chunkEnds need nearest rounding/);
    assert.throws(() => lowpGemm(2, 3, 3, ca, makeQTensor(new Uint8Array(9), 'e5m2'), { accumulation: 'e6m9', chunkEnds: Int32Array.of(2) }), /the last of chunkEnds is 2; expected k = 3/);
    assert.throws(() => lowpGemm(2, 3, 3, ca, makeQTensor(new Uint8Array(9), 'e5m2'), { accumulation: 'e6m9', chunkEnds: Int32Array.of(2, 1, 3) }), /chunkEnds decrease at 1/);
    const x = new Float32Array(4);
    assert.throws(() => lowpGemm(2, 2, 2, x, x, { chunk: -1 }), /chunk is -1; expected 0 \(none\) or a positive integer/);
    assert.throws(() => lowpGemm(2, 2, 2, x, x, { rounding: 'up' as never }), /accumulation rounding "up"; expected nearest or stochastic/);
    assert.throws(() => lowpGemm(2, 2, 3, x, x), /A holds 4 values; expected 6/);
    assert.throws(() => lowpGemm(2, 2, 2, x, x, { accumulation: 'e9m9' }), /eXmY needs X from 2 to 8/);
    assert.throws(() => lowpGemm(1, 1, 1, { codes: new Uint8Array(1), format: resolveFormat('e5m2'), scale: 0 }, x.subarray(0, 1)), /A scale is 0; expected a finite positive number/);
    for (const threads of [0, -1, 1.5]) assert.throws(() => lowpGemm(2, 2, 2, x, x, { threads }), new RegExp(`threads is ${threads}; expected a positive integer`));
  });

  test('float32 accumulation under any of its names is the plain float32 sum', () => {
    const a = uniform(5 * 7, 81, -3, 3);
    const b = makeQTensor(encode(uniform(7 * 4, 82, -3, 3), 'e5m2'), 'e5m2', 2);
    const want = lowpGemm(5, 4, 7, a, b, { accumulation: 'fp32' });
    for (const accumulation of ['float32', 'e8m23', resolveFormat('fp32')]) assertSameBits(lowpGemm(5, 4, 7, a, b, { accumulation }), want, String(accumulation));
    assertSameBits(lowpGemmReference(5, 4, 7, a, b, { accumulation: 'float32' }), want, 'reference');
  });
});

describe('aligned accumulators as an accumulation mode', () => {
  test('lowpGemm with hopper-fp8 equals the model on the same codes, transposes and scales applied as the contract says', () => {
    const [m, n, k] = [6, 20, 300];
    const a = encode(uniform(m * k, 31, -4, 4), 'e4m3') as Uint8Array;
    const b = encode(uniform(k * n, 32, -4, 4), 'e5m2') as Uint8Array;
    const totals = hopperGemm(m, n, k, a, 'e4m3', b, 'e5m2', { model: 'hopper-fp8' });
    const scaleA = 4;
    const scaleB = 0.5;
    const expected = totals.map((v) => v / Math.fround(scaleA * scaleB));
    const A = makeQTensor(a, 'e4m3', scaleA);
    const B = makeQTensor(b, 'e5m2', scaleB);
    assertSameBits(lowpGemmReference(m, n, k, A, B, { accumulation: 'hopper-fp8' }), expected, 'reference');
    assertSameBits(lowpGemm(m, n, k, A, B, { accumulation: 'hopper-fp8' }), expected, 'fast');
    assertSameBits(lowpGemm(m, n, k, makeQTensor(transpose(a, m, k), 'e4m3', scaleA), makeQTensor(transpose(b, k, n), 'e5m2', scaleB), { accumulation: 'hopper-fp8', transA: true, transB: true }), expected, 'transposed');
    assert.throws(() => lowpGemm(m, n, k, uniform(m * k, 1), B, { accumulation: 'hopper-fp8' }), /aligned accumulator .* takes coded operands of at most 8 bits; A is float32/);
  });
});
