/**
 * Block-sparse products: a weight matrix stored in block compressed sparse rows (BSR) times dense
 * operands, for the three products of a pruned layer.
 *
 * Storage. W is rows x cols (a layer's GEMM view: output channels x input channels * kh * kw),
 * cut into blocks of blockRows x blockCols; the last block row and column are shorter where the
 * block does not divide W (their missing entries are stored as zeros and never multiplied).
 * rowPtr[q] .. rowPtr[q + 1] are the stored blocks of block row q, in increasing block column
 * colIdx[b]; values[b * blockRows * blockCols ...] holds block b row-major.
 *
 * CONTRACT (the native kernels return exactly these bits):
 * - bsrGemm (forward, C = W X; X is cols x n row-major): for each element of C, acc = +0 and then,
 *   over every stored k of its block row in increasing order, acc = fma(w, x, acc) (`fused`,
 *   default: the float32 GEMM's chain, exact products) or fl32(acc + fl32(w * x)). That is the
 *   dense product's chain with the pruned products left out. Leaving out a product that is an exact
 *   zero changes no bit of such a sum, except the sign of a zero result (a chain that would end at
 *   -0 + +0 gives +0 in the dense product) and where X holds Inf or NaN (0 x Inf is NaN in the dense
 *   product, and left out here).
 * - bsrTranspose gives W^T in BSR (blockCols x blockRows blocks), so the input gradient W^T dY is
 *   bsrGemm(bsrTranspose(W), dY): the dense product's chain over W's rows, pruned ones left out.
 * - bsrSampledGemm (weight gradient at the kept blocks only): for each stored block and entry
 *   (i, t), dW = the chain over j = 0 .. n-1 of dY[i, j] * X[t, j] (the dense weight gradient's
 *   order), fused or not as above; entries past rows or cols stay zero.
 * - bsrLowpGemm: W's values are a format's decoded codes (scale wScale), X a low-precision
 *   operand; the result follows lowpGemm's contract (src/kernels/lowp_gemm.ts) for the dense W
 *   with zeros at the pruned blocks, bit for bit under fp32 accumulation and every nearest-rounded
 *   emulated accumulation (chunk ends stay where the dense sum has them, as lowpGemm's chunkEnds
 *   say), with the two exceptions above. Under stochastic accumulation the draws are keyed by the
 *   product's index in the dense sum, so it runs the dense product on the pruned weights.
 */
import { InvalidArgumentError } from '../errors.js';
import { decodeTable, resolveFormat, type Format, type FormatLike, type QTensor } from '../formats/index.js';
import { freshArray, recycle, takeBuffer } from './buffer_pool.js';
import { decode } from './codec.js';
import { columnsGemm } from './columns_gemm.js';
import type { ColumnGeometry } from './conv_geometry.js';
import { gemm } from './gemm.js';
import { im2colBatchReference } from './im2col.js';
import { alignedOf, lowpGemm, type LowpGemmOptions, type LowpOperand } from './lowp_gemm.js';
import { divideByScale } from './quant_stats.js';
import { nativeCore } from './native.js';
import { resolveThreads } from './threads.js';

/** A matrix in block compressed sparse rows (see the file's comment). */

/** OCTET_SPARSE_DIRECT=0 keeps pruned convolutions' forward and weight gradient on the column-matrix kernels (the same bits; to compare speed). */
export const directSparseOn = process.env.OCTET_SPARSE_DIRECT !== '0';
export interface BsrMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly blockRows: number;
  readonly blockCols: number;
  readonly rowPtr: Int32Array;
  readonly colIdx: Int32Array;
  readonly values: Float32Array;
}

