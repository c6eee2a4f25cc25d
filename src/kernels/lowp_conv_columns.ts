/**
 * What the low-precision convolutions (lowp_conv.ts, lowp_conv_phases.ts) share: the fast or
 * reference backend, operands as the convolution rearranges them (floats or one-byte codes), the
 * reused scratch planes, and the GEMM of a weight matrix with a group's column matrix, read in
 * place from the images where the kernels can, else built in cache-sized chunks.
 */
import { InvalidArgumentError } from '../errors.js';
import { resolveFormat, seedKey, streamKey } from '../formats/index.js';
import type { ColumnGeometry, ConvGeometry } from './conv_geometry.js';
import { im2colBatch, im2colBatchReference, type ImagePlane } from './im2col.js';
import {
  decodeOperand,
  lowpGemm,
  lowpGemmColumns,
  lowpGemmDecoded,
  lowpGemmDecodedReference,
  nativeOperand,
  runsOnSgemm,
  type DecodedOperand,
  type LowpGemmOptions,
  type LowpOperand,
} from './lowp_gemm.js';
import { moveRows, moveRowsReference, rotatedKernel, rotatedKernelReference } from './conv_layout.js';
import { nativeCore } from './native.js';

export interface Backend {
  fast: boolean;
  moveRows: typeof moveRows;
  rotatedKernel: typeof rotatedKernel;
  im2colBatch: (x: ImagePlane, col: ImagePlane, g: ColumnGeometry, batch: number, imageStride: number) => void;
  gemm: (m: number, n: number, k: number, a: DecodedOperand, b: DecodedOperand, o: LowpGemmOptions) => Float32Array;
}

const FAST: Backend = { fast: true, moveRows, rotatedKernel, im2colBatch, gemm: lowpGemmDecoded };
const REFERENCE: Backend = { fast: false, moveRows: moveRowsReference, rotatedKernel: rotatedKernelReference, im2colBatch: im2colBatchReference, gemm: lowpGemmDecodedReference };

export function backend(reference: boolean): Backend {
  return reference || !nativeCore() ? REFERENCE : FAST;
}

/** What one GEMM operand is handed over as: a LowpOperand (codes or floats) or decoded values. */
export type GemmOperand = { kind: 'lowp'; op: LowpOperand } | { kind: 'decoded'; op: DecodedOperand };

/**
 * An operand as the convolution rearranges it (im2col, gathers, rotation): a plane of floats or,
 * on the fast path, of one-byte codes, which is 4x less to move and which the GEMM decodes while
 * packing; `operand` turns a rearranged plane back into a GEMM operand.
 */
export interface Arranged {
  plane: ImagePlane;
  operand(plane: ImagePlane): GemmOperand;
}

export function arrange(x: LowpOperand, name: string, elements: number, b: Backend): Arranged {
  if (b.fast && !(x instanceof Float32Array) && x.codes instanceof Uint8Array && resolveFormat(x.format).storageBytes === 1) {
    if (x.codes.length !== elements) throw new InvalidArgumentError(`lowpConv2d: ${name} holds ${x.codes.length} codes; expected ${elements}`);
    const { format, scale } = x;
    return { plane: x.codes, operand: (p) => ({ kind: 'lowp', op: { codes: p as Uint8Array, format, scale } }) };
  }
  const decoded = decodeOperand(x, name, elements, b.fast);
  return { plane: decoded.values, operand: (p) => ({ kind: 'decoded', op: { ...decoded, values: p as Float32Array } }) };
}

function asDecoded(x: GemmOperand, fast: boolean): DecodedOperand {
  return x.kind === 'decoded' ? x.op : decodeOperand(x.op, 'operand', x.op instanceof Float32Array ? x.op.length : x.op.codes.length, fast);
}

/** The operand as lowpGemm takes it without decoding codes into a full float copy, or null. */
function undecoded(x: GemmOperand): LowpOperand | null {
  if (x.kind === 'lowp') return x.op;
  // Plain float32 values (SFP8's output gradient, say) are the same operand as the array itself.
  const plain = x.op.scale === 1 && x.op.significandBits === 24 && x.op.quantumExponent === -149;
  return plain ? x.op.values : null;
}

function runGemm(b: Backend, m: number, n: number, k: number, A: GemmOperand, B: GemmOperand, o: LowpGemmOptions): Float32Array {
  if (A.kind === 'lowp' && B.kind === 'lowp') return lowpGemm(m, n, k, A.op, B.op, o);
  // Codes beside float32 values: the GEMM decodes the codes while packing.
  const a = b.fast ? undecoded(A) : null;
  const bOp = b.fast ? undecoded(B) : null;
  if (a && bOp) return lowpGemm(m, n, k, a, bOp, o);
  return b.gemm(m, n, k, asDecoded(A, b.fast), asDecoded(B, b.fast), o);
}

/** A zeroed plane of the same kind (floats or codes). */
export function alloc(like: ImagePlane, n: number): ImagePlane {
  return like instanceof Uint8Array ? new Uint8Array(n) : new Float32Array(n);
}

/**
 * Reused planes for what every call rebuilds in full (column matrices, gathered output
 * gradients): allocating them afresh costs tens of megabytes of zeroing and page faults per
 * convolution. One buffer per slot and kind, grown on demand; the contents are stale, so only
 * planes that are written completely come from here. The functions below finish with a slot
 * before they return and never call each other, so sharing is safe (JavaScript runs one call
 * at a time).
 */
