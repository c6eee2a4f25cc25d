/**
 * Block-sparse products against the dense ones on the same pruned weights: the forward, the
 * input gradient (through the transposed BSR) and the weight gradient at the kept blocks, bit
 * for bit for float32 (the SGEMM's fused chain) and for FP8 operands under fp32 and nearest
 * emulated accumulation (lowpGemm), on 1 and 2 threads; the BSR round trip; fma32 against
 * exact arithmetic; bad inputs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  blockGrid, bsrConv2dForward, bsrConv2dForwardReference, bsrFromDense, bsrGemm, bsrGemmReference, bsrLowpGemm, bsrSampledGemm, bsrSampledGemmReference, bsrToDense, bsrTranspose, bsrTransposedFromPattern, fma32,
} from '../../src/kernels/block_sparse.js';
import { bsrLowpConv2dForward, columnsGemm, convGeometry, encode, decode, gemm, groupColumns, lowpConv2dForward, lowpGemm } from '../../src/kernels/index.js';
import { makeQTensor, resolveFormat } from '../../src/formats/index.js';
import { assertSameBits } from '../helpers/bits.js';
import { uniform, xorshift } from '../helpers/random.js';

/** A rows x cols matrix with a random keep pattern of blocks (about `density` of them kept). */
function pruned(rows: number, cols: number, br: number, bc: number, density: number, seed: number) {
  const dense = uniform(rows * cols, seed);
  const { blockRowCount, blockColCount } = blockGrid(rows, cols, br, bc);
  const next = xorshift(seed + 7);
  const keep = Uint8Array.from({ length: blockRowCount * blockColCount }, () => (next() / 2 ** 32 < density ? 1 : 0));
  const w = bsrFromDense(dense, rows, cols, br, bc, keep);
  return { w, masked: bsrToDense(w) };
}

/** Equal values, -0 and +0 taken as equal (the contract leaves a zero result's sign open). */
function assertSameValues(got: Float32Array, want: Float32Array, what: string) {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) {
    if (got[i] === want[i] || (Number.isNaN(got[i]) && Number.isNaN(want[i]))) continue;
    assert.fail(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
  }
}

test('fma32 rounds a * b + c once (against exact rational arithmetic on float32 inputs)', () => {
  const next = xorshift(11);
  const f = new Float32Array(3);
  for (let trial = 0; trial < 20000; trial++) {
    for (let i = 0; i < 3; i++) f[i] = (next() / 2 ** 32 - 0.5) * 2 ** ((next() % 40) - 20);
    const [a, b, c] = f;
    // Exact: a * b + c as a BigInt over a common power of two, then round to float32 by search.
    const got = fma32(a, b, c);
    const exact = exactSum(a, b, c);
    const lo = Math.fround(got), loDist = Math.abs(exactDistance(exact, lo));
    for (const neighbour of [nextUp(got), nextDown(got)]) assert.ok(Math.abs(exactDistance(exact, neighbour)) >= loDist, `fma32(${a}, ${b}, ${c}) = ${got} is not nearest`);
  }
});

function toRational(x: number): [bigint, number] {
  // x = m * 2^e with m an integer (float32 values are exact in double).
  if (x === 0) return [0n, 0];
  let e = 0;
  while (!Number.isInteger(x)) {
    x *= 2;
    e--;
  }
  return [BigInt(x), e];
}
function exactSum(a: number, b: number, c: number): [bigint, number] {
  const [ma, ea] = toRational(a), [mb, eb] = toRational(b), [mc, ec] = toRational(c);
  const ep = ea + eb, e = Math.min(ep, ec);
  return [ma * mb * 2n ** BigInt(ep - e) + mc * 2n ** BigInt(ec - e), e];
}
function exactDistance([m, e]: [bigint, number], y: number): number {
  const [my, ey] = toRational(y);
  const common = Math.min(e, ey);
  const d = m * 2n ** BigInt(e - common) - my * 2n ** BigInt(ey - common);
  return Number(d) * 2 ** common;
}
function nextUp(x: number): number {
  const f = new Float32Array([x]);
  const u = new Int32Array(f.buffer);
  u[0] += x >= 0 ? 1 : -1;
  return f[0];
}
function nextDown(x: number): number {
  const f = new Float32Array([x]);
  const u = new Int32Array(f.buffer);
  if (x === 0) return -1e-45;
  u[0] += x > 0 ? -1 : 1;
  return f[0];
}

