/**
 * The gradients of a convolution with block-pruned weights (one group), for training.
 *
 * `bsrConv2dInputGradient(wT, dy, g, batch)` forms the column gradient W^T dY (bsrGemm's chains on
 * W^T in BSR: each entry the chain over W's rows, pruned ones left out) and folds it back into the
 * images as col2im does. The native kernel does it image by image and block row by block row of
 * W^T, adding each row of T into the image's gradient as soon as it is formed, rows in increasing
 * order: every element of dX receives its terms in col2im's order, so the bits are those of
 * bsrGemm into the column matrix followed by col2im, without the column matrix (rows of W^T with
 * no stored block add nothing: their +0 could only turn a -0 into +0). For strided convolutions
 * this is the dense route's bits (gemm with W^T, then col2im); conv2d's gradient takes it there by
 * sparseConvWins (4-8.5x the dense strided route on ResNet-18's strided shapes at 50-90% of 8x8
 * blocks), and for stride-1 convolutions in place of Winograd by sparseInputGradientWins (1.1-4.1x
 * at 75-90%); the dense stride-1 direct route is another chain (the forward convolution of dY with
 * the rotated kernel), which this does not replace. On stride-1 'same' geometries each row of W^T
 * dY is folded as one masked shifted add over the flat plane, and planes under a panel put several
 * images side by side in a tile's columns.
 *
 * `bsrConv2dWeightGradient(pattern, x, dy, g, batch)`: the weight gradient at the kept blocks only
 * (below). `bsrLowpConv2dInputGradient`: the input gradient of one-byte codes, the rotated
 * kernel's chains over the kept weights (the dense product's bits; at the end).
 *
 * References: the same sums written out (bsrGemmReference and col2im; im2col and each entry's
 * chain), used where the native core is absent; the tests hold the fast paths to them bit for bit.
 */
import { InvalidArgumentError } from '../errors.js';
import { bsrGemmReference, bsrStructure, codesOnFloat32Sums, directSparseOn, fma32, type BsrMatrix, type CodedImages, type SparsePattern } from './block_sparse.js';
import { decodeTable, type QTensor } from '../formats/index.js';
import type { LowpGemmOptions, LowpOperand } from './lowp_gemm.js';
import { divideByScale } from './quant_stats.js';
import { recycle, takeBuffer, takeZeroed } from './buffer_pool.js';
import type { ColumnGeometry } from './conv_geometry.js';
import { moveRowsReference } from './conv_layout.js';
import { col2imBatchReference, im2colBatchReference } from './im2col.js';
import { nativeCore } from './native.js';
import { resolveThreads } from './threads.js';

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
  /** Set `out` to zeros first (its contents need not be zeros): image by image as the gradient is folded in, where the native core runs it. */
  clear?: boolean;
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
  const native = reference ? null : nativeCore();
  if (options.out && options.clear && !native) gx.fill(0);
  if (native) {
    // Image by image, T = W^T dY block row by block row, each row folded in at once (the same adds in the same order).
    native.bsrConvInputGradient(wT.rowPtr, wT.colIdx, wT.values, dy, gx, {
      m: k, k: m, br: wT.blockRows, bc: wT.blockCols, fused: true, batch, geometry: g, threads: resolveThreads(options.threads), clear: Boolean(options.out && options.clear),
    });
    return gx;
  }
  const chunk = chunkImages((k + m) * plane, batch);
  const dyChunk = takeBuffer(m * chunk * plane);
  const col = takeBuffer(k * chunk * plane);
  for (let n0 = 0; n0 < batch; n0 += chunk) {
    const nc = Math.min(chunk, batch - n0), n = nc * plane;
    const block = { n0, count: nc, channels: m, c0: 0, rows: m, plane };
    const dyRows = dyChunk.subarray(0, m * n), cols = col.subarray(0, k * n), target = gx.subarray(n0 * imageStride);
    moveRowsReference(dyRows, dy, block, 'gather');
    cols.set(bsrGemmReference(wT, dyRows, n));
    col2imBatchReference(cols, target, g, nc, imageStride);
  }
  recycle(dyChunk);
  recycle(col);
  return gx;
}

