/**
 * The input gradient of a convolution with block-pruned weights (one group), for training:
 * `bsrConv2dInputGradient(wT, dy, g, batch)` forms the column gradient W^T dY (bsrGemm on W^T in
 * BSR: each entry the chain over W's rows, pruned ones left out) and folds it back into the images
 * with col2im, chunk by chunk of images. This is the dense route of strided convolutions (gemm with
 * W^T, then col2im) and gives its bits exactly: col2im adds every entry into an image that starts
 * at +0, so even the sign of a zero entry cannot show. conv2d's gradient takes it for strided
 * convolutions where sparseConvWins chooses it (measured 1.2-1.9x the dense route on ResNet-18's
 * strided shapes at 8x8 and 75-90%). Dense stride-1 convolutions compute this gradient another
 * way (a forward convolution of dY with the rotated kernel, direct or Winograd), whose weight is
 * not block sparse where W is, so they stay dense.
 *
 * Reference: the same sums written out (bsrGemmReference, col2im), used where the native core is
 * absent; the tests hold the fast path to it bit for bit.
 */
import { InvalidArgumentError } from '../errors.js';
import { bsrGemm, bsrGemmReference, type BsrMatrix } from './block_sparse.js';
import { recycle, takeBuffer, takeZeroed } from './buffer_pool.js';
import type { ColumnGeometry } from './conv_geometry.js';
import { moveRows, moveRowsReference } from './conv_layout.js';
import { col2imBatch, col2imBatchReference } from './im2col.js';
import { nativeCore } from './native.js';

/** Column chunks of at most this many floats (8 MB): few calls, each GEMM's operands near cache. */
const CHUNK_FLOATS = 1 << 21;

function chunkImages(perImage: number, batch: number): number {
  return Math.max(1, Math.min(batch, Math.floor(CHUNK_FLOATS / Math.max(1, perImage))));
}

function sizes(g: ColumnGeometry, batch: number, rows: number, dy: Float32Array): { k: number; plane: number; pixels: number } {
  const k = g.channels * g.kernelH * g.kernelW, plane = g.outH * g.outW, pixels = g.height * g.width;
  if (!(dy instanceof Float32Array) || dy.length !== batch * rows * plane) {
    throw new InvalidArgumentError(`bsrConv2dInputGradient: dy has ${dy?.length} values; expected batch x out channels x plane = ${batch * rows * plane}`);
  }
  return { k, plane, pixels };
}

export interface BsrConvOptions {
  threads?: number;
  /** Use the written-out sums (the references) even where the native core is present. */
  reference?: boolean;
  /** Zeros (batch x channels x H x W) to fold the gradient into, instead of a new array. */
  out?: Float32Array;
}

/**
 * dX (NCHW, batch x channels x H x W) of a convolution whose weight W (out channels x channels *
 * KH * KW) is stored as `wT` = bsrTranspose(W), from dY (NCHW).
 */
export function bsrConv2dInputGradient(wT: BsrMatrix, dy: Float32Array, g: ColumnGeometry, batch: number, options: BsrConvOptions = {}): Float32Array {
  const { k, plane, pixels } = sizes(g, batch, wT.cols, dy);
  if (wT.rows !== k) throw new InvalidArgumentError(`bsrConv2dInputGradient: W^T has ${wT.rows} rows; the geometry's column matrix has ${k} (channels x taps)`);
  const reference = options.reference || !nativeCore();
  const m = wT.cols, imageStride = g.channels * pixels;
  if (options.out && options.out.length !== batch * imageStride) {
    throw new InvalidArgumentError(`bsrConv2dInputGradient: out has ${options.out.length} values; expected batch x channels x H x W = ${batch * imageStride}`);
  }
  const gx = options.out ?? takeZeroed(batch * imageStride);
  const chunk = chunkImages((k + m) * plane, batch);
  const dyChunk = takeBuffer(m * chunk * plane);
  const col = takeBuffer(k * chunk * plane);
  for (let n0 = 0; n0 < batch; n0 += chunk) {
    const nc = Math.min(chunk, batch - n0), n = nc * plane;
    const block = { n0, count: nc, channels: m, c0: 0, rows: m, plane };
    const dyRows = dyChunk.subarray(0, m * n), cols = col.subarray(0, k * n), target = gx.subarray(n0 * imageStride);
    if (reference) {
      moveRowsReference(dyRows, dy, block, 'gather');
      cols.set(bsrGemmReference(wT, dyRows, n));
      col2imBatchReference(cols, target, g, nc, imageStride);
    } else {
      moveRows(dyRows, dy, block, 'gather');
      bsrGemm(wT, dyRows, n, { out: cols, threads: options.threads });
      col2imBatch(cols, target, g, nc, imageStride);
    }
  }
  recycle(dyChunk);
  recycle(col);
  return gx;
}