describe('BSR storage', () => {
  test('round trip: kept blocks come back exactly, dropped ones as zeros; edges shorter', () => {
    const { w, masked } = pruned(13, 21, 4, 8, 0.5, 3);
    const again = bsrFromDense(masked, 13, 21, 4, 8, keepOf(w));
    assert.deepEqual(bsrToDense(again), masked);
    assert.deepEqual(bsrToDense(bsrTranspose(bsrTranspose(w))), masked);
    const t = bsrToDense(bsrTranspose(w));
    for (let i = 0; i < 13; i++) for (let j = 0; j < 21; j++) assert.equal(t[j * 13 + i], masked[i * 21 + j]);
    // Without a keep pattern: every block with a nonzero value.
    const auto = bsrFromDense(masked, 13, 21, 4, 8);
    assert.deepEqual(bsrToDense(auto), masked);
    assert.ok(auto.colIdx.length <= w.colIdx.length);
  });

  test('bad shapes are refused with what was expected', () => {
    assert.throws(() => bsrFromDense(new Float32Array(10), 3, 4, 2, 2), /has 10 values; expected rows x cols = 12/);
    assert.throws(() => bsrFromDense(new Float32Array(12), 3, 4, 0, 2), /blockRows is 0; expected a positive integer/);
    assert.throws(() => bsrFromDense(new Float32Array(12), 3, 4, 2, 2, new Uint8Array(3)), /keep has 3 entries; expected one per block, 2 x 2/);
    const { w } = pruned(8, 8, 4, 4, 1, 1);
    assert.throws(() => bsrGemm(w, new Float32Array(7), 1), /x has 7 values; expected 8/);
    const pattern = { rows: 3, cols: 4, br: 2, bc: 2, keep: new Uint8Array(4).fill(1) };
    assert.throws(() => bsrTransposedFromPattern(new Float32Array(10), pattern), /has 10 values; expected rows x cols = 12/);
    assert.throws(() => bsrTransposedFromPattern(new Float32Array(12), { ...pattern, keep: new Uint8Array(3) }), /has 3 blocks; expected 2 x 2/);
  });

  test('the transpose straight from the dense weight equals the transpose of its BSR (edges +0)', () => {
    for (const [rows, cols, br, bc] of [[13, 21, 4, 8], [24, 72, 8, 8], [7, 30, 3, 1]]) {
      const { w, masked } = pruned(rows, cols, br, bc, 0.5, rows);
      const want = bsrTranspose(w);
      const got = bsrTransposedFromPattern(masked, { rows, cols, br, bc, keep: keepOf(w) });
      assert.deepEqual([got.rows, got.cols, got.blockRows, got.blockCols], [want.rows, want.cols, want.blockRows, want.blockCols]);
      assert.deepEqual(got.rowPtr, want.rowPtr);
      assert.deepEqual(got.colIdx, want.colIdx);
      assertSameBits(got.values, want.values, `${rows}x${cols} in ${br}x${bc}`);
    }
  });
});

function keepOf(w: ReturnType<typeof bsrFromDense>): Uint8Array {
  const { blockRowCount, blockColCount } = blockGrid(w.rows, w.cols, w.blockRows, w.blockCols);
  const keep = new Uint8Array(blockRowCount * blockColCount);
  for (let q = 0; q < blockRowCount; q++) for (let b = w.rowPtr[q]; b < w.rowPtr[q + 1]; b++) keep[q * blockColCount + w.colIdx[b]] = 1;
  return keep;
}

const SHAPES: Array<[number, number, number, number]> = [
  // rows, cols, blockRows, blockCols
  [16, 36, 1, 1],
  [20, 36, 4, 4],
  [24, 72, 8, 8],
  [37, 70, 8, 8],
  [32, 64, 16, 16],
  [12, 27, 1, 27],
];

