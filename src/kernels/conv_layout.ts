/**
 * Layout moves around a convolution's GEMMs: rows of a GEMM matrix to and from NCHW images, and
 * the rotated kernel of the input gradient. They move values without arithmetic, so the native
 * paths and the references agree bit for bit.
 */
import { InvalidArgumentError } from '../errors.js';
import type { ConvGeometry } from './conv_geometry.js';
import type { ImagePlane } from './im2col.js';
import { nativeCore } from './native.js';
import { kernelThreads } from './threads.js';

export interface RowBlock {
  /** Images [n0, n0 + count) of an NCHW tensor with `channels` channels, channels [c0, c0 + rows). */
  n0: number;
  count: number;
  channels: number;
  c0: number;
  rows: number;
  plane: number;
}

function checkBlock(matrix: ImagePlane, images: ImagePlane, b: RowBlock): void {
  const { n0, count, channels, c0, rows, plane } = b;
  if (![n0, count, channels, c0, rows, plane].every((v) => Number.isInteger(v) && v >= 0) || c0 + rows > channels) {
    throw new InvalidArgumentError(`moveRows: block ${JSON.stringify(b)} is not a range of channels of the images`);
  }
  if (matrix.length < rows * count * plane || (rows > 0 && count > 0 && images.length < (n0 + count) * channels * plane)) {
    throw new InvalidArgumentError(`moveRows: matrix of ${matrix.length} or images of ${images.length} elements are too short for block ${JSON.stringify(b)}`);
  }
  if (matrix instanceof Uint8Array !== images instanceof Uint8Array) throw new InvalidArgumentError('moveRows: the matrix and the images must both be floats or both codes');
}

export function moveRowsReference(matrix: ImagePlane, images: ImagePlane, b: RowBlock, direction: 'scatter' | 'gather'): void {
  const { n0, count, channels, c0, rows, plane } = b;
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < count; n++) {
      const m = (r * count + n) * plane;
      const i = ((n0 + n) * channels + c0 + r) * plane;
      for (let p = 0; p < plane; p++) {
        if (direction === 'scatter') images[i + p] = matrix[m + p];
        else matrix[m + p] = images[i + p];
      }
    }
  }
}

/**
 * Between a GEMM's [rows x count*plane] matrix (row r, image n at column n * plane) and the
 * images' NCHW layout: 'scatter' copies the matrix into the images, 'gather' the images into the
 * matrix. Floats or codes.
 */
export function moveRows(matrix: ImagePlane, images: ImagePlane, b: RowBlock, direction: 'scatter' | 'gather'): void {
  checkBlock(matrix, images, b);
  const native = nativeCore();
  if (native) native.moveRows(matrix, images, { ...b, toImages: direction === 'scatter', threads: kernelThreads() });
  else moveRowsReference(matrix, images, b, direction);
}

/** One phase (ph, pw) of a strided input gradient: its pixels (ph + strideH * u, pw + strideW * v). */
export interface PhaseBlock {
  /** Images [n0, n0 + count) of NCHW data with `channels` channels, channels [c0, c0 + rows). */
  n0: number;
  count: number;
  channels: number;
  c0: number;
  rows: number;
  height: number;
  width: number;
  ph: number;
  pw: number;
  strideH: number;
  strideW: number;
  phaseRows: number;
  phaseCols: number;
}

function checkPhase(result: Float32Array, images: Float32Array, p: PhaseBlock): void {
  const values = [p.n0, p.count, p.channels, p.c0, p.rows, p.height, p.width, p.ph, p.pw, p.strideH, p.strideW, p.phaseRows, p.phaseCols];
  const empty = p.rows === 0 || p.count === 0 || p.phaseRows === 0 || p.phaseCols === 0;
  if (!values.every((v) => Number.isInteger(v) && v >= 0) || (!empty && (p.c0 + p.rows > p.channels || p.ph + p.strideH * (p.phaseRows - 1) >= p.height || p.pw + p.strideW * (p.phaseCols - 1) >= p.width))) {
    throw new InvalidArgumentError(`scatterPhase: phase ${JSON.stringify(p)} does not fit the images`);
  }
  if (result.length < p.rows * p.count * p.phaseRows * p.phaseCols || (!empty && images.length < (p.n0 + p.count) * p.channels * p.height * p.width)) {
    throw new InvalidArgumentError(`scatterPhase: result of ${result.length} or images of ${images.length} elements are too short for phase ${JSON.stringify(p)}`);
  }
}