export interface BsrWeightGradientOptions {
  threads?: number;
  /** Use the written-out sums (the reference) even where the native core is present. */
  reference?: boolean;
  /** Where to write dW (rows x cols of the pattern); entries outside the stored blocks are left as they are (zeros in a new array). */
  out?: Float32Array;
}

function values(x: Float32Array | CodedImages): Float32Array {
  return x instanceof Float32Array ? x : Float32Array.from(x.codes, (c) => x.table[c]);
}

function checkCoded(x: Float32Array | CodedImages, length: number, name: string): void {
  const data = x instanceof Float32Array ? x : x?.codes;
  if (!(data instanceof Float32Array || data instanceof Uint8Array) || data.length !== length) {
    throw new InvalidArgumentError(`bsrConv2dWeightGradient: ${name} has ${data?.length} values; expected ${length}`);
  }
  if (!(x instanceof Float32Array) && !(x.table instanceof Float32Array && x.table.length === 256)) {
    throw new InvalidArgumentError(`bsrConv2dWeightGradient: ${name} as codes needs the table of their 256 values`);
  }
}

/**
 * Whether a pruned weight's gradient runs on the direct tiles (native directConvWeightGradientSparse)
 * rather than the column kernel: the same chains either way, so a fixed rule on the pattern and the
 * geometry from the crossovers measured on ResNet-18's shapes (docs/benchmarks.md, 2026-12-07):
 * blocks a multiple of 8 rows tall, except blocks of 16 rows or more on planes under 64 outputs
 * (ResNet-18's 4x4 layer4 at 16x16 blocks: 11.4 / 6.6 ms direct against 9.3 / 4.9 ms column at 50 /
 * 75%; at 8x8 blocks the direct tiles win there too, 12.1 / 7.0 / 3.3 against 13.6 / 7.4 / 3.6 ms).
 */
function directGradientApplies(pattern: BsrMatrix, g: ColumnGeometry): boolean {
  if (!directSparseOn || pattern.blockRows % 8 !== 0) return false;
  return pattern.blockRows % 16 !== 0 || g.outH * g.outW >= 64;
}

/**
 * The weight gradient of a convolution whose weight (one group, out channels x channels * KH * KW)
 * is pruned to `pattern`'s stored blocks: dW = dY X^T at those entries only (X the column matrix
 * of the images x), each entry the chain over the batch's columns in order of fused multiply-adds
 * from +0 (bsrSampledGemm's contract: the dense weight gradient's chain on the SGEMM, bit for bit,
 * the sign of a zero result aside). x and dy (NCHW) are floats or one-byte codes with their table
 * (unscaled values: a caller divides by the scales as the dense route does). Entries outside the
 * stored blocks are not written (zeros in a new array). The pattern's values are not read.
 *
 * Native, blocks a multiple of 8 rows tall (directGradientApplies): the direct weight gradient's
 * tiles (the images laid out once per call as padded planes, dY channel-last) over each block
 * column's storing block rows, 8 output channels a slice, two slices a vector, up to 6 slices by 8
 * columns a tile, each column's input value one broadcast for all of them (native/direct_conv.h).
 * Otherwise workers split the block columns; each packs its used columns of X transposed one chunk
 * of columns at a time (16 rows of the column matrix, then a 16 x 16 transpose) and runs 8 rows x
 * up to 48 stored entries in registers, the chains carried from chunk to chunk in a buffer of
 * whole vectors. Reference: im2col and each stored entry's chain written out.
 */
