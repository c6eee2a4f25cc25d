/**
 * The input gradient of a block-pruned convolution on the sparse kernel: bit for bit the dense
 * strided route (gemm with W^T, then col2im) on the pruned weights, native and reference, 1 and 2
 * threads; bad operands refused. The weight gradient at the kept blocks: bit for bit the dense
 * direct route's (the SGEMM's chain over the batch) at every kept entry, zeros elsewhere, for
 * float and one-byte-code operands, every way of packing columns, several chunks of columns. The
 * stride-1 input gradient of one-byte codes (bsrLowpConv2dInputGradient): bit for bit
 * lowpConv2dBackwardData on the pruned codes, and refused where it cannot be.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bsrConv2dInputGradient, bsrConv2dWeightGradient, bsrFromDense, bsrLowpConv2dInputGradient, bsrTranspose, convGeometry, decode, encode, groupColumns, lowpConv2dBackwardData,
} from '../../src/kernels/index.js';
import { makeQTensor, resolveFormat } from '../../src/formats/index.js';
import { nativeCore } from '../../src/kernels/native.js';
import { conv2dGradients } from '../../src/ops/conv.js';
import { uniform, xorshift } from '../helpers/random.js';
import { assertSameBits } from '../helpers/bits.js';

function prunedWeight(rows: number, cols: number, br: number, bc: number, seed: number) {
  const next = xorshift(seed);
  const keep = Uint8Array.from({ length: Math.ceil(rows / br) * Math.ceil(cols / bc) }, () => (next() % 3 === 0 ? 1 : 0));
  keep[0] = 1;
  const w = bsrFromDense(uniform(rows * cols, seed), rows, cols, br, bc, keep);
  const dense = new Float32Array(rows * cols);
  for (let q = 0; q + 1 < w.rowPtr.length; q++) {
    for (let b = w.rowPtr[q]; b < w.rowPtr[q + 1]; b++) {
      for (let r = 0; r < br && q * br + r < rows; r++) {
        for (let t = 0; t < bc && w.colIdx[b] * bc + t < cols; t++) dense[(q * br + r) * cols + w.colIdx[b] * bc + t] = w.values[b * br * bc + r * bc + t];
      }
    }
  }
  return { w, dense };
}

describe('bsrConv2dInputGradient', () => {
  const cases: Array<[string, [number, number, number, number], [number, number, number, number], Parameters<typeof convGeometry>[2], number, number]> = [
    ['3x3 stride 2 pad 1, 8x8 blocks', [3, 16, 12, 12], [24, 16, 3, 3], { padding: 1, stride: 2 }, 8, 8],
    ['1x1 stride 2 (a projection shortcut), 4x4 blocks', [2, 12, 10, 10], [20, 12, 1, 1], { stride: 2 }, 4, 4],
    ['3x3 stride 2, odd size, blocks that do not divide the view', [2, 5, 9, 9], [13, 5, 3, 3], { padding: 1, stride: 2 }, 8, 8],
    ['3x3 stride 2 onto 4 x 4 planes, several images an item (6 = 4 + 2)', [6, 8, 8, 8], [16, 8, 3, 3], { padding: 1, stride: 2 }, 8, 8],
  ];
  for (const [name, xShape, wShape, options, br, bc] of cases) {
    test(`${name}: the dense strided route's bits`, () => {
      const geo = convGeometry(xShape, wShape, options);
      const rows = wShape[0], cols = wShape[1] * wShape[2] * wShape[3];
      const { w, dense } = prunedWeight(rows, cols, br, bc, rows + cols);
      const dy = uniform(geo.batch * rows * geo.outH * geo.outW, 7);
      const want = conv2dGradients({ g: dy, x: null, weight: dense, geometry: geo, algorithm: 'direct' }).gx!;
      const wT = bsrTranspose(w);
      for (const threads of [1, 2]) assertSameBits(bsrConv2dInputGradient(wT, dy, groupColumns(geo), geo.batch, { threads }), want, `${threads} threads`);
      assertSameBits(bsrConv2dInputGradient(wT, dy, groupColumns(geo), geo.batch, { reference: true }), want, 'reference');
      const out = new Float32Array(want.length);
      assert.equal(bsrConv2dInputGradient(wT, dy, groupColumns(geo), geo.batch, { out }), out);
      assertSameBits(out, want, 'into out');
    });
  }

  const stride1: Array<[string, [number, number, number, number], [number, number, number, number], Parameters<typeof convGeometry>[2], number, number]> = [
    ['3x3 stride 1 pad 1, 8x8 blocks', [3, 16, 12, 12], [24, 16, 3, 3], { padding: 1 }, 8, 8],
    ['3x3 dilation 2 pad 2, 16x16 blocks, 7 x 7 planes', [2, 32, 7, 7], [32, 32, 3, 3], { padding: 2, dilation: 2 }, 16, 16],
    ['1x1, 4x4 blocks', [2, 12, 10, 10], [20, 12, 1, 1], {}, 4, 4],
    ['3x3 pad 1 on 4 x 4 planes, several images an item (5 = 4 + 1)', [5, 16, 4, 4], [16, 16, 3, 3], { padding: 1 }, 8, 8],
    ['3x3 pad 1 on 2 x 2 planes (all 7 images in one item)', [7, 8, 2, 2], [8, 8, 3, 3], { padding: 1 }, 8, 8],
    ['5x5 pad 2 on 6 x 6 planes (25 taps)', [2, 4, 6, 6], [8, 4, 5, 5], { padding: 2 }, 4, 4],
    ['3x3 without padding (outputs narrower than the input: col2im row by row)', [2, 8, 8, 8], [16, 8, 3, 3], {}, 8, 8],
    ['3x1 pad (1, 0) on 9 x 5 planes', [3, 8, 9, 5], [8, 8, 3, 1], { padding: [1, 0] }, 8, 8],
    // 1152 rows of X: on AVX2 in chunks narrower than a panel (48 + 48 + 32 columns)
    ['3x3 pad 1, 128 channels on 4 x 4 planes (chunks of X narrower than a panel)', [8, 128, 4, 4], [16, 128, 3, 3], { padding: 1 }, 8, 8],
  ];
  for (const [name, xShape, wShape, options, br, bc] of stride1) {
    test(`${name}: the kernel adds W^T dY row by row as col2im does (the reference's bits), near the dense gradient`, () => {
      const geo = convGeometry(xShape, wShape, options);
      const rows = wShape[0], cols = wShape[1] * wShape[2] * wShape[3];
      const { w, dense } = prunedWeight(rows, cols, br, bc, rows + 5 * cols);
      const dy = uniform(geo.batch * rows * geo.outH * geo.outW, 9);
      const wT = bsrTranspose(w);
      const want = bsrConv2dInputGradient(wT, dy, groupColumns(geo), geo.batch, { reference: true });
      for (const threads of [1, 2]) assertSameBits(bsrConv2dInputGradient(wT, dy, groupColumns(geo), geo.batch, { threads }), want, `${threads} threads`);
      // Into an array of stale values that the kernel clears first.
      const stale = new Float32Array(want.length).fill(Number.NaN);
      bsrConv2dInputGradient(wT, dy, groupColumns(geo), geo.batch, { out: stale, clear: true });
      assertSameBits(stale, want, 'cleared');
      const full = conv2dGradients({ g: dy, x: null, weight: dense, geometry: geo, algorithm: 'direct' }).gx!;
      for (let i = 0; i < full.length; i++) assert.ok(Math.abs(full[i] - want[i]) <= 1e-5 * (1 + Math.abs(full[i])), `${i}: ${want[i]} vs ${full[i]}`);
    });
  }

  test('bad operands are refused with what was expected', () => {
    const geo = convGeometry([1, 4, 6, 6], [8, 4, 3, 3], { padding: 1, stride: 2 });
    const { w } = prunedWeight(8, 36, 4, 4, 3);
    assert.throws(() => bsrConv2dInputGradient(bsrTranspose(w), new Float32Array(5), groupColumns(geo), 1), /dy has 5 values; expected batch x out channels x plane = 72/);
    const { w: other } = prunedWeight(8, 32, 4, 4, 3);
    assert.throws(() => bsrConv2dInputGradient(bsrTranspose(other), new Float32Array(72), groupColumns(geo), 1), /W\^T has 32 rows; the geometry's column matrix has 36/);
    assert.throws(() => bsrConv2dInputGradient(bsrTranspose(w), new Float32Array(72), groupColumns(geo), 1, { out: new Float32Array(3) }), /out has 3 values; expected batch x channels x H x W = 144/);
  });
});

describe('bsrConv2dWeightGradient', () => {
  const cases: Array<[string, [number, number, number, number], [number, number, number, number], Parameters<typeof convGeometry>[2], number, number]> = [
    ['3x3 stride 1 pad 1 (shifted rows), 8x8 blocks', [3, 16, 12, 16], [24, 16, 3, 3], { padding: 1 }, 8, 8],
    ['3x3 stride 2 on 32 x 32 (even lanes), 8x8 blocks', [2, 8, 32, 32], [16, 8, 3, 3], { padding: 1, stride: 2 }, 8, 8],
    ['3x3 stride 2, odd size (gathered lanes), blocks that do not divide the view', [2, 5, 9, 9], [13, 5, 3, 3], { padding: 1, stride: 2 }, 8, 8],
    ['1x1 (a projection shortcut), 4x4 blocks', [2, 12, 10, 10], [20, 12, 1, 1], { stride: 2 }, 4, 4],
    ['16x16 blocks, 7 x 7 planes', [4, 32, 7, 7], [32, 32, 3, 3], { padding: 1 }, 16, 16],
    ['single entries (1x1 blocks)', [2, 4, 8, 8], [6, 4, 3, 3], { padding: 1 }, 1, 1],
    ['several chunks of columns (64 x 64 planes)', [2, 4, 64, 64], [8, 4, 3, 3], { padding: 1 }, 4, 4],
  ];
  for (const [name, xShape, wShape, options, br, bc] of cases) {
    test(`${name}: the dense direct route's bits at the kept entries, zeros elsewhere`, () => {
      const geo = convGeometry(xShape, wShape, options);
      const rows = wShape[0], cols = wShape[1] * wShape[2] * wShape[3];
      const { w, dense } = prunedWeight(rows, cols, br, bc, rows + 3 * cols);
      const x = uniform(geo.batch * geo.channels * geo.height * geo.width, 5);
      const dy = uniform(geo.batch * rows * geo.outH * geo.outW, 7);
      const full = conv2dGradients({ g: dy, x, weight: null, geometry: geo, algorithm: 'direct' }).gw!;
      const want = full.map((v, i) => (dense[i] !== 0 ? v : 0));
      const g = groupColumns(geo);
      for (const threads of [1, 2]) assertSameBits(bsrConv2dWeightGradient(w, x, dy, g, geo.batch, { threads }), want, `${threads} threads`);
      assertSameBits(bsrConv2dWeightGradient(w, x, dy, g, geo.batch, { reference: true }), want, 'reference');
      const out = new Float32Array(rows * cols);
      assert.equal(bsrConv2dWeightGradient(w, x, dy, g, geo.batch, { out }), out);
      assertSameBits(out, want, 'into out');
    });
  }

  test('the direct tiles (native, blocks a multiple of 8 rows tall) give the reference bits and leave the other entries as they were', (t) => {
    const native = nativeCore();
    if (!native) return t.skip('no native core');
    const shapes: Array<[string, [number, number, number, number], [number, number, number, number], Parameters<typeof convGeometry>[2], number, number]> = [
      ['8x8 blocks, 13 output channels (a partial block row), many columns per row', [3, 11, 9, 10], [13, 11, 3, 3], { padding: 1 }, 8, 8],
      ['24x4 blocks (three slices of 8 rows)', [2, 6, 8, 8], [48, 6, 3, 3], { padding: 1 }, 24, 4],
      ['16x16 blocks (16 lanes), stride 2, odd size', [2, 16, 9, 9], [32, 16, 3, 3], { padding: 1, stride: 2 }, 16, 16],
      ['8x8 blocks, dilation 2, 5x5 kernel', [2, 4, 12, 12], [16, 4, 5, 5], { padding: 3, dilation: 2 }, 8, 8],
      ['8x8 blocks, 1x1 stride 2', [4, 24, 8, 8], [40, 24, 1, 1], { stride: 2 }, 8, 8],
      // (AVX2 runs a tile's slices in passes: one slice of 4 columns; five slices, 3 + 2.)
      ['8x4 blocks, 8 output channels (one slice a tile, 4 columns)', [2, 5, 7, 7], [8, 5, 3, 3], { padding: 1 }, 8, 4],
      ['40x8 blocks (five slices of 8 rows)', [2, 4, 6, 6], [40, 4, 3, 3], { padding: 1 }, 40, 8],
    ];
    for (const [name, xShape, wShape, options, br, bc] of shapes) {
      const geo = convGeometry(xShape, wShape, options);
      const rows = wShape[0], cols = wShape[1] * wShape[2] * wShape[3];
      const { w } = prunedWeight(rows, cols, br, bc, rows + 7 * cols);
      const x = uniform(geo.batch * geo.channels * geo.height * geo.width, 15);
      const dy = uniform(geo.batch * rows * geo.outH * geo.outW, 17);
      const g = groupColumns(geo);
      const want = bsrConv2dWeightGradient(w, x, dy, g, geo.batch, { reference: true, out: new Float32Array(rows * cols).fill(7) });
      for (const threads of [1, 2]) {
        const out = new Float32Array(rows * cols).fill(7);
        const done = native.directConvWeightGradientSparse({ data: dy }, { data: x }, out, w.rowPtr, w.colIdx, {
          batch: geo.batch, channels: geo.channels, height: geo.height, width: geo.width, outChannels: rows, kernelH: geo.kernelH, kernelW: geo.kernelW,
          padH: geo.padH, padW: geo.padW, outH: geo.outH, outW: geo.outW, strideH: geo.strideH, strideW: geo.strideW, dilationH: geo.dilationH,
          dilationW: geo.dilationW, xImageStride: geo.channels * geo.height * geo.width, yImageStride: rows * geo.outH * geo.outW, br, bc, threads,
        });
        if (!done) return t.skip('no AVX-512 or AVX2');
        assertSameBits(out, want, `${name}, ${threads} threads`);
      }
    }
  });

  test('one-byte codes (E5M2 and E4M3 tables) give the dense route on their values', () => {
    const geo = convGeometry([2, 16, 16, 16], [16, 16, 3, 3], { padding: 1 });
    const { w, dense } = prunedWeight(16, 144, 8, 8, 11);
    const g = groupColumns(geo);
    for (const name of ['e5m2', 'e4m3']) {
      const format = resolveFormat(name);
      const table = decode(Uint8Array.from({ length: 256 }, (_, i) => i), name);
      table.forEach((v, i) => { if (!Number.isFinite(v)) table[i] = 0; });
      const xCodes = encode(uniform(2 * 16 * 256, 21).map((v) => v * 8), name, { saturate: true }) as Uint8Array;
      const dyCodes = encode(uniform(2 * 16 * 256, 22).map((v) => v * 8), name, { saturate: true }) as Uint8Array;
      const xv = Float32Array.from(xCodes, (c) => table[c]), dyv = Float32Array.from(dyCodes, (c) => table[c]);
      const full = conv2dGradients({ g: dyv, x: xv, weight: null, geometry: geo, algorithm: 'direct' }).gw!;
      const want = full.map((v, i) => (dense[i] !== 0 ? v : 0));
      const got = bsrConv2dWeightGradient(w, { codes: xCodes, table, format }, { codes: dyCodes, table, format }, g, 2);
      assertSameBits(got, want, name);
      assertSameBits(bsrConv2dWeightGradient(w, { codes: xCodes, table, format }, dyv, g, 2, { threads: 1 }), want, `${name}, float dy`);
    }
  });

  test('one-byte codes on bfloat16 pairs of positions (stride 1 along rows, even output rows) and where pairs do not apply: the dense route on their values', () => {
    const table = decode(Uint8Array.from({ length: 256 }, (_, i) => i), 'e5m2');
    table.forEach((v, i) => { if (!Number.isFinite(v)) table[i] = 0; });
    const format = resolveFormat('e5m2');
    const cases: Array<[string, [number, number, number, number], [number, number, number, number], Parameters<typeof convGeometry>[2], number, number]> = [
      ['3x3 pad 1 on 8 x 8, 5 images', [5, 24, 8, 8], [24, 24, 3, 3], { padding: 1 }, 8, 8],
      ['5x5 dilation 2 on 12 x 12', [3, 8, 12, 12], [16, 8, 5, 5], { padding: 4, dilation: 2 }, 8, 8],
      ['16x16 blocks, 3x3 pad 1 on 4 x 4 (two pairs a row)', [9, 32, 4, 4], [32, 32, 3, 3], { padding: 1 }, 16, 16],
      ['odd output rows (7 x 7): the float tile', [3, 16, 7, 7], [16, 16, 3, 3], { padding: 1 }, 8, 8],
      ['stride 2 (pairs apply along stride-1 rows only): the float tile', [2, 16, 10, 10], [16, 16, 3, 3], { padding: 1, stride: 2 }, 8, 8],
    ];
    for (const [name, xShape, wShape, options, br, bc] of cases) {
      const geo = convGeometry(xShape, wShape, options);
      const rows = wShape[0], cols = wShape[1] * wShape[2] * wShape[3];
      const { w, dense } = prunedWeight(rows, cols, br, bc, rows + 3 * cols);
      const g = groupColumns(geo);
      const xCodes = encode(uniform(geo.batch * geo.channels * geo.height * geo.width, 23).map((v) => v * 8), 'e5m2', { saturate: true }) as Uint8Array;
      const dyCodes = encode(uniform(geo.batch * rows * geo.outH * geo.outW, 24).map((v) => v * 8), 'e5m2', { saturate: true }) as Uint8Array;
      const xv = Float32Array.from(xCodes, (c) => table[c]), dyv = Float32Array.from(dyCodes, (c) => table[c]);
      const full = conv2dGradients({ g: dyv, x: xv, weight: null, geometry: geo, algorithm: 'direct' }).gw!;
      const want = full.map((v, i) => (dense[i] !== 0 ? v : 0));
      for (const threads of [1, 2]) {
        assertSameBits(bsrConv2dWeightGradient(w, { codes: xCodes, table, format }, { codes: dyCodes, table, format }, g, geo.batch, { threads }), want, `${name}, ${threads} threads`);
      }
    }
  });

  test('bad operands are refused with what was expected', () => {
    const geo = convGeometry([1, 4, 6, 6], [8, 4, 3, 3], { padding: 1 });
    const g = groupColumns(geo);
    const { w } = prunedWeight(8, 36, 4, 4, 3);
    const x = new Float32Array(144), dy = new Float32Array(288);
    assert.throws(() => bsrConv2dWeightGradient(w, new Float32Array(5), dy, g, 1), /x has 5 values; expected 144/);
    assert.throws(() => bsrConv2dWeightGradient(w, x, new Float32Array(5), g, 1), /dy has 5 values; expected 288/);
    assert.throws(() => bsrConv2dWeightGradient(w, x, dy, g, 1, { out: new Float32Array(3) }), /out has 3 values; expected 8 x 36/);
    const { w: other } = prunedWeight(8, 32, 4, 4, 3);
    assert.throws(() => bsrConv2dWeightGradient(other, x, dy, g, 1), /the pattern has 32 columns; the geometry's column matrix has 36/);
    assert.throws(() => bsrConv2dWeightGradient(w, { codes: new Uint8Array(144), table: new Float32Array(3), format: resolveFormat('e5m2') }, dy, g, 1), /x as codes needs the table/);
  });
});

describe('bsrLowpConv2dInputGradient (one-byte codes, float32 accumulation)', () => {
  // The kernel runs on AVX-512 or AVX2 vectors (on the plain loops it declines and the dense product runs).
  const vectors = ['avx512', 'avx2'].includes(nativeCore()?.info().gemmKernel ?? '');
  test('declines on the plain loops (the dense product runs)', (t) => {
    if (vectors || !nativeCore()) return t.skip('vector tiles are in use');
    const geo = convGeometry([2, 8, 6, 6], [8, 8, 3, 3], { padding: 1 });
    const keep = new Uint8Array(2 * 18).fill(1);
    const w = makeQTensor(encode(uniform(8 * 72, 1), 'e5m2', { saturate: true }), 'e5m2', 1);
    const dy = makeQTensor(encode(uniform(2 * 8 * 36, 2), 'e5m2', { saturate: true }), 'e5m2', 1);
    assert.equal(bsrLowpConv2dInputGradient({ rows: 8, cols: 72, br: 4, bc: 4, keep }, dy, w, groupColumns(geo), 2), null);
  });

  /** A pruned weight's codes (+0 outside the kept blocks) and its pattern. */
  function prunedCodes(rows: number, cols: number, br: number, bc: number, seed: number, format: string, scale: number) {
    const { w, dense } = prunedWeight(rows, cols, br, bc, seed);
    const keep = new Uint8Array(Math.ceil(rows / br) * Math.ceil(cols / bc));
    for (let q = 0; q + 1 < w.rowPtr.length; q++) for (let b = w.rowPtr[q]; b < w.rowPtr[q + 1]; b++) keep[q * Math.ceil(cols / bc) + w.colIdx[b]] = 1;
    const codes = encode(dense.map((v) => v * scale), format, { saturate: true }) as Uint8Array;
    return { pattern: { rows, cols, br, bc, keep }, w: makeQTensor(codes, format, scale) };
  }

  const cases: Array<[string, [number, number, number, number], [number, number, number, number], Parameters<typeof convGeometry>[2], number, number]> = [
    ['3x3 pad 1, 8x8 blocks', [3, 16, 12, 12], [24, 16, 3, 3], { padding: 1 }, 8, 8],
    ['3x3 pad 1 on 4 x 4 planes (images stacked), 8x8 blocks', [5, 16, 4, 4], [32, 16, 3, 3], { padding: 1 }, 8, 8],
    ['3x3 pad 1 on 32 x 32 planes, 16x16 blocks', [2, 16, 32, 32], [16, 16, 3, 3], { padding: 1 }, 16, 16],
    ['5x5 pad 2, blocks that do not divide the view', [2, 5, 9, 9], [13, 5, 5, 5], { padding: 2 }, 8, 8],
    ['3x3 dilation 2 pad 2, 4x4 blocks', [2, 8, 7, 7], [8, 8, 3, 3], { padding: 2, dilation: 2 }, 4, 4],
    ['3x3 without padding (outputs smaller than the input), 4x4 blocks', [2, 8, 8, 8], [12, 8, 3, 3], {}, 4, 4],
    ['1x1, 4x4 blocks', [2, 12, 10, 10], [20, 12, 1, 1], {}, 4, 4],
    ['3x1 pad (1, 0)', [3, 8, 9, 5], [8, 8, 3, 1], { padding: [1, 0] }, 8, 8],
    // Stride 1 runs 16 images in a vector's lanes: batches past 16, the last group partial.
    ['3x3 pad 1, 37 images (three groups of 16, the last partial)', [37, 24, 6, 6], [40, 24, 3, 3], { padding: 1 }, 8, 8],
    ['3x3 pad 1 on 4 x 4 planes, 21 images, 40 input channels', [21, 40, 4, 4], [16, 40, 3, 3], { padding: 1 }, 4, 4],
    ['3x3 pad 1 on 7 x 7 planes, 17 images, 16x16 blocks', [17, 16, 7, 7], [32, 16, 3, 3], { padding: 1 }, 16, 16],
    // Strided: the dilated output gradient's phases.
    ['3x3 stride 2 pad 1, 8x8 blocks', [3, 16, 12, 12], [24, 16, 3, 3], { padding: 1, stride: 2 }, 8, 8],
    ['3x3 stride 2 pad 1 on odd sizes (phases of unequal rows and columns)', [2, 8, 9, 7], [16, 8, 3, 3], { padding: 1, stride: 2 }, 8, 8],
    ['1x1 stride 2 (a projection shortcut)', [2, 12, 10, 10], [20, 12, 1, 1], { stride: 2 }, 4, 4],
    ['3x3 stride (2, 3) pad 1, dilation 2', [2, 8, 13, 14], [8, 8, 3, 3], { padding: 1, stride: [2, 3], dilation: 2 }, 4, 4],
    ['5x5 stride 2 pad 2 onto 4 x 4 outputs (images stacked)', [5, 8, 8, 8], [16, 8, 5, 5], { padding: 2, stride: 2 }, 8, 8],
  ];
  for (const [name, xShape, wShape, options, br, bc] of cases) {
    test(`${name}: lowpConv2dBackwardData's bits on the pruned codes (scales, two formats, 1 and 2 threads)`, (t) => {
      if (!vectors) return t.skip('no vector tiles');
      const geo = convGeometry(xShape, wShape, options);
      const rows = wShape[0], cols = wShape[1] * wShape[2] * wShape[3];
      for (const [wFormat, dyFormat, wScale, dyScale] of [['e5m2', 'e5m2', 1, 1], ['e4m3', 'e5m2', 3.5, 0.0625], ['e4m3', 'e4m3', 0.3, 7]] as const) {
        const { pattern, w } = prunedCodes(rows, cols, br, bc, rows + cols, wFormat, wScale);
        const dy = makeQTensor(encode(uniform(geo.batch * rows * geo.outH * geo.outW, 31).map((v) => v * 4 * dyScale), dyFormat, { saturate: true }), dyFormat, dyScale);
        const want = lowpConv2dBackwardData(dy, w, geo, {});
        for (const threads of [1, 2]) {
          assertSameBits(bsrLowpConv2dInputGradient(pattern, dy, w, groupColumns(geo), geo.batch, { threads })!, want, `${wFormat} x ${dyFormat}, ${threads} threads`);
        }
      }
    });
  }

  test('declines what it cannot match: other accumulations, float32 operands, non-finite values', (t) => {
    if (!vectors) return t.skip('no vector tiles');
    const geo = convGeometry([2, 8, 6, 6], [8, 8, 3, 3], { padding: 1 });
    const g = groupColumns(geo);
    const { pattern, w } = prunedCodes(8, 72, 4, 4, 5, 'e5m2', 1);
    const dyValues = uniform(2 * 8 * 36, 6);
    const dy = makeQTensor(encode(dyValues, 'e5m2', { saturate: true }), 'e5m2', 1);
    assert.ok(bsrLowpConv2dInputGradient(pattern, dy, w, g, 2));
    for (const options of [{ accumulation: 'e6m9' }, { chunk: 64 }, { rounding: 'stochastic' as const, seed: 1 }, { output: { format: 'bf16' } }, { accumulation: 'hopper-fp8' }]) {
      assert.equal(bsrLowpConv2dInputGradient(pattern, dy, w, g, 2, options), null, JSON.stringify(options));
    }
    assert.equal(bsrLowpConv2dInputGradient(pattern, dyValues, w, g, 2), null, 'float32 dy');
    // An infinite output gradient (E5M2 has infinities): the dense product's 0 x Inf = NaN cannot be left out.
    const inf = dy.codes.slice();
    inf[5] = encode(new Float32Array([Infinity]), 'e5m2')[0];
    const dyInf = makeQTensor(inf, 'e5m2', 1);
    assert.equal(bsrLowpConv2dInputGradient(pattern, dyInf, w, g, 2), null, 'Inf in dy');
  });
});