describe('float32: the sparse products equal the dense SGEMM on the pruned weights', () => {
  for (const [rows, cols, br, bc] of SHAPES) {
    test(`${rows}x${cols} in ${br}x${bc} blocks`, () => {
      for (const density of [0.1, 0.5, 1]) {
        const { w, masked } = pruned(rows, cols, br, bc, density, rows + cols);
        for (const n of [1, 17, 600]) {
          const x = uniform(cols * n, n);
          const dense = gemm(rows, n, cols, masked, x, new Float32Array(rows * n));
          const ref = bsrGemmReference(w, x, n);
          assertSameValues(ref, dense, `reference forward, n = ${n}`);
          for (const threads of [1, 2]) assertSameValues(bsrGemm(w, x, n, { threads }), dense, `forward, n = ${n}, ${threads} threads`);
          // Input gradient: W^T dY.
          const dy = uniform(rows * n, n + 1);
          const denseT = gemm(cols, n, rows, masked, dy, new Float32Array(cols * n), { transA: true });
          assertSameValues(bsrGemm(bsrTranspose(w), dy, n), denseT, `input gradient, n = ${n}`);
          // Weight gradient at the kept blocks: dY X^T.
          const dW = gemm(rows, cols, n, dy, x, new Float32Array(rows * cols), { transB: true });
          const sampled = bsrSampledGemm(w, dy, x, n);
          const kept = bsrToDense(sampled);
          const maskedDW = bsrToDense(bsrFromDense(dW, rows, cols, br, bc, keepOf(w)));
          assertSameValues(kept, maskedDW, `weight gradient, n = ${n}`);
          if (n <= 17) assertSameValues(bsrToDense(bsrSampledGemmReference(w, dy, x, n)), maskedDW, `weight gradient reference, n = ${n}`);
        }
      }
    });
  }

  test('threads split block rows and column chunks (enough work for both threads)', () => {
    for (const [br, bc] of [[8, 8], [1, 1], [16, 16]]) {
      const { w, masked } = pruned(64, 576, br, bc, 0.3, br);
      const n = 1100;
      const x = uniform(576 * n, 4);
      const dense = gemm(64, n, 576, masked, x, new Float32Array(64 * n));
      for (const threads of [1, 2]) assertSameValues(bsrGemm(w, x, n, { threads }), dense, `${br}x${bc}, ${threads} threads`);
    }
  });

  test('unfused (a multiply then an add) equals the reference', () => {
    const { w } = pruned(24, 72, 8, 8, 0.5, 2);
    const x = uniform(72 * 40, 5);
    assertSameBits(bsrGemm(w, x, 40, { fused: false }), bsrGemmReference(w, x, 40, { fused: false }), 'unfused');
  });
});

describe('FP8 operands: the sparse product equals lowpGemm on the pruned weights', () => {
  const cases: Array<[string, Parameters<typeof lowpGemm>[5]]> = [
    ['fp32 accumulation', {}],
    ['e6m9, rounded after every add', { accumulation: 'e6m9' }],
    ['e6m9 in chunks of 16', { accumulation: 'e6m9', chunk: 16 }],
    ['fp16 stochastic (runs the dense product)', { accumulation: 'fp16', rounding: 'stochastic', seed: 3 }],
  ];
  for (const [name, options] of cases) {
    test(name, () => {
      for (const [rows, cols, br, bc] of [[24, 72, 8, 8], [20, 36, 4, 4], [16, 36, 1, 1]] as const) {
        const { w: wf } = pruned(rows, cols, br, bc, 0.4, rows);
        // Weights as E5M2 codes with a scale; their decoded values in the BSR.
        const codes = encode(bsrToDense(wf).map((v) => v * 8), 'e5m2');
        const values = decode(codes, 'e5m2');
        const w = bsrFromDense(values, rows, cols, br, bc, keepOf(wf));
        const n = 45;
        const xq = makeQTensor(encode(uniform(cols * n, 9).map((v) => v * 4), 'e5m2'), 'e5m2', 4);
        const want = lowpGemm(rows, n, cols, makeQTensor(codes, 'e5m2', 8), xq, options);
        for (const threads of [1, 2]) assertSameValues(bsrLowpGemm(w, 'e5m2', 8, xq, n, { ...options, threads }), want, `${rows}x${cols} ${br}x${bc}, ${threads} threads`);
      }
    });
  }

  test('an aligned accumulator is refused (its groups follow the dense sum)', () => {
    const { w } = pruned(8, 64, 8, 8, 0.5, 1);
    assert.throws(() => bsrLowpGemm(w, 'e4m3', 1, new Float32Array(64), 1, { accumulation: 'hopper-fp8' }), /aligned accumulator groups products/);
  });
});

