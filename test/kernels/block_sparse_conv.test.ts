/**
 * The input gradient of a block-pruned convolution on the sparse kernel: bit for bit the dense
 * strided route (gemm with W^T, then col2im) on the pruned weights, native and reference, 1 and 2
 * threads; bad operands refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bsrConv2dInputGradient, bsrFromDense, bsrTranspose, convGeometry, groupColumns } from '../../src/kernels/index.js';
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

  test('bad operands are refused with what was expected', () => {
    const geo = convGeometry([1, 4, 6, 6], [8, 4, 3, 3], { padding: 1, stride: 2 });
    const { w } = prunedWeight(8, 36, 4, 4, 3);
    assert.throws(() => bsrConv2dInputGradient(bsrTranspose(w), new Float32Array(5), groupColumns(geo), 1), /dy has 5 values; expected batch x out channels x plane = 72/);
    const { w: other } = prunedWeight(8, 32, 4, 4, 3);
    assert.throws(() => bsrConv2dInputGradient(bsrTranspose(other), new Float32Array(72), groupColumns(geo), 1), /W\^T has 32 rows; the geometry's column matrix has 36/);
    assert.throws(() => bsrConv2dInputGradient(bsrTranspose(w), new Float32Array(72), groupColumns(geo), 1, { out: new Float32Array(3) }), /out has 3 values; expected batch x channels x H x W = 144/);
  });
});