const scratchPlanes = new Map<string, ImagePlane>();
export const FLOATS = new Float32Array(0);

export function scratch(slot: 'columns' | 'gathered' | 'result', like: ImagePlane, n: number): ImagePlane {
  const key = `${slot}:${like instanceof Uint8Array ? 'codes' : 'floats'}`;
  let buffer = scratchPlanes.get(key);
  if (!buffer || buffer.length < n) {
    buffer = alloc(like, n);
    scratchPlanes.set(key, buffer);
  }
  return buffer.subarray(0, n);
}

export function groupOptions(options: LowpGemmOptions, group: number): LowpGemmOptions {
  const base = options.streamKey ?? seedKey(options.seed ?? 0);
  return { ...options, streamKey: streamKey(base, group) };
}

/**
 * col_g for images [n0, n0 + count) side by side: [K x count*P] (every image by default); with
 * `c0`/`cc` only the rows of the group's input channels [c0, c0 + cc): [cc*KH*KW x count*P].
 */
function batchColumns(
  b: Backend, x: ImagePlane, s: ConvGeometry, group: number, height: number, width: number, geometry: ColumnGeometry, n0 = 0, count = s.batch,
  c0 = 0, cc = s.channels / s.groups,
): ImagePlane {
  const cg = s.channels / s.groups;
  const plane = geometry.outH * geometry.outW;
  const k = cc * geometry.kernelH * geometry.kernelW;
  const imageStride = s.channels * height * width;
  // im2col writes every element (zeros where the window reads padding).
  const cols = scratch('columns', x, k * count * plane);
  b.im2colBatch(x.subarray(n0 * imageStride + (group * cg + c0) * height * width), cols, { ...geometry, channels: cc }, count, imageStride);
  return cols;
}

/** Where the GEMM's column matrix is a rearranged plane of the images. */
export interface ColumnsAt {
  planes: Arranged;
  image: ImagePlane;
  s: ConvGeometry;
  group: number;
  height: number;
  width: number;
  geometry: ColumnGeometry;
}

/**
 * Whether the GEMMs read their columns straight from the images (no column matrix is built, so
 * chunks need not bound one): on the SGEMM (fp32 accumulation without chunks), or with the
 * columns transposed (the weight gradient) on the emulated-accumulation kernel too; with the
 * addon, and floats or one-byte codes on both sides.
 */
export function readsColumnsInPlace(b: Backend, A: GemmOperand, X: Arranged, options: LowpGemmOptions): boolean {
  return b.fast && (runsOnSgemm(options) || options.transB === true) && nativeOperand(A.op) !== null && nativeOperand(X.operand(X.plane).op) !== null;
}

/**
 * A [m x ...] times col_g of images [n0, n0 + count) (channels [c0, c0 + cc) of the group), or
 * times its transpose with options.transB: read in place where readsColumnsInPlace, else built by
 * batchColumns. The same bits either way.
 */
export function columnsProduct(
  b: Backend, m: number, n: number, k: number, A: GemmOperand, at: ColumnsAt, options: LowpGemmOptions, n0 = 0, count = at.s.batch, c0 = 0,
  cc = at.s.channels / at.s.groups,
): Float32Array {
  const { planes, image, s, group, height, width, geometry } = at;
  if (readsColumnsInPlace(b, A, planes, options)) {
    const imageStride = s.channels * height * width;
    const x = nativeOperand(planes.operand(image.subarray(n0 * imageStride + (group * (s.channels / s.groups) + c0) * height * width)).op)!;
    const result = lowpGemmColumns(m, n, k, nativeOperand(A.op)!, x, { geometry: { ...geometry, channels: cc }, batch: count, imageStride }, options);
    if (result) return result;
  }
  return runGemm(b, m, n, k, A, planes.operand(batchColumns(b, image, s, group, height, width, geometry, n0, count, c0, cc)), options);
}

/**
 * Column matrices are built for chunks of images of at most this many bytes, so they stay in
 * cache-sized buffers instead of holding the whole batch. The GEMM's columns are independent
 * sums, so chunking changes no bit, except where a result depends on its column index: the
 * stochastic draws (keyed by (i, j)) and stochastic output rounding (keyed by element); those run
 * over the whole batch at once.
 */
let columnBudget = 8 << 20;

/** Set the column buffer budget in bytes (tests and tuning); returns the previous one. */
export function setConvColumnBudget(bytes: number): number {
  if (!(bytes >= 1)) throw new InvalidArgumentError(`setConvColumnBudget: ${bytes} bytes; expected at least 1`);
  const previous = columnBudget;
  columnBudget = bytes;
  return previous;
}

/** Stochastic draws or stochastic output rounding: results depend on their row and column index. */
export function keyedByPosition(options: LowpGemmOptions): boolean {
  return options.rounding === 'stochastic' || options.output?.rounding === 'stochastic';
}

/** How many of `total` units (images, channels) of `bytesPerUnit` each fit the column budget (at least one). */
export function unitsPerChunk(total: number, bytesPerUnit: number): number {
  return Math.max(1, Math.min(total, Math.floor(columnBudget / bytesPerUnit)));
}

export function imagesPerChunk(options: LowpGemmOptions, batch: number, bytesPerImage: number): number {
  return keyedByPosition(options) ? batch : unitsPerChunk(batch, bytesPerImage);
}

