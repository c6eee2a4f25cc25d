/**
 * The native kernel core (build/Release/octet_native.node, built by node-gyp during
 * `npm install`). When it is missing or fails to load, every kernel runs its TypeScript
 * reference instead, and a warning says so once. `OCTET_NATIVE=0` chooses the reference path on
 * purpose (no warning); `OCTET_NATIVE_PATH` loads the addon from another file (a portable
 * build, say).
 */
import { createRequire } from 'node:module';
import { InvalidArgumentError } from '../errors.js';
import type { CodeArray, EncodeParams, Format } from '../formats/index.js';
import type { ColumnGeometry } from './conv_geometry.js';

export interface NativeInfo {
  gemmKernel: string;
  /**
   * Whether products of FP8 codes with fp32 accumulation run on AVX512_BF16's two-product
   * instruction (the same bits as the float kernel; where it is faster, or OCTET_BF16_PAIRS=on).
   */
  bf16Pairs: boolean;
  /**
   * The emulated-accumulation kernels' vector tiles: 'avx512' (16 lanes; also the direct
   * convolutions under an emulated accumulator), 'avx2' (8 lanes) or 'portable' (OCTET_CODEC_KERNEL
   * can ask for a simpler one).
   */
  lowpTiles: 'avx512' | 'avx2' | 'portable';
  /** How many GEMMs have run on it in this process. */
  bf16PairProducts: number;
  threads: number;
  hardwareThreads: number;
  openmp: boolean;
  /** Blocks of at least this many bytes are mapped on their own (0: the C library's default policy). */
  mmapThreshold: number;
}

/**
 * A matrix operand of the native GEMMs: floats, or one-byte codes with the value of every code
 * and the record of their format (the kernels decode FP8 E5M2 codes 16 at a time by half
 * conversion when the record says E5M2).
 */
export interface NativeMatrix {
  data: Float32Array | Uint8Array;
  table?: Float32Array | null;
  format?: Format | null;
}

/** The emulated accumulator of a low-precision product, as the native kernels take it. */
export interface NativeAccumulator {
  accumulator: EncodeParams;
  table: Float32Array | null;
  chunk: number;
  chunkEnds: Int32Array | null;
  exactProducts: boolean;
  productsOnSubnormalGrid: boolean;
}

/** One group's stride-1 convolution for native/direct_conv.h (outH = height + 2 padH - kernelH + 1). */
export interface NativeDirectConv {
  batch: number;
  channels: number;
  height: number;
  width: number;
  outChannels: number;
  kernelH: number;
  kernelW: number;
  padH: number;
  padW: number;
  outH: number;
  outW: number;
  xImageStride: number;
  yImageStride: number;
}

/** The shape of a GEMM C = op(A) op(B): C is m x n, the sum runs over k. */
export interface NativeGemmShape {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
}

/** Every native call takes a thread count (a positive integer; the addon's default when absent). */
interface Threads {
  threads?: number;
}

/** batch x channels x plane, as the per-channel kernels read NCHW data. */
interface ChannelOptions extends Threads {
  batch: number;
  channels: number;
  plane: number;
}

/** A Winograd product for one group (native/winograd.h): a 3x3 kernel at stride 1, OH = H + 2 PH - 2. */
export interface NativeWinograd extends Threads {
  tile: 2 | 4;
  batch: number;
  channels: number;
  height: number;
  width: number;
  outChannels: number;
  padH: number;
  padW: number;
  xImageStride: number;
  yImageStride: number;
  flipped: boolean;
}

/**
 * The functions the addon exports: arrays first, then one object of named options (native/addon.cc
 * documents each); the addon checks every argument again. Codec parameters are EncodeParams,
 * geometries ColumnGeometry records, formats their records.
 */