export function bsrConv2dWeightGradient(
  pattern: BsrMatrix, x: Float32Array | CodedImages, dy: Float32Array | CodedImages, g: ColumnGeometry, batch: number, options: BsrWeightGradientOptions = {},
): Float32Array {
  const k = g.channels * g.kernelH * g.kernelW, plane = g.outH * g.outW, n = batch * plane, m = pattern.rows;
  if (pattern.cols !== k) throw new InvalidArgumentError(`bsrConv2dWeightGradient: the pattern has ${pattern.cols} columns; the geometry's column matrix has ${k} rows (channels x taps)`);
  const imageStride = g.channels * g.height * g.width;
  checkCoded(x, batch * imageStride, 'x');
  checkCoded(dy, batch * m * plane, 'dy');
  if (options.out && options.out.length !== m * k) throw new InvalidArgumentError(`bsrConv2dWeightGradient: out has ${options.out.length} values; expected ${m} x ${k}`);
  const dw = options.out ?? takeZeroed(m * k);
  const native = nativeCore();
  if (native && !options.reference && directGradientApplies(pattern, g)) {
    // The direct weight gradient's tiles over each block row's stored columns (the same chains, no
    // column matrix: the images laid out once as padded planes, each column a shifted load).
    const operand = (v: Float32Array | CodedImages) => (v instanceof Float32Array ? { data: v } : { data: v.codes, table: v.table, format: v.format });
    const done = native.directConvWeightGradientSparse(operand(dy), operand(x), dw, pattern.rowPtr, pattern.colIdx, {
      batch, channels: g.channels, height: g.height, width: g.width, outChannels: m, kernelH: g.kernelH, kernelW: g.kernelW, padH: g.padH, padW: g.padW,
      outH: g.outH, outW: g.outW, strideH: g.strideH, strideW: g.strideW, dilationH: g.dilationH, dilationW: g.dilationW, xImageStride: imageStride,
      yImageStride: m * plane, br: pattern.blockRows, bc: pattern.blockCols, threads: resolveThreads(options.threads),
    });
    if (done) return dw;
  }
  if (native && !options.reference) {
    native.bsrConvWeightGradient(pattern.rowPtr, pattern.colIdx, x instanceof Float32Array ? x : x.codes, dy instanceof Float32Array ? dy : dy.codes, dw, {
      m, k, br: pattern.blockRows, bc: pattern.blockCols, batch, geometry: g, imageStride,
      ...(x instanceof Float32Array ? {} : { table: x.table }), ...(dy instanceof Float32Array ? {} : { dyTable: dy.table }),
      threads: resolveThreads(options.threads),
    });
    return dw;
  }
  // The contract written out: the column matrix, dY as rows, each stored entry's chain.
  const columns = new Float32Array(k * n);
  im2colBatchReference(values(x), columns, g, batch, imageStride);
  const dyRows = new Float32Array(m * n);
  moveRowsReference(dyRows, values(dy), { n0: 0, count: batch, channels: m, c0: 0, rows: m, plane }, 'gather');
  const { blockRows: br, blockCols: bc } = pattern;
  for (let q = 0; q + 1 < pattern.rowPtr.length; q++) {
    for (let b = pattern.rowPtr[q]; b < pattern.rowPtr[q + 1]; b++) {
      for (let r = 0; r < br && q * br + r < m; r++) {
        for (let c = 0; c < bc && pattern.colIdx[b] * bc + c < k; c++) {
          const i = q * br + r, t = pattern.colIdx[b] * bc + c;
          let acc = 0;
          for (let j = 0; j < n; j++) acc = fma32(dyRows[i * n + j], columns[t * n + j], acc);
          dw[i * k + t] = acc;
        }
      }
    }
  }
  return dw;
}

/**
 * lowpConv2dBackwardWeight (one group) of a pruned weight on the block-sparse kernel, where it
 * gives that product's bits at the kept blocks: both operands one-byte codes whose products are
 * exact in float32, float32 accumulation without chunks, output rounding or stochastic rounding.
 * The pruned entries are +0 (a caller takes this only where nothing reads them). Returns null
 * where it does not apply (the caller runs the dense product). The result: bsrConv2dWeightGradient
 * on the decoded values, divided by fl32(scaleDy * scaleX) as lowpGemm does.
 */
export function bsrLowpConv2dWeightGradient(
  pattern: SparsePattern, dy: LowpOperand, x: LowpOperand, g: ColumnGeometry, batch: number, options: LowpGemmOptions = {},
): Float32Array | null {
  if (!codesOnFloat32Sums(dy, x, options)) return null;
  const dq = dy as QTensor, xq = x as QTensor;
  // The kernel's chains are fused: the products must be exact.
  if (dq.format.mantissaBits + xq.format.mantissaBits + 2 > 24 || pattern.cols !== g.channels * g.kernelH * g.kernelW) return null;
  const coded = (q: QTensor): CodedImages => ({ codes: q.codes as Uint8Array, table: decodeTable(q.format), format: q.format });
  const dw = bsrConv2dWeightGradient(bsrStructure(pattern), coded(xq), coded(dq), g, batch, { threads: options.threads });
  return divideByScale(dw, Math.fround(dq.scale * xq.scale));
}

