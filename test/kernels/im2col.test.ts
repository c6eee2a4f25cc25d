import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { col2im, col2imBatch, col2imBatchReference, col2imReference, im2col, im2colBatch, im2colBatchReference, im2colReference } from '../../src/kernels/im2col.js';
import { convOutputSize, type ColumnGeometry } from '../../src/kernels/conv_geometry.js';
import { uniform } from '../helpers/random.js';

function geometry(channels: number, height: number, width: number, k: [number, number], s: [number, number], p: [number, number], d: [number, number]): ColumnGeometry {
  return {
    channels,
    height,
    width,
    kernelH: k[0],
    kernelW: k[1],
    strideH: s[0],
    strideW: s[1],
    padH: p[0],
    padW: p[1],
    dilationH: d[0],
    dilationW: d[1],
    outH: convOutputSize(height, k[0], s[0], p[0], d[0]),
    outW: convOutputSize(width, k[1], s[1], p[1], d[1]),
  };
}

const CASES: ColumnGeometry[] = [
  geometry(3, 8, 8, [3, 3], [1, 1], [1, 1], [1, 1]),
  geometry(2, 9, 7, [3, 2], [2, 3], [1, 0], [1, 1]),
  geometry(4, 10, 10, [3, 3], [1, 1], [2, 2], [2, 2]),
  geometry(64, 32, 32, [3, 3], [1, 1], [1, 1], [1, 1]),
  geometry(16, 16, 16, [1, 1], [2, 2], [0, 0], [1, 1]),
  geometry(3, 11, 13, [7, 7], [2, 2], [3, 3], [1, 1]),
  // Stride 2 along rows of 17 outputs (the vector fold's 8-output steps and a tail), odd padding, dilation.
  geometry(3, 33, 35, [3, 3], [2, 2], [1, 2], [1, 2]),
];

describe('im2col / col2im', () => {
  test('output size follows the convolution formula', () => {
    assert.equal(convOutputSize(32, 3, 1, 1, 1), 32);
    assert.equal(convOutputSize(224, 7, 2, 3, 1), 112);
    assert.equal(convOutputSize(10, 3, 1, 2, 2), 10);
  });

  for (const g of CASES) {
    const label = `C${g.channels} ${g.height}x${g.width} k${g.kernelH}x${g.kernelW} s${g.strideH},${g.strideW} p${g.padH},${g.padW} d${g.dilationH}`;
    test(`${label}: fast path equals the reference bit for bit`, () => {
      const x = uniform(g.channels * g.height * g.width, g.channels + g.height);
      const colSize = g.channels * g.kernelH * g.kernelW * g.outH * g.outW;
      const col = new Float32Array(colSize).fill(NaN);
      const colRef = new Float32Array(colSize).fill(NaN);
      im2col(x, col, g);
      im2colReference(x, colRef, g);
      assert.deepEqual(col, colRef);
      const back = uniform(x.length, 5);
      const backRef = Float32Array.from(back);
      col2im(col, back, g);
      col2imReference(colRef, backRef, g);
      assert.deepEqual(back, backRef);
    });

    test(`${label}: col2im is the adjoint of im2col (<im2col x, y> = <x, col2im y>)`, () => {
      const x = uniform(g.channels * g.height * g.width, 3);
      const y = uniform(g.channels * g.kernelH * g.kernelW * g.outH * g.outW, 4);
      const col = new Float32Array(y.length);
      im2col(x, col, g);
      const back = new Float32Array(x.length);
      col2im(y, back, g);
      let left = 0;
      let right = 0;
      for (let i = 0; i < y.length; i++) left += col[i] * y[i];
      for (let i = 0; i < x.length; i++) right += x[i] * back[i];
      assert.ok(Math.abs(left - right) <= 1e-4 * (1 + Math.abs(left)), `${left} vs ${right}`);
    });
  }

  test('short arrays are refused with the sizes needed', () => {
    const g = CASES[0];
    assert.throws(() => im2col(new Float32Array(10), new Float32Array(10), g), /im2col: image holds 10 elements \(needs 192\), columns hold 10 \(need 1728\)/);
  });
});

describe('batched im2col / col2im (a group of channels of an NCHW batch, images side by side)', () => {
  for (const g of CASES.slice(0, 5)) {
    test(`C${g.channels} ${g.height}x${g.width} k${g.kernelH}: fast path equals the reference; image n's block equals im2col of image n`, () => {
      const batch = 3;
      const totalChannels = g.channels + 2;
      const imageStride = totalChannels * g.height * g.width;
      const x = uniform(batch * imageStride, 7);
      const offset = 1 * g.height * g.width; // the group starts at channel 1
      const rows = g.channels * g.kernelH * g.kernelW;
      const plane = g.outH * g.outW;
      const col = new Float32Array(rows * batch * plane).fill(NaN);
      const colRef = new Float32Array(col.length).fill(NaN);
      im2colBatch(x.subarray(offset), col, g, batch, imageStride);
      im2colBatchReference(x.subarray(offset), colRef, g, batch, imageStride);
      assert.deepEqual(col, colRef);
      const single = new Float32Array(rows * plane);
      im2colReference(x.subarray(2 * imageStride + offset), single, g);
      for (let r = 0; r < rows; r++) assert.deepEqual(col.subarray(r * batch * plane + 2 * plane, r * batch * plane + 3 * plane), single.subarray(r * plane, (r + 1) * plane));
      const back = uniform(x.length, 9);
      const backRef = Float32Array.from(back);
      col2imBatch(col, back.subarray(offset), g, batch, imageStride);
      col2imBatchReference(colRef, backRef.subarray(offset), g, batch, imageStride);
      assert.deepEqual(back, backRef);
    });
  }
});