export interface NativeCore {
  sgemm(a: Float32Array, b: Float32Array, c: Float32Array, o: NativeGemmShape & Threads & { alpha: number; beta: number; lda: number; ldb: number; ldc: number }): void;
  /** C = op(A) op(B) (alpha 1, beta 0); each element one chain in k order of fused multiply-adds, or with `unfused` of a multiply then an add. */
  sgemmCoded(a: NativeMatrix, b: NativeMatrix, c: Float32Array, o: NativeGemmShape & Threads & { lda: number; ldb: number; ldc: number; unfused: boolean }): void;
  /** sgemmCoded with B the column matrix of the images x (src/kernels/columns_gemm.ts), never stored. */
  sgemmColumns(
    a: NativeMatrix, x: NativeMatrix, c: Float32Array,
    o: NativeGemmShape & Threads & { lda: number; ldc: number; geometry: ColumnGeometry; imageStride: number; cPlane: number; cImageStride: number; unfused: boolean },
  ): void;
  /** The emulated-accumulation GEMM (native/lowp_gemm.h); with `columns`, b holds the images of op(B)'s transposed column matrix. */
  lowpGemm(
    a: NativeMatrix, b: NativeMatrix, c: Float32Array,
    o: NativeGemmShape & Threads & NativeAccumulator & { columns: { geometry: ColumnGeometry; imageStride: number } | null },
  ): void;
  /** directConvWeightGradient under an emulated accumulator; false (dw untouched) where it cannot give the contract's bits. */
  directConvWeightGradientLowp(
    dy: NativeMatrix, x: NativeMatrix, dw: Float32Array,
    o: Threads & NativeDirectConv & NativeAccumulator & { strideH: number; strideW: number; dilationH: number; dilationW: number },
  ): boolean;
  /** directConvForward under an emulated accumulator; false (y unspecified) where it cannot give the contract's bits (native/direct_conv.h). */
  directConvForwardLowp(x: NativeMatrix, w: NativeMatrix, y: Float32Array, o: Threads & NativeDirectConv & NativeAccumulator): boolean;
  encode(values: Float32Array, codes: CodeArray, o: Threads & { params: EncodeParams }): void;
  quantize(values: Float32Array, out: Float32Array, o: Threads & { params: EncodeParams; table: Float32Array | null }): void;
  decode(codes: CodeArray, out: Float32Array, o: Threads & { table: Float32Array | null }): void;
  encodeScaled(values: Float32Array, codes: CodeArray, o: Threads & { scale: number; params: EncodeParams; maxFinite: number; magnitudeMask: number }): [number, number, number];
  im2col(x: Float32Array, col: Float32Array, o: Threads & { geometry: ColumnGeometry }): void;
  col2im(col: Float32Array, x: Float32Array, o: Threads & { geometry: ColumnGeometry }): void;
  im2colBatch(x: Float32Array | Uint8Array, col: Float32Array | Uint8Array, o: Threads & { geometry: ColumnGeometry; batch: number; imageStride: number }): void;
  col2imBatch(col: Float32Array, x: Float32Array, o: Threads & { geometry: ColumnGeometry; batch: number; imageStride: number }): void;
  depthwiseForward(x: Float32Array, w: Float32Array, y: Float32Array, o: Threads & { geometry: ColumnGeometry; batch: number }): void;
  depthwiseInputGradient(dy: Float32Array, w: Float32Array, gx: Float32Array, o: Threads & { geometry: ColumnGeometry; batch: number }): void;
  depthwiseWeightGradient(dy: Float32Array, x: Float32Array, gw: Float32Array, o: Threads & { geometry: ColumnGeometry; batch: number }): void;
  directConvForward(x: NativeMatrix, w: NativeMatrix, y: Float32Array, o: Threads & NativeDirectConv): void;
  /** The forward of a weight pruned in blocks (native/direct_conv.h): its block rows' stored taps only. */
  directConvForwardSparse(
    x: NativeMatrix, values: Float32Array, y: Float32Array, rowPtr: Int32Array, colIdx: Int32Array,
    o: Threads & NativeDirectConv & { strideH: number; strideW: number; dilationH: number; dilationW: number; br: number; bc: number },
  ): void;
  directConvWeightGradient(
    dy: NativeMatrix, x: NativeMatrix, dw: Float32Array, o: Threads & NativeDirectConv & { strideH: number; strideW: number; dilationH: number; dilationW: number },
  ): void;
  /** The weight gradient of a weight pruned in blocks at its stored entries (native/direct_conv.h); false without AVX-512 or blocks a multiple of 8 rows tall. */
  directConvWeightGradientSparse(
    dy: NativeMatrix, x: NativeMatrix, dw: Float32Array, rowPtr: Int32Array, colIdx: Int32Array,
    o: Threads & NativeDirectConv & { strideH: number; strideW: number; dilationH: number; dilationW: number; br: number; bc: number },
  ): boolean;
  winogradForward(x: Float32Array, w: Float32Array, y: Float32Array, o: NativeWinograd): void;
  winogradWeightGradient(x: Float32Array, dy: Float32Array, dw: Float32Array, o: NativeWinograd): void;
  absMax(x: Float32Array, o: Threads): number;
  /** Block-scaled quantization (src/kernels/block_quant.ts); returns the NaN/Inf, nonzero and underflow counts. */
  blockQuantize(
    values: Float32Array, codes: Uint8Array, scales: Float32Array,
    o: Threads & {
      rows: number; k: number; kMajorInput: boolean; blockRows: number; blockK: number; scaleKind: number; margin: number; maxFinite: number; emax: number;
      params: EncodeParams; magnitudeMask: number;
    },
  ): [number, number, number];
  /** The whole block-scaled GEMM with float32 partials and outer sum (native/block_scaled.h): a K x m, b K x n codes. */
  blockGemmFp32(
    a: Uint8Array, b: Uint8Array, c: Float32Array, scalesA: Float32Array, scalesB: Float32Array, ends: Float64Array,
    o: Threads & { m: number; n: number; k: number; blockKA: number; blockRowsA: number; blockKB: number; blockRowsB: number; aTable: Float32Array; bTable: Float32Array },
  ): void;
  /** C = W X with W in block compressed sparse rows (native/block_sparse.h). */
  bsrGemm(
    rowPtr: Int32Array, colIdx: Int32Array, values: Float32Array, x: Float32Array | Uint8Array, c: Float32Array,
    o: Threads & {
      m: number; k: number; n: number; br: number; bc: number; fused: boolean;
      geometry?: ColumnGeometry; imageStride?: number; cPlane?: number; cImageStride?: number; table?: Float32Array;
    },
  ): void;
  /** A convolution's input gradient from W^T in BSR, added into dx (native/block_sparse.h). */
  bsrConvInputGradient(
    rowPtr: Int32Array, colIdx: Int32Array, values: Float32Array, dy: Float32Array, dx: Float32Array,
    o: Threads & { m: number; k: number; br: number; bc: number; fused: boolean; batch: number; geometry: ColumnGeometry; clear?: boolean },
  ): void;
  /**
   * The stride-1 input gradient of a convolution whose weight is pruned in blocks, as the forward
   * convolution of dY with the rotated weights (native/block_sparse.h); false where an operand is
   * not finite (nothing written).
   */
  sparseRotatedInputGradient(
    rowPtr: Int32Array, colIdx: Int32Array, w: Float32Array | Uint8Array, dy: Float32Array | Uint8Array, dx: Float32Array,
    o: Threads & { m: number; br: number; bc: number; batch: number; geometry: ColumnGeometry; wTable?: Float32Array; dyTable?: Float32Array },
  ): boolean;
  /** The stored blocks' values of the BSR form of dense (rows x cols) or of its transpose (native/block_sparse.h). */
  bsrGather(
    rowPtr: Int32Array, colIdx: Int32Array, dense: Float32Array | Uint8Array, values: Float32Array,
    o: { rows: number; cols: number; br: number; bc: number; transposed: boolean; table?: Float32Array },
  ): void;
  /** A convolution's weight gradient at a pattern's stored blocks, into dw (native/block_sparse.h). */
  bsrConvWeightGradient(
    rowPtr: Int32Array, colIdx: Int32Array, images: Float32Array | Uint8Array, dy: Float32Array | Uint8Array, dw: Float32Array,
    o: Threads & {
      m: number; k: number; br: number; bc: number; batch: number; geometry: ColumnGeometry; imageStride: number; table?: Float32Array; dyTable?: Float32Array;
    },
  ): void;
  /**
   * GEMM under an aligned fixed-point accumulator (native/aligned_gemm.h): a m x k (k x m with
   * aKMajor), b k x n codes, row-major; with `blocks`, the block-scaled product's runs and divisors.
   */
  alignedGemm(
    a: Uint8Array, b: Uint8Array, c: Float32Array,
    o: Threads & {
      m: number; n: number; k: number; group: number; keep: number; significant: number; interval: number;
      aTables: { sig: Int8Array; exp: Int8Array; bad: Uint8Array; mantissaBits: number };
      bTables: { sig: Int8Array; exp: Int8Array; bad: Uint8Array; mantissaBits: number };
      aKMajor?: boolean;
      blocks?: {
        scalesA: Float32Array; scalesB: Float32Array; ends: Float64Array; blockKA: number; blockRowsA: number; blockKB: number; blockRowsB: number;
      };
    },
  ): void;
  /** One K-block's partials into the outer sum of a block-scaled GEMM (src/kernels/block_gemm.ts). */
  blockScaleAdd(
    partial: Float32Array, acc: Float32Array, sa: Float32Array, sb: Float32Array,
    o: Threads & { m: number; n: number; blockRowsA: number; blockRowsB: number; outer: EncodeParams | null; table: Float32Array | null },
  ): void;
  valueHistogram(x: Float32Array, bins: Uint32Array, o: Threads): [number, number, number];
  collectBins(x: Float32Array, slot: Int32Array, offsets: Uint32Array, out: Uint32Array, o: object): number;
  errorEnergy(value: Float32Array, ref: Float32Array, middle: Float32Array | null, sums: Float64Array, o: Threads): void;
  scaleCountOverflow(x: Float32Array, out: Float32Array, o: Threads & { scale: number; maxFinite: number }): number;
  reluForward(x: Float32Array, out: Float32Array, mask: Uint8Array | null, o: Threads): void;
  zeroWhere(values: Float32Array | Uint16Array | Uint8Array, keep: Uint8Array, o: Threads): void;
  reluBackward(mask: Uint8Array, g: Float32Array, out: Float32Array, o: Threads): void;
  add(a: Float32Array, b: Float32Array, out: Float32Array, o: Threads): void;
  adamwMoments(m: Float32Array, v: Float32Array, g: Float32Array, o: Threads & { beta1: number; beta2: number }): void;
  adamwApply(p: Float32Array, m: Float32Array, v: Float32Array, o: Threads & { decay: number; stepSize: number; c2Sqrt: number; eps: number }): void;
  adamwMasked(
    p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, keep: Uint8Array,
    o: Threads & { beta1: number; beta2: number; decay: number; stepSize: number; c2Sqrt: number; eps: number },
  ): void;
  channelBiasAdd(out: Float32Array, bias: Float32Array, o: ChannelOptions): void;
  channelSum(g: Float32Array, sums: Float64Array, o: ChannelOptions): void;
  channelMeanVar(x: Float32Array, mean: Float64Array, variance: Float64Array, o: ChannelOptions): void;
  batchNormForward(
    x: Float32Array, mean: Float64Array, invStd: Float32Array, gamma: Float32Array | null, beta: Float32Array | null, xhat: Float32Array, out: Float32Array,
    o: ChannelOptions,
  ): void;
  batchNormBackwardCodes(
    g: Float32Array, xhat: { data: Uint8Array; table: Float32Array; format: Format }, invStd: Float32Array, gamma: Float32Array | null, gx: Float32Array | null,
    sumG: Float64Array, sumGX: Float64Array, o: ChannelOptions & { training: boolean; scale: number },
  ): void;
  batchNormBackward(
    g: Float32Array, xhat: Float32Array, invStd: Float32Array, gamma: Float32Array | null, gx: Float32Array | null, sumG: Float64Array, sumGX: Float64Array,
    o: ChannelOptions & { training: boolean },
  ): void;
  moveRows(
    matrix: Float32Array | Uint8Array, images: Float32Array | Uint8Array,
    o: Threads & { rows: number; count: number; plane: number; channels: number; c0: number; n0: number; toImages: boolean },
  ): void;
  scatterPhase(
    matrix: Float32Array, images: Float32Array,
    o: Threads & {
      rows: number; count: number; channels: number; c0: number; n0: number; height: number; width: number; ph: number; pw: number; strideH: number;
      strideW: number; phaseRows: number; phaseCols: number;
    },
  ): void;
  rotateKernel(w: Float32Array | Uint8Array, out: Float32Array | Uint8Array, o: Threads & { group: number; ocg: number; cg: number; taps: number }): void;
  /** Map in every page of a fresh array now, on this thread (MADV_POPULATE_WRITE); false where unsupported. */
  prefault(array: Float32Array | Uint8Array | Uint16Array | Uint32Array): boolean;
  info(): NativeInfo;
  setThreads(threads: number): void;
}