export function scatterPhaseReference(result: Float32Array, images: Float32Array, p: PhaseBlock): void {
  const phasePixels = p.phaseRows * p.phaseCols;
  for (let r = 0; r < p.rows; r++) {
    for (let n = 0; n < p.count; n++) {
      const from = (r * p.count + n) * phasePixels;
      const plane = ((p.n0 + n) * p.channels + p.c0 + r) * p.height * p.width;
      for (let u = 0; u < p.phaseRows; u++) {
        const row = plane + (p.ph + p.strideH * u) * p.width + p.pw;
        for (let v = 0; v < p.phaseCols; v++) images[row + p.strideW * v] = result[from + u * p.phaseCols + v];
      }
    }
  }
}

/**
 * A phase GEMM's [rows x count * phaseRows * phaseCols] result (row r, image n, phase pixel
 * (u, v)) into pixels (ph + strideH * u, pw + strideW * v) of NCHW images.
 */
export function scatterPhase(result: Float32Array, images: Float32Array, p: PhaseBlock): void {
  checkPhase(result, images, p);
  const native = nativeCore();
  if (!native) {
    scatterPhaseReference(result, images, p);
    return;
  }
  native.scatterPhase(result, images, { ...p, threads: kernelThreads() });
}

/**
 * The input gradient of a stride-1 convolution is itself a forward convolution: of the output
 * gradient dY, padded by (dilation * (kernel - 1) - padding) on each side, with the rotated,
 * transposed kernel (rotatedKernel), so window tap (i, j) of input pixel (h, w) reads the output
 * that pixel fed. This is that convolution's geometry (dY as its input, dX as its output), or null
 * where it does not apply (stride above 1, or padding beyond the dilated kernel's reach).
 */
export function inputGradientGeometry(forward: ConvGeometry): ConvGeometry | null {
  const padH = forward.dilationH * (forward.kernelH - 1) - forward.padH;
  const padW = forward.dilationW * (forward.kernelW - 1) - forward.padW;
  if (forward.strideH !== 1 || forward.strideW !== 1 || padH < 0 || padW < 0) return null;
  return {
    batch: forward.batch, channels: forward.outChannels, height: forward.outH, width: forward.outW, outChannels: forward.channels, groups: forward.groups,
    kernelH: forward.kernelH, kernelW: forward.kernelW, strideH: 1, strideW: 1, padH, padW, dilationH: forward.dilationH, dilationW: forward.dilationW,
    outH: forward.height, outW: forward.width,
  };
}

export function rotatedKernelReference<T extends ImagePlane>(w: T, group: number, ocg: number, cg: number, taps: number): T {
  const k = ocg * taps;
  const rotated = (w instanceof Uint8Array ? new Uint8Array(cg * k) : new Float32Array(cg * k)) as T;
  for (let oc = 0; oc < ocg; oc++) {
    for (let c = 0; c < cg; c++) {
      const from = ((group * ocg + oc) * cg + c) * taps + taps - 1;
      const to = c * k + oc * taps;
      for (let t = 0; t < taps; t++) rotated[to + t] = w[from - t];
    }
  }
  return rotated;
}

/**
 * Group g's rotated, transposed kernel W'_g [C/groups x OCg * KH * KW] from weights [OC, C/groups,
 * KH, KW]: W'[c, (oc * KH + i) * KW + j] = W[g * OCg + oc, c, KH-1-i, KW-1-j]. Floats or codes.
 */
export function rotatedKernel<T extends ImagePlane>(w: T, group: number, ocg: number, cg: number, taps: number): T {
  if (![group, ocg, cg, taps].every((v) => Number.isInteger(v) && v >= 0) || w.length < (group + 1) * ocg * cg * taps) {
    throw new InvalidArgumentError(`rotatedKernel: weights of ${w.length} elements do not hold group ${group} of ${ocg} x ${cg} x ${taps}`);
  }
  const native = nativeCore();
  if (!native) return rotatedKernelReference(w, group, ocg, cg, taps);
  const rotated = (w instanceof Uint8Array ? new Uint8Array(cg * ocg * taps) : new Float32Array(cg * ocg * taps)) as T;
  native.rotateKernel(w, rotated, { group, ocg, cg, taps, threads: kernelThreads() });
  return rotated;
}