function checkBlockShape(rows: number, cols: number, blockRows: number, blockCols: number, where: string): void {
  for (const [name, v] of [['rows', rows], ['cols', cols]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`${where}: ${name} is ${v}; expected a non-negative integer`);
  }
  for (const [name, v] of [['blockRows', blockRows], ['blockCols', blockCols]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${where}: ${name} is ${v}; expected a positive integer`);
  }
}

/** Block rows and block columns of a rows x cols matrix in blocks of br x bc (edges shorter). */
export function blockGrid(rows: number, cols: number, br: number, bc: number): { blockRowCount: number; blockColCount: number } {
  return { blockRowCount: Math.ceil(rows / br), blockColCount: Math.ceil(cols / bc) };
}

/**
 * W (rows x cols, row-major) in BSR, storing the blocks whose `keep` entry (one per block, block
 * rows major) is nonzero; without `keep`, every block holding a nonzero value. Entries of a kept
 * block are copied as they are (zeros included); those of a dropped block are left out, whatever
 * they hold.
 */
export function bsrFromDense(dense: Float32Array, rows: number, cols: number, blockRows: number, blockCols: number, keep?: Uint8Array): BsrMatrix {
  checkBlockShape(rows, cols, blockRows, blockCols, 'bsrFromDense');
  if (dense.length !== rows * cols) throw new InvalidArgumentError(`bsrFromDense: the matrix has ${dense.length} values; expected rows x cols = ${rows * cols}`);
  const { blockRowCount, blockColCount } = blockGrid(rows, cols, blockRows, blockCols);
  if (keep && keep.length !== blockRowCount * blockColCount) {
    throw new InvalidArgumentError(`bsrFromDense: keep has ${keep.length} entries; expected one per block, ${blockRowCount} x ${blockColCount}`);
  }
  const keptBlock = (q: number, p: number): boolean => {
    const r1 = Math.min(rows, (q + 1) * blockRows), t0 = p * blockCols, t1 = Math.min(cols, t0 + blockCols);
    for (let i = q * blockRows; i < r1; i++) {
      for (let t = i * cols + t0, end = i * cols + t1; t < end; t++) if (dense[t] !== 0) return true;
    }
    return false;
  };
  const rowPtr = new Int32Array(blockRowCount + 1);
  let stored = 0;
  if (keep) {
    for (let b = 0; b < keep.length; b++) if (keep[b] !== 0) stored++;
  }
  let colIdx = new Int32Array(keep ? stored : blockRowCount * blockColCount);
  stored = 0;
  for (let q = 0; q < blockRowCount; q++) {
    const base = q * blockColCount;
    for (let p = 0; p < blockColCount; p++) if (keep ? keep[base + p] !== 0 : keptBlock(q, p)) colIdx[stored++] = p;
    rowPtr[q + 1] = stored;
  }
  if (!keep) colIdx = colIdx.slice(0, stored);
  const values = new Float32Array(stored * blockRows * blockCols);
  gatherBlocks(dense, rows, cols, blockRows, blockCols, rowPtr, colIdx, values);
  return { rows, cols, blockRows, blockCols, rowPtr, colIdx, values };
}

/**
 * Each stored block's entries from the dense rows x cols matrix into values, row-major; entries
 * past the edges are +0 (values need not be zeros).
 */
function gatherBlocks(dense: Float32Array, rows: number, cols: number, br: number, bc: number, rowPtr: Int32Array, colIdx: Int32Array, values: Float32Array): void {
  const native = nativeCore();
  if (native) {
    native.bsrGather(rowPtr, colIdx, dense, values, { rows, cols, br, bc, transposed: false });
    return;
  }
  const size = br * bc;
  for (let q = 0; q + 1 < rowPtr.length; q++) {
    const height = Math.min(br, rows - q * br);
    for (let b = rowPtr[q]; b < rowPtr[q + 1]; b++) {
      const c0 = colIdx[b] * bc, width = Math.min(bc, cols - c0);
      let to = b * size;
      if (height < br || width < bc) values.fill(0, to, to + size);
      for (let r = 0, from = q * br * cols + c0; r < height; r++, from += cols, to += bc) {
        for (let c = 0; c < width; c++) values[to + c] = dense[from + c];
      }
    }
  }
}

/** The dense rows x cols matrix of a BSR one (zeros outside the stored blocks). */
export function bsrToDense(w: BsrMatrix): Float32Array {
  const out = new Float32Array(w.rows * w.cols);
  const size = w.blockRows * w.blockCols;
  for (let q = 0; q + 1 < w.rowPtr.length; q++) {
    for (let b = w.rowPtr[q]; b < w.rowPtr[q + 1]; b++) {
      const p = w.colIdx[b];
      for (let r = 0; r < w.blockRows && q * w.blockRows + r < w.rows; r++) {
        for (let c = 0; c < w.blockCols && p * w.blockCols + c < w.cols; c++) out[(q * w.blockRows + r) * w.cols + p * w.blockCols + c] = w.values[b * size + r * w.blockCols + c];
      }
    }
  }
  return out;
}

/** W^T in BSR: blocks of blockCols x blockRows, the same blocks stored (each transposed). */
export function bsrTranspose(w: BsrMatrix): BsrMatrix {
  const { blockColCount } = blockGrid(w.rows, w.cols, w.blockRows, w.blockCols);
  const stored = w.colIdx.length;
  const rowPtr = new Int32Array(blockColCount + 1);
  for (let b = 0; b < stored; b++) rowPtr[w.colIdx[b] + 1]++;
  for (let p = 0; p < blockColCount; p++) rowPtr[p + 1] += rowPtr[p];
  const next = rowPtr.slice(0, blockColCount);
  const colIdx = new Int32Array(stored);
  const br = w.blockRows, bc = w.blockCols, size = br * bc;
  const values = new Float32Array(stored * size);
  const from = w.values;
  // Block rows in increasing order, so each transposed row's block columns increase.
  for (let q = 0; q + 1 < w.rowPtr.length; q++) {
    for (let b = w.rowPtr[q]; b < w.rowPtr[q + 1]; b++) {
      const at = next[w.colIdx[b]]++;
      colIdx[at] = q;
      const src = b * size, dst = at * size;
      for (let r = 0; r < br; r++) {
        for (let c = 0; c < bc; c++) values[dst + c * br + r] = from[src + r * bc + c];
      }
    }
  }
  return { rows: w.cols, cols: w.rows, blockRows: w.blockCols, blockCols: w.blockRows, rowPtr, colIdx, values };
}

/** Stored blocks over all blocks. */
export function bsrDensity(w: BsrMatrix): number {
  const { blockRowCount, blockColCount } = blockGrid(w.rows, w.cols, w.blockRows, w.blockCols);
  return blockRowCount * blockColCount === 0 ? 0 : w.colIdx.length / (blockRowCount * blockColCount);
}

export interface BsrGemmOptions {
  /** One fused multiply-add per product (default), else a multiply then an add. */
  fused?: boolean;
  /** Write the result here (every element is written). */
  out?: Float32Array;
  threads?: number;
}

function checkOperand(x: Float32Array, length: number, what: string, where: string): void {
  if (!(x instanceof Float32Array)) throw new InvalidArgumentError(`${where}: ${what} must be a Float32Array`);
  if (x.length !== length) throw new InvalidArgumentError(`${where}: ${what} has ${x.length} values; expected ${length}`);
}

function outputArray(out: Float32Array | undefined, length: number, where: string): Float32Array {
  if (out && out.length !== length) throw new InvalidArgumentError(`${where}: out has ${out.length} elements; expected ${length}`);
  return out ?? freshArray(length);
}

/** bsrGemm's contract, written out. */
export function bsrGemmReference(w: BsrMatrix, x: Float32Array, n: number, options: BsrGemmOptions = {}): Float32Array {
  checkOperand(x, w.cols * n, 'x', 'bsrGemm');
  const c = outputArray(options.out, w.rows * n, 'bsrGemm');
  const fused = options.fused ?? true;
  const size = w.blockRows * w.blockCols;
  const acc = new Float32Array(1);
  for (let i = 0; i < w.rows; i++) {
    const q = Math.floor(i / w.blockRows), r = i % w.blockRows;
    for (let j = 0; j < n; j++) {
      acc[0] = 0;
      for (let b = w.rowPtr[q]; b < w.rowPtr[q + 1]; b++) {
        const k0 = w.colIdx[b] * w.blockCols;
        for (let t = 0; t < w.blockCols && k0 + t < w.cols; t++) {
          const wv = w.values[b * size + r * w.blockCols + t], xv = x[(k0 + t) * n + j];
          acc[0] = fused ? fma32(wv, xv, acc[0]) : acc[0] + Math.fround(wv * xv);
        }
      }
      c[i * n + j] = acc[0];
    }
  }
  return c;
}

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/**
 * fl32(a * b + c) for float32 a, b, c, rounded once (a fused multiply-add): the product is exact
 * in double; the sum's double rounding error comes from TwoSum, and a sum that was rounded is made
 * odd in its last double bit (round to odd), so that rounding it to float32 rounds the exact sum
 * (double keeps more than 2 x 24 + 2 bits).
 */
export function fma32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  if (!Number.isFinite(s)) return Math.fround(s);
  const bv = s - p;
  const err = (p - (s - bv)) + (c - bv);
  if (err === 0) return Math.fround(s);
  f64[0] = s;
  if ((u64[0] & 1n) === 0n) u64[0] += (err > 0) === (s > 0) ? 1n : -1n;
  return Math.fround(f64[0]);
}

/** C = W X (W rows x cols in BSR, X cols x n row-major; C rows x n), by the contract above. */
export function bsrGemm(w: BsrMatrix, x: Float32Array, n: number, options: BsrGemmOptions = {}): Float32Array {
  const native = nativeCore();
  if (!native) return bsrGemmReference(w, x, n, options);
  checkOperand(x, w.cols * n, 'x', 'bsrGemm');
  const c = outputArray(options.out, w.rows * n, 'bsrGemm');
  native.bsrGemm(w.rowPtr, w.colIdx, w.values, x, c, {
    m: w.rows, k: w.cols, n, br: w.blockRows, bc: w.blockCols, fused: options.fused ?? true, threads: resolveThreads(options.threads),
  });
  return c;
}

/** Images as one-byte codes: the value of every code, and the codes' format record. */
export interface CodedImages {
  codes: Uint8Array;
  table: Float32Array;
  format: Format;
}

/**
 * A convolution's forward product with pruned weights: Y (NCHW, batch x rows x outH x outW) =
 * W times the column matrix of the images x (NCHW; one group: W is outChannels x channels * KH *
 * KW), read from the images while packing (no column matrix is built). Each output is bsrGemm's
 * chain, so it equals the dense direct convolution's product (the GEMM on the same column matrix)
 * on the pruned weights, zero signs aside.
 */
export function bsrConv2dForward(
  w: BsrMatrix, x: Float32Array | CodedImages, g: ColumnGeometry, batch: number, options: BsrGemmOptions = {},
): Float32Array {
  const k = g.channels * g.kernelH * g.kernelW, plane = g.outH * g.outW, n = batch * plane;
  if (w.cols !== k) throw new InvalidArgumentError(`bsrConv2dForward: the weight view has ${w.cols} columns; the geometry's column matrix has ${k} rows (channels x taps)`);
  const imageStride = g.channels * g.height * g.width;
  const images = x instanceof Float32Array ? x : x.codes;
  if (images.length !== batch * imageStride) throw new InvalidArgumentError(`bsrConv2dForward: x has ${images.length} values; expected ${batch * imageStride}`);
  if (!(x instanceof Float32Array) && !(x.table instanceof Float32Array && x.table.length === 256)) {
    throw new InvalidArgumentError('bsrConv2dForward: images of codes need the table of their 256 values');
  }
  const y = outputArray(options.out, batch * w.rows * plane, 'bsrConv2dForward');
  const native = nativeCore();
  if (!native) return bsrConv2dForwardReference(w, x, g, batch, { ...options, out: y });
  if (w.blockCols >= w.cols && w.blockRows === 1) return filterConv(w, x, g, batch, y, options);
  if (directSparseApplies(w, g, x instanceof Float32Array, options)) {
    // The direct kernel over each block row's stored taps (the same chains, no column matrix:
    // every input value is laid out once, in phase planes when strided, each tap a shifted load).
    native.directConvForwardSparse(x instanceof Float32Array ? { data: x } : { data: x.codes, table: x.table, format: x.format }, w.values, y, w.rowPtr, w.colIdx, {
      batch, channels: g.channels, height: g.height, width: g.width, outChannels: w.rows, kernelH: g.kernelH, kernelW: g.kernelW, padH: g.padH, padW: g.padW,
      outH: g.outH, outW: g.outW, strideH: g.strideH, strideW: g.strideW, dilationH: 1, dilationW: 1, xImageStride: imageStride, yImageStride: w.rows * plane,
      br: w.blockRows, bc: w.blockCols, threads: resolveThreads(options.threads),
    });
    return y;
  }
  native.bsrGemm(w.rowPtr, w.colIdx, w.values, images, y, {
    m: w.rows, k, n, br: w.blockRows, bc: w.blockCols, fused: options.fused ?? true, geometry: g, imageStride,
    ...(x instanceof Float32Array ? {} : { table: x.table }),
    cPlane: plane, cImageStride: w.rows * plane, threads: resolveThreads(options.threads),
  });
  return y;
}

/**
 * Whether a pruned convolution's forward runs on the direct sparse kernel rather than the column
 * one (the same bits either way; a fixed rule on the geometry, from the crossovers measured on
 * ResNet-18's shapes at 8x8 blocks, 75% and 90%: docs/benchmarks.md, 2026-12-06 23:30): blocks a
 * multiple of 8 rows tall, fused chains, dilation 1, and planes of at least 64 outputs for float
 * images, any stride (8x8 planes: even at 75%, 1.5x at 90%; 4x4 planes ran 0.6-0.7x of the column
 * kernel; stride 2 1.7-1.9x -> 3.3-3.4x at 75%) or, for codes, stride 1 and at least 256 outputs
 * (both kernels run codes on bfloat16 pairs, two products per instruction: at 75%, 32x32 planes
 * 1.9x -> 4.1-4.4x, 16x16 2.3x -> 2.8-3.1x, but 8x8 2.7x -> 1.4x, stride 2 about even).
 */
function directSparseApplies(w: BsrMatrix, g: ColumnGeometry, floats: boolean, options: BsrGemmOptions): boolean {
  if (!directSparseOn || !(options.fused ?? true) || w.blockRows % 8 !== 0 || g.dilationH !== 1 || g.dilationW !== 1) return false;
  const plane = g.outH * g.outW;
  if (floats) return plane >= 64;
  return bsrGemmPairsCodes() ? g.strideH === 1 && g.strideW === 1 && plane >= 256 : plane >= 32;
}

/**
 * Whether bsrGemm may run a convolution's images of codes on bfloat16 pairs (AVX-512; native
 * ShiftedRows and sparsePairs). Elsewhere the direct kernel, which decodes every input value once,
 * takes codes strided or not from 32 outputs a plane: measured on AMD Zen 3 (AVX2), E5M2, 8x8
 * blocks, batch 64, at 50 / 75 / 90% pruned, the direct kernel against bsrGemm: 1.1-2.1x on 8 x 8
 * outputs, 2.1-2.9x on 7 x 7, 1.3-2.8x strided onto 8 x 8 to 16 x 16 (0.90x once, 128->256 onto
 * 8 x 8 at 50%); strided onto 4 x 4, 0.60-0.86x (left to bsrGemm). Measured again on 2026-12-08,
 * after bsrGemm's AVX2 column rows of codes went 16 outputs at a time (they had been one value at
 * a time): at 75 / 90%, 32 x 32 1.3-1.6x / 1.4-1.8x, 16 x 16 1.2-1.4x / 1.5-2.0x, 8 x 8 1.0x /
 * 1.3-1.5x, 7 x 7 0.97-1.6x / 0.9-1.4x, strided onto 16 x 16 and 8 x 8 1.6-2.8x / 1.9-2.4x: the
 * rule stands.
 */
function bsrGemmPairsCodes(): boolean {
  return nativeKernels().gemmKernel === 'avx512';
}

let kernels: { gemmKernel: string; bf16Pairs: boolean } | undefined;
/** The native core's kernel family and whether its dense code products run bfloat16 pairs, read once (the rules ask per layer and step). */
function nativeKernels(): { gemmKernel: string; bf16Pairs: boolean } {
  if (!kernels) {
    const info = nativeCore()?.info();
    kernels = { gemmKernel: info?.gemmKernel ?? 'reference', bf16Pairs: info?.bf16Pairs ?? true };
  }
  return kernels;
}

/** bsrConv2dForward's contract written out: im2col of the images, bsrGemmReference, NCHW. */
export function bsrConv2dForwardReference(w: BsrMatrix, x: Float32Array | CodedImages, g: ColumnGeometry, batch: number, options: BsrGemmOptions = {}): Float32Array {
  const k = g.channels * g.kernelH * g.kernelW, plane = g.outH * g.outW, n = batch * plane;
  if (w.cols !== k) throw new InvalidArgumentError(`bsrConv2dForward: the weight view has ${w.cols} columns; the geometry's column matrix has ${k} rows (channels x taps)`);
  const imageStride = g.channels * g.height * g.width;
  const values = x instanceof Float32Array ? x : Float32Array.from(x.codes, (c) => x.table[c]);
  checkOperand(values, batch * imageStride, 'x', 'bsrConv2dForward');
  const y = outputArray(options.out, batch * w.rows * plane, 'bsrConv2dForward');
  const columns = new Float32Array(k * n);
  im2colBatchReference(values, columns, g, batch, imageStride);
  scatterPlanes(bsrGemmReference(w, columns, n, { fused: options.fused }), w.rows, plane, batch, y);
  return y;
}

/**
 * Whole filters kept (blocks of 1 x all columns): the kept rows of W as a dense matrix on the
 * dense direct product (the same chains), the pruned output channels +0 (as the dense product of
 * a zero row gives).
 */
function filterConv(w: BsrMatrix, x: Float32Array | CodedImages, g: ColumnGeometry, batch: number, y: Float32Array, options: BsrGemmOptions): Float32Array {
  const k = w.cols, plane = g.outH * g.outW, n = batch * plane;
  const kept: number[] = [];
  for (let q = 0; q + 1 < w.rowPtr.length; q++) if (w.rowPtr[q + 1] > w.rowPtr[q]) kept.push(q);
  const a = new Float32Array(kept.length * k);
  kept.forEach((q, r) => a.set(w.values.subarray(w.rowPtr[q] * k, w.rowPtr[q] * k + k), r * k));
  const part = new Float32Array(kept.length * n);
  const source = x instanceof Float32Array ? { x, geometry: g, batch, imageStride: g.channels * g.height * g.width }
    : { x: x.codes, table: x.table, format: x.format, geometry: g, batch, imageStride: g.channels * g.height * g.width };
  if (kept.length) columnsGemm(kept.length, n, k, a, source, part, { unfused: !(options.fused ?? true), threads: options.threads });
  y.fill(0);
  kept.forEach((q, r) => {
    for (let img = 0; img < batch; img++) y.set(part.subarray(r * n + img * plane, r * n + (img + 1) * plane), (img * w.rows + q) * plane);
  });
  return y;
}

/** Row-major rows x (batch x plane) into NCHW. */
function scatterPlanes(rows: Float32Array, m: number, plane: number, batch: number, y: Float32Array): void {
  for (let i = 0; i < m; i++) {
    for (let q = 0; q < batch; q++) y.set(rows.subarray(i * batch * plane + q * plane, i * batch * plane + (q + 1) * plane), (q * m + i) * plane);
  }
}

/** The stored blocks' entries of dY X^T (dY rows x n, X cols x n), by the contract above. */
export function bsrSampledGemmReference(pattern: BsrMatrix, dy: Float32Array, x: Float32Array, n: number, options: { fused?: boolean } = {}): BsrMatrix {
  checkOperand(dy, pattern.rows * n, 'dy', 'bsrSampledGemm');
  checkOperand(x, pattern.cols * n, 'x', 'bsrSampledGemm');
  const fused = options.fused ?? true;
  const size = pattern.blockRows * pattern.blockCols;
  const values = new Float32Array(pattern.values.length);
  for (let q = 0; q + 1 < pattern.rowPtr.length; q++) {
    for (let b = pattern.rowPtr[q]; b < pattern.rowPtr[q + 1]; b++) {
      for (let r = 0; r < pattern.blockRows && q * pattern.blockRows + r < pattern.rows; r++) {
        for (let c = 0; c < pattern.blockCols && pattern.colIdx[b] * pattern.blockCols + c < pattern.cols; c++) {
          const i = q * pattern.blockRows + r, t = pattern.colIdx[b] * pattern.blockCols + c;
          let acc = 0;
          for (let j = 0; j < n; j++) acc = fused ? fma32(dy[i * n + j], x[t * n + j], acc) : Math.fround(acc + Math.fround(dy[i * n + j] * x[t * n + j]));
          values[b * size + r * pattern.blockCols + c] = acc;
        }
      }
    }
  }
  return { ...pattern, values };
}

/**
 * The stored blocks' entries of dY X^T: per block row, the rows of X its blocks cover gathered
 * once, and the float32 GEMM (one chain over j per entry, fused) on them.
 */
export function bsrSampledGemm(pattern: BsrMatrix, dy: Float32Array, x: Float32Array, n: number, options: { fused?: boolean; threads?: number } = {}): BsrMatrix {
  checkOperand(dy, pattern.rows * n, 'dy', 'bsrSampledGemm');
  checkOperand(x, pattern.cols * n, 'x', 'bsrSampledGemm');
  if (!(options.fused ?? true) || !nativeCore()) return bsrSampledGemmReference(pattern, dy, x, n, options);
  const { blockRows: br, blockCols: bc } = pattern;
  const size = br * bc;
  const values = new Float32Array(pattern.values.length);
  for (let q = 0; q + 1 < pattern.rowPtr.length; q++) {
    const b0 = pattern.rowPtr[q], b1 = pattern.rowPtr[q + 1];
    if (b1 === b0) continue;
    const rows = Math.min(br, pattern.rows - q * br);
    const gathered = gatherRows(x, n, pattern, b0, b1);
    const width = (b1 - b0) * bc;
    const c = gemm(rows, width, n, dy.subarray(q * br * n, (q * br + rows) * n), gathered, new Float32Array(rows * width), { transB: true, threads: options.threads });
    for (let b = b0; b < b1; b++) {
      for (let r = 0; r < rows; r++) {
        for (let t = 0; t < bc && pattern.colIdx[b] * bc + t < pattern.cols; t++) values[b * size + r * bc + t] = c[r * width + (b - b0) * bc + t];
      }
    }
  }
  return { ...pattern, values };
}

/** Rows of X (cols x n) under blocks [b0, b1) of a block row, bc per block (zeros past cols). */
function gatherRows(x: Float32Array, n: number, w: BsrMatrix, b0: number, b1: number): Float32Array {
  const bc = w.blockCols;
  const out = new Float32Array((b1 - b0) * bc * n);
  for (let b = b0; b < b1; b++) {
    const k0 = w.colIdx[b] * bc, count = Math.min(bc, w.cols - k0);
    out.set(x.subarray(k0 * n, (k0 + count) * n), (b - b0) * bc * n);
  }
  return out;
}

export interface BsrLowpOptions extends Pick<LowpGemmOptions, 'accumulation' | 'rounding' | 'saturate' | 'chunk' | 'seed' | 'threads'> {}

/**
 * C = W X under lowpGemm's contract for the dense W with zeros at the pruned blocks (see the
 * file's comment): W's values are decoded codes of `wFormat` (the real weights are value /
 * wScale), X a low-precision operand (cols x n). The products and sums are those of the values;
 * the result is divided by fl32(wScale * xScale) when either is not 1, as lowpGemm does.
 */
export function bsrLowpGemm(w: BsrMatrix, wFormat: FormatLike, wScale: number, x: LowpOperand, n: number, options: BsrLowpOptions = {}): Float32Array {
  const format = resolveFormat(wFormat);
  if (!(Number.isFinite(wScale) && wScale > 0)) throw new InvalidArgumentError(`bsrLowpGemm: wScale is ${wScale}; expected a finite positive number`);
  const accumulation = options.accumulation ?? 'fp32';
  if (alignedOf(accumulation)) {
    throw new InvalidArgumentError('bsrLowpGemm: an aligned accumulator groups products by their index in the dense sum; run the dense product for it');
  }
  const xValues = x instanceof Float32Array ? x : decode(x.codes, x.format);
  if (xValues.length !== w.cols * n) throw new InvalidArgumentError(`bsrLowpGemm: x has ${xValues.length} values; expected cols x n = ${w.cols * n}`);
  const xScale = x instanceof Float32Array ? 1 : x.scale;
  const xBits = x instanceof Float32Array ? 24 : resolveFormat(x.format).mantissaBits + 1;
  const float32 = resolveFormat(accumulation as FormatLike).name === 'float32';
  let c: Float32Array;
  if (float32 && !(options.chunk ?? 0)) {
    // Products of two formats whose significands fit 24 bits together are exact: fused (the
    // contract's fl32(acc + p) with p exact); otherwise a multiply then an add.
    c = bsrGemm(w, xValues, n, { fused: format.mantissaBits + 1 + xBits <= 24, threads: options.threads });
  } else if ((options.rounding ?? 'nearest') === 'stochastic') {
    c = lowpGemm(w.rows, n, w.cols, bsrToDense(w), xValues, options);
  } else {
    c = blockRowsLowp(w, xValues, n, options);
  }
  if (wScale !== 1 || xScale !== 1) {
    const s = Math.fround(wScale * xScale);
    for (let i = 0; i < c.length; i++) c[i] = Math.fround(c[i] / s);
  }
  return c;
}

/**
 * Nearest-rounded emulated accumulation, block row by block row: the block row's kept columns of
 * W and rows of X gathered, and the dense sum's chunk ends mapped onto the kept terms
 * (lowpGemm's chunkEnds), so every element is the dense sum without its zero terms.
 */
function blockRowsLowp(w: BsrMatrix, x: Float32Array, n: number, options: BsrLowpOptions): Float32Array {
  const c = freshArray(w.rows * n);
  const { blockRows: br, blockCols: bc } = w;
  const size = br * bc;
  const chunk = options.chunk ?? 0;
  for (let q = 0; q + 1 < w.rowPtr.length; q++) {
    const b0 = w.rowPtr[q], b1 = w.rowPtr[q + 1];
    const rows = Math.min(br, w.rows - q * br);
    const kept: number[] = [];
    for (let b = b0; b < b1; b++) for (let t = w.colIdx[b] * bc; t < Math.min(w.cols, (w.colIdx[b] + 1) * bc); t++) kept.push(t);
    if (kept.length === 0) {
      c.fill(0, q * br * n, (q * br + rows) * n);
      continue;
    }
    const a = new Float32Array(rows * kept.length);
    let u = 0;
    for (let b = b0; b < b1; b++) {
      const width = Math.min(bc, w.cols - w.colIdx[b] * bc);
      for (let r = 0; r < rows; r++) for (let t = 0; t < width; t++) a[r * kept.length + u + t] = w.values[b * size + r * bc + t];
      u += width;
    }
    const opts: LowpGemmOptions = { ...options, chunk: 0 };
    if (chunk > 0) {
      // Chunk e of the dense sum covers t in [e L, (e + 1) L): its kept terms end where the next chunk's start.
      const ends = new Int32Array(Math.ceil(w.cols / chunk));
      let at = 0;
      for (let e = 0; e < ends.length; e++) {
        while (at < kept.length && kept[at] < (e + 1) * chunk) at++;
        ends[e] = at;
      }
      opts.chunkEnds = ends;
    }
    const xs = new Float32Array(kept.length * n);
    kept.forEach((t, v) => xs.set(x.subarray(t * n, (t + 1) * n), v * n));
    c.set(lowpGemm(rows, n, kept.length, a, xs, opts), q * br * n);
  }
  return c;
}

/**
 * A pruned weight's keep pattern over its GEMM view (rows = output channels, cols = input
 * channels x kh x kw): one byte per block of br x bc, 1 = kept, block rows outer (the last block
 * row and column shorter where br, bc do not divide the view); the weight's values outside kept
 * blocks are zero.
 */
export interface SparsePattern {
  readonly rows: number;
  readonly cols: number;
  readonly br: number;
  readonly bc: number;
  readonly keep: Uint8Array;
}

/** Kept blocks over all blocks of a pattern. */
export function keptFraction(pattern: SparsePattern): number {
  let kept = 0;
  for (const k of pattern.keep) kept += k ? 1 : 0;
  return pattern.keep.length ? kept / pattern.keep.length : 1;
}

/**
 * Whether a pruned convolution's forward runs on the block-sparse kernel: a fixed rule on the
 * pattern and on the product the layer would run dense, set from `octet bench sparse`'s
 * crossovers (docs/sparsity.md), never a timing, so that a run's results do not depend on the
 * machine's load.
 * - Against the float32 Winograd convolution (3x3 stride 1, 2.25-4x fewer multiplications than
 *   the direct product): blocks of at least 8 x 8 elements with at most 25% of them kept, or at
 *   least 4 x 4 with at most 15% kept; never single entries.
 * - Against a direct product (float32 or codes): blocks of at least 4 x 4 elements with at most
 *   50% kept; single entries and thinner blocks with at most 25% kept.
 * - Whole filters never: their kept rows run on the dense direct product and are scattered into
 *   the output, which on ResNet-20's layers costs more than the dense product (a model pruned by
 *   filters gains by being made narrower, which this does not do).
 */
export function sparseConvWins(pattern: SparsePattern, dense: 'winograd' | 'direct'): boolean {
  const f = keptFraction(pattern);
  const area = pattern.br * pattern.bc;
  if (pattern.br === 1 && pattern.bc >= pattern.cols) return false;
  if (dense === 'winograd') return pattern.br > 1 && ((area >= 64 && f <= 0.25) || (area >= 16 && f <= 0.15));
  return area >= 16 && pattern.br >= 4 ? f <= 0.5 : f <= 0.25;
}

/**
 * Whether a pruned convolution's weight gradient runs on the block-sparse kernel
 * (bsrConv2dWeightGradient: the kept blocks' entries only, the pruned ones zero), where nothing
 * reads the pruned entries: a fixed rule on the pattern and on the product the layer would run
 * dense, set from the crossovers measured on ResNet-18's shapes (docs/sparsity.md), never a timing.
 * The kernel packs the column matrix transposed and keeps 8 rows of a block in registers, so it
 * needs blocks of at least 4 x 4 (never single entries, thin blocks or whole filters).
 * - Against the float32 Winograd weight gradient (3x3 stride 1), and against the dense product on
 *   one-byte codes where it runs two products per instruction (bfloat16 pairs, `densePairs`: the
 *   native core's `bf16Pairs`): at least 8 x 8 with at most 25% of the blocks kept, or at least
 *   4 x 4 with at most 10%.
 * - Against a float32 direct product (strided convolutions, or --conv direct), and against the
 *   dense product on codes without pairs (one product an instruction, as this kernel): at least
 *   8 x 8 with at most 50%, or 4 x 4 with at most 10%. Codes without pairs measured 2026-12-07 on
 *   AMD Zen 3 (AVX2), ResNet-18's and ResNet-20's shapes, E5M2: 8x8 blocks at 50% kept 1.02-4.11x
 *   the dense product (layer4's 4 x 4 planes the least), at 35% 1.44-5.05x; 4x4 blocks (the column
 *   kernel) 0.75-1.25x at 50%, 0.94-1.77x at 25%.
 */
export function sparseWeightGradientWins(pattern: SparsePattern, dense: 'winograd' | 'direct' | 'codes', densePairs = denseRunsPairs()): boolean {
  if (pattern.br < 4 || pattern.bc < 4) return false;
  const f = keptFraction(pattern);
  const area = pattern.br * pattern.bc;
  const oneProduct = dense === 'direct' || (dense === 'codes' && !densePairs);
  return (area >= 64 && f <= (oneProduct ? 0.5 : 0.25)) || (area >= 16 && f <= 0.1);
}

/** Zero the entries of `values` (rows x cols, row-major) outside the pattern's kept blocks, in place. */
export function zeroPruned(values: Float32Array, pattern: SparsePattern): Float32Array {
  const { rows, cols, br, bc, keep } = pattern;
  if (values.length !== rows * cols) throw new InvalidArgumentError(`zeroPruned: ${values.length} values; the pattern covers ${rows} x ${cols}`);
  const blockCols = Math.ceil(cols / bc);
  // Runs of consecutive pruned blocks of each block row, one fill per run and row.
  const runs: number[] = [];
  for (let q = 0; q * br < rows; q++) {
    runs.length = 0;
    for (let p = 0; p < blockCols; p++) {
      if (keep[q * blockCols + p]) continue;
      const p0 = p;
      while (p + 1 < blockCols && !keep[q * blockCols + p + 1]) p++;
      runs.push(p0 * bc, Math.min(cols, (p + 1) * bc));
    }
    for (let i = q * br; i < Math.min(rows, (q + 1) * br); i++) {
      for (let r = 0; r < runs.length; r += 2) values.fill(0, i * cols + runs[r], i * cols + runs[r + 1]);
    }
  }
  return values;
}

/**
 * Whether a pruned convolution's input gradient runs on a sparse kernel, a fixed rule set from the
 * crossovers measured on ResNet-18's shapes (docs/sparsity.md), never a timing:
 * - 'winograd': the float32 input gradient of a stride-1 convolution (bsrConv2dInputGradient: W^T dY folded into the images
 *   row by row as col2im does) in place of Winograd's: blocks of at least 8 x 8 with at most 25%
 *   kept, or at least 4 x 4 with at most 10% (never thinner blocks). Strided convolutions use
 *   sparseConvWins(pattern, 'direct') instead: there the kernel keeps the dense route's bits. In
 *   place of a stride-1 direct product it never runs: that product's chain (a forward convolution
 *   of dY with the rotated kernel) is not the one it keeps.
 * - 'codes': one-byte codes with float32 accumulation (bsrLowpConv2dInputGradient: the rotated
 *   kernel's chains over the kept weights, the dense product's bits, strided or not) in place of
 *   the dense product. Where that product runs two products an instruction (bfloat16 pairs,
 *   `densePairs`: the native core's `bf16Pairs`) and this kernel one: blocks of at least 4 x 4 with
 *   at most 25% kept on inputs of at least 32 pixels (`pixels`, H x W), at most 15% kept on smaller
 *   ones. Measured 2026-12-07 on AMD Zen 5 on ResNet-18's and ResNet-20's shapes (batch 64, random
 *   patterns, the dense product beside it): from 7 x 7 inputs up 1.2-1.7x the dense product at 75%
 *   (0.99x once, ResNet-20's 28 x 28 layer with 4x4 blocks), 1.8-2.9x at 90%; on 4 x 4 inputs (512
 *   channels) 0.7-1.1x at 75%, 1.1-1.7x at 85%, 1.4-2.4x at 90%. Without pairs (CPUs with no
 *   AVX512_BF16, where both run one product an instruction): at most 35% kept on 32 pixels or more,
 *   15% below. Measured 2026-12-07 on AMD Zen 3 (AVX2), the same shapes, 4x4 and 8x8 blocks: at 65%
 *   1.36-2.98x from 7 x 7 inputs up, at 50% 0.72-1.83x; on 4 x 4 inputs 0.78-1.37x at 65%, 0.96-1.58x
 *   at 75%, 2.6x at 90%.
 */
export function sparseInputGradientWins(pattern: SparsePattern, dense: 'winograd' | 'codes' = 'winograd', pixels = Infinity, densePairs = denseRunsPairs()): boolean {
  if (pattern.br < 4 || pattern.bc < 4) return false;
  const f = keptFraction(pattern);
  const area = pattern.br * pattern.bc;
  if (dense === 'codes') return f <= (pixels < 32 ? 0.15 : densePairs ? 0.25 : 0.35);
  return (area >= 64 && f <= 0.25) || (area >= 16 && f <= 0.1);
}

/** Whether the dense products on one-byte codes run bfloat16 pairs here (true without a native core: the rules' first measurements). */
function denseRunsPairs(): boolean {
  return nativeKernels().bf16Pairs;
}

/** A pattern's block structure in BSR (rowPtr, colIdx; no values): what the weight-gradient kernel reads. */
export function bsrStructure(pattern: SparsePattern): BsrMatrix {
  const { rows, cols, br, bc, keep } = pattern;
  const { blockRowCount, blockColCount } = blockGrid(rows, cols, br, bc);
  if (keep.length !== blockRowCount * blockColCount) {
    throw new InvalidArgumentError(`bsrStructure: the pattern has ${keep.length} blocks; expected ${blockRowCount} x ${blockColCount} for ${br}x${bc} blocks of ${rows} x ${cols}`);
  }
  const rowPtr = new Int32Array(blockRowCount + 1);
  let stored = 0;
  for (let b = 0; b < keep.length; b++) if (keep[b] !== 0) stored++;
  const colIdx = new Int32Array(stored);
  stored = 0;
  for (let q = 0; q < blockRowCount; q++) {
    const base = q * blockColCount;
    for (let p = 0; p < blockColCount; p++) if (keep[base + p] !== 0) colIdx[stored++] = p;
    rowPtr[q + 1] = stored;
  }
  return { rows, cols, blockRows: br, blockCols: bc, rowPtr, colIdx, values: new Float32Array(0) };
}

/**
 * The pruned weight in BSR from its one-byte codes (rows x cols, row-major) through their table: the
 * kept blocks' values only. `pooled` as bsrFromPattern's.
 */
export function bsrFromCodes(codes: Uint8Array, table: Float32Array, pattern: SparsePattern, pooled = false): BsrMatrix {
  const { rows, cols, br, bc } = pattern;
  const s = bsrStructure(pattern);
  const size = br * bc;
  const values = pooled ? takeBuffer(s.colIdx.length * size) : new Float32Array(s.colIdx.length * size);
  const native = nativeCore();
  if (native) {
    native.bsrGather(s.rowPtr, s.colIdx, codes, values, { rows, cols, br, bc, transposed: false, table });
    return { ...s, values };
  }
  for (let q = 0; q < s.rowPtr.length - 1; q++) {
    const height = Math.min(br, rows - q * br);
    for (let blk = s.rowPtr[q]; blk < s.rowPtr[q + 1]; blk++) {
      const c0 = s.colIdx[blk] * bc, width = Math.min(bc, cols - c0);
      let to = blk * size;
      if (height < br || width < bc) values.fill(0, to, to + size);
      for (let r = 0, from = q * br * cols + c0; r < height; r++, from += cols, to += bc) {
        for (let c = 0; c < width; c++) values[to + c] = table[codes[from + c]];
      }
    }
  }
  return { ...s, values };
}

/**
 * The pruned weight in BSR from its dense values (zeros outside kept blocks). `pooled`: its values
 * come from the buffer pool, for a caller that hands them back (recycle) once its product is done.
 */
export function bsrFromPattern(weight: Float32Array, pattern: SparsePattern, pooled = false): BsrMatrix {
  if (!pooled) return bsrFromDense(weight, pattern.rows, pattern.cols, pattern.br, pattern.bc, pattern.keep);
  if (weight.length !== pattern.rows * pattern.cols) {
    throw new InvalidArgumentError(`bsrFromPattern: the weight has ${weight.length} values; expected rows x cols = ${pattern.rows * pattern.cols}`);
  }
  const s = bsrStructure(pattern);
  const values = takeBuffer(s.colIdx.length * pattern.br * pattern.bc);
  gatherBlocks(weight, pattern.rows, pattern.cols, pattern.br, pattern.bc, s.rowPtr, s.colIdx, values);
  return { ...s, values };
}

/**
 * The transpose of the pruned weight in BSR, straight from its dense values (rows x cols): the
 * same matrix as bsrTranspose(bsrFromPattern(weight, pattern)) (cols x rows, bc x br blocks),
 * without the weight's own BSR in between. `pooled` as bsrFromPattern's.
 */
export function bsrTransposedFromPattern(weight: Float32Array, pattern: SparsePattern, pooled = false): BsrMatrix {
  const { rows, cols, br, bc, keep } = pattern;
  const native = nativeCore();
  if (!native) return bsrTranspose(bsrFromPattern(weight, pattern));
  if (weight.length !== rows * cols) throw new InvalidArgumentError(`bsrTransposedFromPattern: the weight has ${weight.length} values; expected rows x cols = ${rows * cols}`);
  const { blockRowCount, blockColCount } = blockGrid(rows, cols, br, bc);
  if (keep.length !== blockRowCount * blockColCount) {
    throw new InvalidArgumentError(`bsrTransposedFromPattern: the pattern has ${keep.length} blocks; expected ${blockRowCount} x ${blockColCount} for ${br}x${bc} blocks of ${rows} x ${cols}`);
  }
  // Block row p of W^T holds W's blocks (q, p) for increasing q.
  const rowPtr = new Int32Array(blockColCount + 1);
  for (let q = 0; q < blockRowCount; q++) {
    for (let p = 0, at = q * blockColCount; p < blockColCount; p++, at++) if (keep[at] !== 0) rowPtr[p + 1]++;
  }
  for (let p = 0; p < blockColCount; p++) rowPtr[p + 1] += rowPtr[p];
  const next = rowPtr.slice(0, blockColCount);
  const colIdx = new Int32Array(rowPtr[blockColCount]);
  for (let q = 0; q < blockRowCount; q++) {
    for (let p = 0, at = q * blockColCount; p < blockColCount; p++, at++) if (keep[at] !== 0) colIdx[next[p]++] = q;
  }
  const values = pooled ? takeBuffer(colIdx.length * br * bc) : new Float32Array(colIdx.length * br * bc);
  native.bsrGather(rowPtr, colIdx, weight, values, { rows, cols, br: bc, bc: br, transposed: true });
  return { rows: cols, cols: rows, blockRows: bc, blockCols: br, rowPtr, colIdx, values };
}

/**
 * Where the sparse convolution kernels give lowpGemm's bits: both operands one-byte codes (decoded
 * while packing), float32 accumulation without chunks, output rounding, stochastic rounding or
 * transposes.
 */
export function codesOnFloat32Sums(a: LowpOperand, b: LowpOperand, options: LowpGemmOptions): boolean {
  if (a instanceof Float32Array || b instanceof Float32Array || !(a.codes instanceof Uint8Array) || !(b.codes instanceof Uint8Array)) return false;
  if (a.format.bits > 8 || b.format.bits > 8) return false;
  const accumulation = options.accumulation ?? 'fp32';
  if (alignedOf(accumulation) || resolveFormat(accumulation as FormatLike).name !== 'float32') return false;
  return !(options.chunk || options.chunkEnds || options.output || options.rounding === 'stochastic' || options.transA || options.transB);
}

/**
 * lowpConv2dForward (one group) on a pruned weight through the block-sparse kernel, where it
 * gives the same bits: both operands one-byte codes, float32 accumulation without chunks, output
 * rounding or stochastic rounding. Returns null where it does not apply (the caller runs the dense
 * product). The result: bsrConv2dForward on the decoded values (fused where the two formats'
 * products are exact in float32, as lowpGemm's float32 accumulation is), divided by
 * fl32(scaleX * scaleW) as lowpGemm does.
 */
export function bsrLowpConv2dForward(
  pattern: SparsePattern, w: LowpOperand, x: LowpOperand, g: ColumnGeometry, batch: number, options: LowpGemmOptions = {},
): Float32Array | null {
  if (!codesOnFloat32Sums(w, x, options)) return null;
  const wq = w as QTensor, xq = x as QTensor;
  if (pattern.cols !== g.channels * g.kernelH * g.kernelW || wq.codes.length !== pattern.rows * pattern.cols) return null;
  const table = decodeTable(xq.format);
  const fused = wq.format.mantissaBits + xq.format.mantissaBits + 2 <= 24;
  // The kept blocks' values straight from their codes (not the whole weight decoded), and the
  // output from the buffer pool, as the dense product's is (every element is written).
  const bsr = bsrFromCodes(wq.codes as Uint8Array, decodeTable(wq.format), pattern, true);
  const out = takeBuffer(batch * pattern.rows * g.outH * g.outW);
  const y = bsrConv2dForward(bsr, { codes: xq.codes as Uint8Array, table, format: xq.format }, g, batch, { fused, threads: options.threads, out });
  recycle(bsr.values);
  return divideByScale(y, Math.fround(wq.scale * xq.scale));
}