/**
 * The stride-1 float32 input gradient of a convolution (one group) whose weight (outChannels x
 * channels * KH * KW, the pruned entries zero) is pruned in the pattern's blocks, on the rotated
 * kernel (native sparseRotatedInputGradient): each dx element's chain of fused multiply-adds from
 * +0 over the kept weights in the direct product's order (output channel, then rotated tap), the
 * left-out products exact zeros: the dense direct route's bits (the forward convolution of dY with
 * the rotated kernel; tested bit for bit, zero signs included). Writes dx whole (batch x channels x
 * H x W) and returns true; false, writing nothing, without the native core's vector paths or where
 * dY or a kept weight is not finite (the caller runs the dense product).
 */
export function bsrRotatedConv2dInputGradient(
  pattern: SparsePattern, dy: Float32Array, w: Float32Array, g: ColumnGeometry, batch: number, dx: Float32Array, options: { threads?: number } = {},
): boolean {
  const native = nativeCore();
  const k = g.channels * g.kernelH * g.kernelW;
  if (!native || g.strideH !== 1 || g.strideW !== 1 || pattern.cols !== k || w.length !== pattern.rows * k) return false;
  if (dy.length !== batch * pattern.rows * g.outH * g.outW || dx.length !== batch * g.channels * g.height * g.width) return false;
  const s = bsrStructure(pattern);
  return native.sparseRotatedInputGradient(s.rowPtr, s.colIdx, w, dy, dx, {
    m: pattern.rows, br: pattern.br, bc: pattern.bc, batch, geometry: g, threads: resolveThreads(options.threads),
  });
}

/**
 * lowpConv2dBackwardData (one group) of a pruned weight on the sparse kernel, where it gives that
 * product's bits: both operands one-byte codes whose products are exact in float32, float32
 * accumulation without chunks, output rounding or stochastic rounding, every value finite. The
 * contract's input gradient is the forward convolution of the stride-dilated dY with the rotated
 * weights; the kernel (native/block_sparse.h, sparseRotatedInputGradient) runs each
 * input-gradient element's chain over the kept weights whose taps read a dY value only, in the
 * contract's order (the left-out products are exact zeros), phase by phase where strided. Returns
 * null where it does not apply or the native core is absent (the caller runs the dense product,
 * which is this product's reference). The result is divided by fl32(scaleDy * scaleW) as lowpGemm
 * does.
 */
export function bsrLowpConv2dInputGradient(pattern: SparsePattern, dy: LowpOperand, w: LowpOperand, g: ColumnGeometry, batch: number, options: LowpGemmOptions = {}): Float32Array | null {
  const native = nativeCore();
  if (!native || !codesOnFloat32Sums(dy, w, options)) return null;
  const dq = dy as QTensor, wq = w as QTensor;
  const k = g.channels * g.kernelH * g.kernelW;
  if (dq.format.mantissaBits + wq.format.mantissaBits + 2 > 24 || pattern.cols !== k || wq.codes.length !== pattern.rows * k) return null;
  if (dq.codes.length !== batch * pattern.rows * g.outH * g.outW) return null;
  const dx = takeBuffer(batch * g.channels * g.height * g.width);
  const s = bsrStructure(pattern);
  const done = native.sparseRotatedInputGradient(s.rowPtr, s.colIdx, wq.codes as Uint8Array, dq.codes as Uint8Array, dx, {
    m: pattern.rows, br: pattern.br, bc: pattern.bc, batch, geometry: g, wTable: decodeTable(wq.format), dyTable: decodeTable(dq.format), threads: options.threads,
  });
  if (!done) {
    recycle(dx);
    return null;
  }
  return divideByScale(dx, Math.fround(dq.scale * wq.scale));
}