let loaded: NativeCore | null | undefined;
let loadError: string | null = null;

function load(): NativeCore | null {
  // The addon reads OCTET_BF16_PAIRS itself, once; a misspelt value would silently mean "auto".
  const pairs = process.env.OCTET_BF16_PAIRS;
  if (pairs !== undefined && !['', 'auto', 'on', 'off'].includes(pairs)) {
    throw new InvalidArgumentError(`OCTET_BF16_PAIRS is ${JSON.stringify(pairs)}; expected "on", "off" or "auto" (the default: on where it is faster)`);
  }
  if (process.env.OCTET_NATIVE === '0') {
    loadError = 'disabled by OCTET_NATIVE=0';
    return null;
  }
  try {
    const require = createRequire(import.meta.url);
    // src/kernels/ and dist/kernels/ both sit two levels below the package root.
    return require(process.env.OCTET_NATIVE_PATH || '../../build/Release/octet_native.node') as NativeCore;
  } catch (error) {
    loadError = (error as Error).message.split('\n')[0];
    process.emitWarning(
      `Octet's native kernel core could not be loaded (${loadError}); running on the TypeScript ` +
        'reference kernels, which are much slower. Rebuild it with `npm rebuild octet` (needs g++ and make).',
      { code: 'OCTET_NATIVE_UNAVAILABLE' },
    );
    return null;
  }
}

/** The addon, or null when the reference path is in use. */
export function nativeCore(): NativeCore | null {
  if (loaded === undefined) loaded = load();
  return loaded;
}

/** Why the addon is not in use, or null when it is. */
export function nativeUnavailableReason(): string | null {
  nativeCore();
  return loadError;
}