describe('convolution forward: the sparse product equals the dense direct convolution on the pruned weights', () => {
  const cases: Array<[string, number[], number[], Parameters<typeof convGeometry>[2]]> = [
    ['3x3 stride 1 pad 1, 16x16 planes', [3, 16, 16, 16], [32, 16, 3, 3], { padding: 1 }],
    ['3x3 stride 2 pad 1, 5x5 planes (not a multiple of 16)', [2, 8, 9, 9], [16, 8, 3, 3], { padding: 1, stride: 2 }],
    ['1x1 stride 2', [2, 24, 8, 8], [40, 24, 1, 1], { stride: 2 }],
    // Stride 1 with rows of at least 16 outputs runs on the padded images directly.
    ['5x3 stride 1, no padding, 20-wide rows (the direct path, a partial vector per row)', [2, 6, 9, 22], [24, 6, 5, 3], {}],
    ['3x3 stride 1 pad 1, 17x33', [1, 5, 17, 33], [16, 5, 3, 3], { padding: 1 }],
    // Planes that are a multiple of 16 outputs are packed 16 at a time with AVX-512: a constant
    // shift (stride 1, rows as wide as the input's), two loads and a permute (stride 2, rows a
    // multiple of 16), or gathered lanes (any other geometry).
    ['3x3 stride 1 pad 1, 8x8 planes (a constant shift per tap)', [3, 16, 8, 8], [16, 16, 3, 3], { padding: 1 }],
    ['3x3 stride 2 pad 1, 32x32 to 16x16 (stride 2, even lanes)', [2, 8, 32, 32], [16, 8, 3, 3], { padding: 1, stride: 2 }],
    ['2x2 stride 2, 33x32 to 16x16 (stride 2, an odd height)', [1, 4, 33, 32], [8, 4, 2, 2], { stride: 2 }],
    ['3x3 stride 2 pad 1, 16x16 to 8x8 (gathered lanes)', [2, 8, 16, 16], [16, 8, 3, 3], { padding: 1, stride: 2 }],
    ['3x3 dilation 2 pad 1, 14x14 to 12x12 (gathered lanes)', [2, 4, 14, 14], [8, 4, 3, 3], { padding: 1, dilation: 2 }],
    ['3x3 stride 1 pad 1, 14x14 planes over 6 images (196 outputs: a short group per image)', [6, 8, 14, 14], [16, 8, 3, 3], { padding: 1 }],
    ['3x3 stride 1 pad 1, 7x7 planes over 9 images', [9, 16, 7, 7], [16, 16, 3, 3], { padding: 1 }],
    ['3x1 stride (1, 2) pad (1, 0), 8x32 to 8x16 (stride 2 along rows only)', [1, 6, 8, 32], [8, 6, 3, 1], { padding: [1, 0], stride: [1, 2] }],
    ['3x3 stride 1 pad 3, 10x10 to 14x14 (padding past the kernel)', [2, 4, 10, 10], [8, 4, 3, 3], { padding: 3 }],
    ['3x3 stride 3 pad 2, 20x20 to 8x8 (three phases per axis)', [2, 5, 20, 20], [16, 5, 3, 3], { padding: 2, stride: 3 }],
  ];
  for (const [name, xShape, wShape, options] of cases) {
    test(name, () => {
      const geo = convGeometry(xShape as [number, number, number, number], wShape as [number, number, number, number], options);
      const g = groupColumns(geo);
      const rows = geo.outChannels, cols = g.channels * g.kernelH * g.kernelW, plane = g.outH * g.outW;
      const x = uniform(geo.batch * geo.channels * geo.height * geo.width, 3);
      for (const [br, bc] of [[8, 8], [16, 16], [1, 1], [4, 4], [1, cols]]) {
        const { w, masked } = pruned(rows, cols, br, bc, 0.35, br + bc);
        const dense = new Float32Array(geo.batch * rows * plane);
        columnsGemm(rows, geo.batch * plane, cols, masked, { x, geometry: g, batch: geo.batch, imageStride: geo.channels * geo.height * geo.width }, dense,
          { outImages: { plane, imageStride: rows * plane } });
        for (const threads of [1, 2]) assertSameValues(bsrConv2dForward(w, x, g, geo.batch, { threads }), dense, `${br}x${bc}, ${threads} threads`);
        assertSameValues(bsrConv2dForwardReference(w, x, g, geo.batch), dense, `${br}x${bc}, the reference`);
      }
    });
  }

  test('E5M2 images, read as codes while packing, equal the dense product on the codes', () => {
    // 12 x 12 outputs: the panel path; 16 x 16 (further below): the direct path.
    const geo = convGeometry([2, 16, 12, 12], [24, 16, 3, 3], { padding: 1 });
    const g = groupColumns(geo);
    const codes = encode(uniform(2 * 16 * 144, 8), 'e5m2') as Uint8Array;
    const table = decode(Uint8Array.from({ length: 256 }, (_, i) => i), 'e5m2');
    const format = resolveFormat('e5m2');
    const source = { x: codes, table, format, geometry: g, batch: 2, imageStride: 16 * 144 };
    for (const [br, bc] of [[8, 8], [1, 144]]) {
      const { w: wf } = pruned(24, 144, br, bc, 0.5, 2);
      const wv = decode(encode(bsrToDense(wf), 'e5m2'), 'e5m2');
      const w = bsrFromDense(wv, 24, 144, br, bc, keepOf(wf));
      const dense = new Float32Array(2 * 24 * 144);
      columnsGemm(24, 288, 144, wv, source, dense, { outImages: { plane: 144, imageStride: 24 * 144 } });
      assertSameValues(bsrConv2dForward(w, { codes, table, format }, g, 2), dense, `${br}x${bc}`);
    }
    const geo16 = convGeometry([2, 8, 16, 16], [16, 8, 3, 3], { padding: 1 });
    const g16 = groupColumns(geo16);
    const codes16 = encode(uniform(2 * 8 * 256, 9), 'e5m2') as Uint8Array;
    const { w: wf } = pruned(16, 72, 8, 8, 0.5, 5);
    const wv = decode(encode(bsrToDense(wf), 'e5m2'), 'e5m2');
    const w = bsrFromDense(wv, 16, 72, 8, 8, keepOf(wf));
    const dense = new Float32Array(2 * 16 * 256);
    columnsGemm(16, 512, 72, wv, { x: codes16, table, format, geometry: g16, batch: 2, imageStride: 8 * 256 }, dense, { outImages: { plane: 256, imageStride: 16 * 256 } });
    assertSameValues(bsrConv2dForward(w, { codes: codes16, table, format }, g16, 2), dense, 'direct path, codes');
  });

  test('E5M2 codes in every way of packing columns equal the dense product on the codes', () => {
    const table = decode(Uint8Array.from({ length: 256 }, (_, i) => i), 'e5m2');
    const format = resolveFormat('e5m2');
    for (const [xShape, wShape, options] of [
      [[2, 8, 8, 8], [16, 8, 3, 3], { padding: 1 }],
      [[2, 8, 32, 32], [16, 8, 3, 3], { padding: 1, stride: 2 }],
      [[1, 4, 33, 32], [8, 4, 2, 2], { stride: 2 }],
      [[2, 8, 16, 16], [16, 8, 3, 3], { padding: 1, stride: 2 }],
      [[2, 4, 14, 14], [8, 4, 3, 3], { padding: 1, dilation: 2 }],
      // Planes of 196 and 49 outputs: groups of 16 end short at each image, runs start inside groups.
      [[6, 8, 14, 14], [16, 8, 3, 3], { padding: 1 }],
      [[9, 16, 7, 7], [16, 16, 3, 3], { padding: 1 }],
      [[3, 4, 15, 15], [8, 4, 3, 3], { padding: 1, stride: 2 }],
    ] as Array<[number[], number[], Parameters<typeof convGeometry>[2]]>) {
      const geo = convGeometry(xShape as [number, number, number, number], wShape as [number, number, number, number], options);
      const g = groupColumns(geo);
      const rows = geo.outChannels, cols = g.channels * g.kernelH * g.kernelW, plane = g.outH * g.outW;
      const imageStride = geo.channels * geo.height * geo.width;
      const codes = encode(uniform(geo.batch * imageStride, rows + cols), 'e5m2', { saturate: true }) as Uint8Array;
      const { w: wf } = pruned(rows, cols, 8, 8, 0.5, cols);
      const wv = decode(encode(bsrToDense(wf), 'e5m2'), 'e5m2');
      const w = bsrFromDense(wv, rows, cols, 8, 8, keepOf(wf));
      const dense = new Float32Array(geo.batch * rows * plane);
      columnsGemm(rows, geo.batch * plane, cols, wv, { x: codes, table, format, geometry: g, batch: geo.batch, imageStride }, dense,
        { outImages: { plane, imageStride: rows * plane } });
      for (const threads of [1, 2]) assertSameValues(bsrConv2dForward(w, { codes, table, format }, g, geo.batch, { threads }), dense, `${xShape} ${threads} threads`);
      assertSameValues(bsrConv2dForwardReference(w, { codes, table, format }, g, geo.batch), dense, `${xShape} the reference`);
    }
  });

  test('bsrLowpConv2dForward equals lowpConv2dForward on the pruned codes (scales, two formats), and declines what it cannot match', () => {
    const geo = convGeometry([3, 8, 14, 14], [16, 8, 3, 3], { padding: 1, stride: 1 });
    const g = groupColumns(geo);
    const { w: wf } = pruned(16, 72, 4, 4, 0.5, 12);
    const keep = keepOf(wf);
    const pattern = { rows: 16, cols: 72, br: 4, bc: 4, keep };
    for (const [wFormat, xFormat, wScale, xScale] of [['e5m2', 'e5m2', 1, 1], ['e4m3', 'e5m2', 3.5, 0.0625], ['e4m3', 'e4m3', 0.3, 7]] as const) {
      const w = makeQTensor(encode(bsrToDense(wf).map((v) => v * wScale), wFormat, { saturate: true }), wFormat, wScale);
      const x = makeQTensor(encode(uniform(3 * 8 * 196, 5).map((v) => v * xScale), xFormat, { saturate: true }), xFormat, xScale);
      const dense = lowpConv2dForward(x, w, geo, {});
      for (const threads of [1, 2]) assertSameValues(bsrLowpConv2dForward(pattern, w, x, g, 3, { threads })!, dense, `${wFormat} x ${xFormat}, ${threads} threads`);
      assertSameValues(bsrLowpConv2dForward(pattern, w, x, g, 3, { accumulation: 'fp32' })!, dense, 'fp32 named');
      for (const options of [{ accumulation: 'e6m9' }, { chunk: 64 }, { rounding: 'stochastic' as const, seed: 1 }, { output: { format: 'bf16' } }, { accumulation: 'hopper-fp8' }]) {
        assert.equal(bsrLowpConv2dForward(pattern, w, x, g, 3, options), null, JSON.stringify(options));
      }
      assert.equal(bsrLowpConv2dForward(pattern, bsrToDense(wf), x, g, 3), null, 'float32 weights');
    }
  });

  test('a weight view that does not match the geometry is refused', () => {
    const geo = convGeometry([1, 4, 6, 6], [8, 4, 3, 3], { padding: 1 });
    const { w } = pruned(8, 35, 4, 4, 0.5, 1);
    assert.throws(() => bsrConv2dForward(w, new Float32Array(144), groupColumns(geo), 1), /the weight view has 35 columns; the geometry's column matrix has 36 rows/);
  });
});
