/**
 * im2col and col2im for one CHW image, so that a convolution is a GEMM:
 *
 *   col[((c * KH + i) * KW + j) * (OH * OW) + oh * OW + ow]
 *     = x[c][oh * SH - PH + i * DH][ow * SW - PW + j * DW], or 0 outside the image.
 *
 * col2im is the adjoint: it adds every col entry back into x (x is accumulated, not cleared).
 * Both paths (native and reference) move values without arithmetic except col2im's additions,
 * which happen in the same order (taps in row order, then output positions), so they agree bit
 * for bit.
 */
import { InvalidArgumentError } from '../errors.js';
import type { ColumnGeometry } from './conv_geometry.js';
import { nativeCore } from './native.js';
import { kernelThreads } from './threads.js';

function checkSizes(x: ImagePlane, col: ImagePlane, g: ColumnGeometry, what: string): void {
  const xNeeds = g.channels * g.height * g.width;
  const colNeeds = g.channels * g.kernelH * g.kernelW * g.outH * g.outW;
  if (x.length < xNeeds || col.length < colNeeds) {
    throw new InvalidArgumentError(
      `${what}: image holds ${x.length} elements (needs ${xNeeds}), columns hold ${col.length} (need ${colNeeds})`,
    );
  }
}

/** Float values, or one-byte codes (code 0 is +0 in every format, so padding is 0 either way). */
export type ImagePlane = Float32Array | Uint8Array;

export function im2colReference(x: ImagePlane, col: ImagePlane, g: ColumnGeometry): void {
  const plane = g.outH * g.outW;
  for (let c = 0; c < g.channels; c++) {
    for (let i = 0; i < g.kernelH; i++) {
      for (let j = 0; j < g.kernelW; j++) {
        const row = ((c * g.kernelH + i) * g.kernelW + j) * plane;
        for (let oh = 0; oh < g.outH; oh++) {
          const ih = oh * g.strideH - g.padH + i * g.dilationH;
          for (let ow = 0; ow < g.outW; ow++) {
            const iw = ow * g.strideW - g.padW + j * g.dilationW;
            const inside = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width;
            col[row + oh * g.outW + ow] = inside ? x[(c * g.height + ih) * g.width + iw] : 0;
          }
        }
      }
    }
  }
}

export function col2imReference(col: Float32Array, x: Float32Array, g: ColumnGeometry): void {
  const plane = g.outH * g.outW;
  for (let c = 0; c < g.channels; c++) {
    for (let i = 0; i < g.kernelH; i++) {
      for (let j = 0; j < g.kernelW; j++) {
        const row = ((c * g.kernelH + i) * g.kernelW + j) * plane;
        for (let oh = 0; oh < g.outH; oh++) {
          const ih = oh * g.strideH - g.padH + i * g.dilationH;
          if (ih < 0 || ih >= g.height) continue;
          for (let ow = 0; ow < g.outW; ow++) {
            const iw = ow * g.strideW - g.padW + j * g.dilationW;
            if (iw >= 0 && iw < g.width) {
              const at = (c * g.height + ih) * g.width + iw;
              x[at] = Math.fround(x[at] + col[row + oh * g.outW + ow]);
            }
          }
        }
      }
    }
  }
}

export function im2col(x: Float32Array, col: Float32Array, g: ColumnGeometry): void {
  checkSizes(x, col, g, 'im2col');
  const native = nativeCore();
  if (native) native.im2col(x, col, { geometry: g, threads: kernelThreads() });
  else im2colReference(x, col, g);
}

export function col2im(col: Float32Array, x: Float32Array, g: ColumnGeometry): void {
  checkSizes(x, col, g, 'col2im');
  const native = nativeCore();
  if (native) native.col2im(col, x, { geometry: g, threads: kernelThreads() });
  else col2imReference(col, x, g);
}

/**
 * Batched layouts: image n of the batch starts at x[n * imageStride] (offset x to reach a group's
 * channels), and the column matrix holds every image side by side: C*KH*KW rows of
 * batch * OH * OW columns, image n's columns starting at n * OH * OW.
 */
function checkBatch(x: ImagePlane, col: ImagePlane, g: ColumnGeometry, batch: number, imageStride: number, what: string): void {
  const xNeeds = (batch - 1) * imageStride + g.channels * g.height * g.width;
  const colNeeds = g.channels * g.kernelH * g.kernelW * g.outH * g.outW * batch;
  if (!Number.isInteger(batch) || batch < 1 || x.length < xNeeds || col.length < colNeeds) {
    throw new InvalidArgumentError(`${what}: batch ${batch}, images hold ${x.length} elements (need ${xNeeds}), columns hold ${col.length} (need ${colNeeds})`);
  }
}

export function im2colBatchReference(x: ImagePlane, col: ImagePlane, g: ColumnGeometry, batch: number, imageStride: number): void {
  const plane = g.outH * g.outW;
  const rows = g.channels * g.kernelH * g.kernelW;
  const one = x instanceof Uint8Array ? new Uint8Array(rows * plane) : new Float32Array(rows * plane);
  for (let n = 0; n < batch; n++) {
    im2colReference(x.subarray(n * imageStride), one, g);
    for (let r = 0; r < rows; r++) col.set(one.subarray(r * plane, (r + 1) * plane), r * batch * plane + n * plane);
  }
}

export function col2imBatchReference(col: Float32Array, x: Float32Array, g: ColumnGeometry, batch: number, imageStride: number): void {
  const plane = g.outH * g.outW;
  const rows = g.channels * g.kernelH * g.kernelW;
  const one = new Float32Array(rows * plane);
  for (let n = 0; n < batch; n++) {
    for (let r = 0; r < rows; r++) one.set(col.subarray(r * batch * plane + n * plane, r * batch * plane + (n + 1) * plane), r * plane);
    col2imReference(one, x.subarray(n * imageStride), g);
  }
}

/** x and col are both floats or both one-byte codes. */
export function im2colBatch(x: ImagePlane, col: ImagePlane, g: ColumnGeometry, batch: number, imageStride: number): void {
  checkBatch(x, col, g, batch, imageStride, 'im2colBatch');
  if (x instanceof Uint8Array !== col instanceof Uint8Array) throw new InvalidArgumentError('im2colBatch: the image and the columns must both be floats or both codes');
  const native = nativeCore();
  if (native) native.im2colBatch(x, col, { geometry: g, batch, imageStride, threads: kernelThreads() });
  else im2colBatchReference(x, col, g, batch, imageStride);
}

export function col2imBatch(col: Float32Array, x: Float32Array, g: ColumnGeometry, batch: number, imageStride: number): void {
  checkBatch(x, col, g, batch, imageStride, 'col2imBatch');
  const native = nativeCore();
  if (native) native.col2imBatch(col, x, { geometry: g, batch, imageStride, threads: kernelThreads() });
  else col2imBatchReference(col, x, g, batch, imageStride);
}
