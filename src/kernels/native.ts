/**
 * The native kernel core (build/Release/octet_native.node, built by node-gyp during
 * `npm install`). When it is missing or fails to load, every kernel runs its TypeScript
 * reference instead, and a warning says so once. `OCTET_NATIVE=0` chooses the reference path on
 * purpose (no warning); `OCTET_NATIVE_PATH` loads the addon from another file (a portable
 * build, say).
 */
import { createRequire } from 'node:module';
import { InvalidArgumentError } from '../errors.js';

export interface NativeInfo {
  gemmKernel: string;
  /**
   * Whether products of FP8 codes with fp32 accumulation run on AVX512_BF16's two-product
   * instruction (the same bits as the float kernel; where it is faster, or OCTET_BF16_PAIRS=on).
   */
  bf16Pairs: boolean;
  /** How many GEMMs have run on it in this process. */
  bf16PairProducts: number;
  threads: number;
  hardwareThreads: number;
  openmp: boolean;
  /** Blocks of at least this many bytes are mapped on their own (0: the C library's default policy). */
  mmapThreshold: number;
}

/** The functions the addon exports; argument checks repeat inside the addon. */
export interface NativeCore {
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    beta: number,
    c: Float32Array,
    ldc: number,
    threads?: number,
  ): void;
  /** Codec parameters: the 13 numbers of EncodeParams in the order of native/codec.h. */
  encode(values: Float32Array, codes: Uint8Array | Uint16Array | Uint32Array, params: number[], threads?: number): void;
  quantize(values: Float32Array, out: Float32Array, params: number[], table: Float32Array | null, threads?: number): void;
  decode(codes: Uint8Array | Uint16Array | Uint32Array, out: Float32Array, table: Float32Array | null, threads?: number): void;
  /** Geometry: [C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW] (see native/im2col.h). */
  im2col(x: Float32Array, col: Float32Array, geometry: number[], threads?: number): void;
  col2im(col: Float32Array, x: Float32Array, geometry: number[], threads?: number): void;
  im2colBatch(x: Float32Array | Uint8Array, col: Float32Array | Uint8Array, geometry: number[], batch: number, imageStride: number, threads?: number): void;
  col2imBatch(col: Float32Array, x: Float32Array, geometry: number[], batch: number, imageStride: number, threads?: number): void;
  /** Shape: [tile, N, C, H, W, K, PH, PW, xImageStride, yImageStride, flipped] (see native/winograd.h). */
  winogradForward(x: Float32Array, w: Float32Array, y: Float32Array, shape: number[], threads?: number): void;
  winogradWeightGradient(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: number[], threads?: number): void;
  reluForward(x: Float32Array, out: Float32Array, mask: Uint8Array | null, threads?: number): void;
  absMax(x: Float32Array, threads?: number): number;
  encodeScaled(
    values: Float32Array, scale: number, codes: Uint8Array | Uint16Array | Uint32Array, params: number[], maxFinite: number, magnitudeMask: number, threads?: number,
  ): [number, number, number];
  scaleCountOverflow(x: Float32Array, scale: number, out: Float32Array, maxFinite: number, threads?: number): number;
  reluBackward(mask: Uint8Array, g: Float32Array, out: Float32Array, threads?: number): void;
  add(a: Float32Array, b: Float32Array, out: Float32Array, threads?: number): void;
  adamwMoments(m: Float32Array, v: Float32Array, g: Float32Array, beta1: number, beta2: number, threads?: number): void;
  adamwApply(p: Float32Array, m: Float32Array, v: Float32Array, decay: number, stepSize: number, c2Sqrt: number, eps: number, threads?: number): void;
  channelBiasAdd(out: Float32Array, bias: Float32Array, batch: number, channels: number, plane: number, threads?: number): void;
  channelSum(g: Float32Array, sums: Float64Array, batch: number, channels: number, plane: number, threads?: number): void;
  channelMeanVar(x: Float32Array, mean: Float64Array, variance: Float64Array, batch: number, channels: number, plane: number, threads?: number): void;
  batchNormForward(
    x: Float32Array, mean: Float64Array, invStd: Float32Array, gamma: Float32Array | null, beta: Float32Array | null,
    xhat: Float32Array, out: Float32Array, batch: number, channels: number, plane: number, threads?: number,
  ): void;
  batchNormBackward(
    g: Float32Array, xhat: Float32Array, invStd: Float32Array, gamma: Float32Array | null, training: boolean,
    gx: Float32Array | null, sumG: Float64Array, sumGX: Float64Array, batch: number, channels: number, plane: number, threads?: number,
  ): void;
  /** Emulated-accumulation GEMM on decoded operands (native/lowp_gemm.h). */
  lowpGemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number, a: Float32Array | Uint8Array, b: Float32Array | Uint8Array,
    c: Float32Array, codecParams: number[], table: Float32Array | null, chunk: number, exactProducts: boolean,
    productsOnSubnormalGrid: boolean, threads?: number, aTable?: Float32Array | null, bTable?: Float32Array | null,
    bIsE5M2?: boolean, aIsE5M2?: boolean, chunkEnds?: Int32Array | null, bColumnsGeometry?: number[] | null, bImageStride?: number,
  ): void;
  /**
   * C = op(A) op(B) (alpha 1, beta 0) with operands as floats or one-byte codes plus a table; each
   * element one chain in k order of fused multiply-adds, or with `unfused` of a multiply then an add.
   */
  sgemmCoded(
    transA: boolean, transB: boolean, m: number, n: number, k: number, a: Float32Array | Uint8Array, aTable: Float32Array | null,
    lda: number, b: Float32Array | Uint8Array, bTable: Float32Array | null, ldb: number, c: Float32Array, ldc: number, threads?: number,
    bIsE5M2?: boolean, aIsE5M2?: boolean, unfused?: boolean,
  ): void;
  /** sgemmCoded with B the column matrix of images (src/kernels/columns_gemm.ts), never stored. */
  sgemmColumns(
    transA: boolean, transB: boolean, m: number, n: number, k: number, a: Float32Array | Uint8Array, aTable: Float32Array | null, lda: number,
    x: Float32Array | Uint8Array, xTable: Float32Array | null, geometry: number[], imageStride: number, c: Float32Array, ldc: number,
    cPlane: number, cImageStride: number, threads: number, bIsE5M2: boolean, aIsE5M2: boolean, unfused: boolean,
  ): void;
  moveRows(matrix: Float32Array | Uint8Array, images: Float32Array | Uint8Array, rows: number, count: number, plane: number, channels: number, c0: number, n0: number, toImages: boolean, threads?: number): void;
  scatterPhase(
    matrix: Float32Array, images: Float32Array, rows: number, count: number, channels: number, c0: number, n0: number, height: number, width: number,
    ph: number, pw: number, strideH: number, strideW: number, phaseRows: number, phaseCols: number, threads?: number,
  ): void;
  rotateKernel(w: Float32Array | Uint8Array, out: Float32Array | Uint8Array, group: number, ocg: number, cg: number, taps: number, threads?: number): void;
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
