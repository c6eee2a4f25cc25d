/**
 * Low-precision GEMM: C = op(A) op(B) with quantized operands and an emulated accumulator.
 *
 * (Longer than this project's files usually are, on purpose: the contract, its naive reference
 * and the dispatch to the native paths stay together, since resolving the options, the chunk
 * bounds and the final rescaling and rounding are part of the contract and shared by both sides.)
 *
 * CONTRACT (part of the API; the native kernel returns exactly these bits):
 *
 * Operands. A is m x k and B is k x n after the optional transposes; each is a Float32Array
 * (scale 1) or coded: codes of a format plus a scale, whose real value is decode(code) / scale.
 * a and b below are the decoded values (without the scale).
 *
 * Products. p_t = fl32(a[i,t] * b[t,j]). For two operands whose significands together have at
 * most 24 bits (any two 8-bit formats, or an 8-bit and a 16-bit one) the product is exact.
 *
 * Accumulation, for each C element, over t = 0, 1, ..., k-1 in order:
 * - `fp32`:  acc = fl32(acc + p_t).
 * - format F: acc = round_F(fl32(acc + p_t)), rounding nearest-even or stochastic, with
 *   saturation when asked (else overflow gives Inf, or NaN for formats without Inf). The sum is
 *   formed in float32 first; with FP8 products and a 16-bit accumulator this equals rounding the
 *   exact sum once under nearest rounding (a term more than 2^17 smaller is below half a unit of
 *   F either way).
 * - chunked, chunk length L > 0 (Wang et al. 2018): partial = accumulate p_t over each run of L
 *   consecutive t as above, starting from 0; when a run ends (or t = k-1), total =
 *   round_F(fl32(total + partial)) and partial restarts at 0. With `chunkEnds` instead, the runs
 *   are [chunkEnds[c-1], chunkEnds[c]) (from 0) and an empty run adds nothing (nearest rounding
 *   only): the chunks of a longer sequence whose left-out terms were exact zeros.
 * Stochastic draws: the add of product t uses draw(t), the add of run c into the total uses
 * draw(k + c), with draw(t) = drawU32(cellKey(i, j), t) and
 *   cellKey(i, j) = mix32(mix32(seedKey(seed) ^ (i * 0x85EBCA6B)) ^ (j * 0xC2B2AE35))  (mod 2^32),
 * so results do not depend on threading, which splits rows and columns of C, never t.
 *
 * - an aligned accumulator (`hopper-fp8`, `hopper-fp8-fast`, or an AlignedAccumulator record: the
 *   model and its contract are in src/kernels/hopper_gemm.ts): for coded operands of at most 8 bits.
 *
 * Result. c = acc when both scales are 1, else fl32(acc / fl32(scaleA * scaleB)); then, when an
 * output format is given, c is rounded to it by the codec (element index i * n + j).
 */
import { InvalidArgumentError } from '../errors.js';
import {
  decodeReference,
  decodeTable,
  encodeBits,
  encodeParams,
  cellKey,
  resolveFormat,
  seedKey,
  type QTensor,
  type EncodeParams,
  type Format,
  type FormatLike,
  type Rounding,
} from '../formats/index.js';
import { takeZeroed } from './buffer_pool.js';
import { alignedGemm, checkAligned, hopperGemm, isAlignedModel, ALIGNED_MODELS, type AlignedAccumulator, type HopperModel } from './hopper_gemm.js';
import { decode, quantize } from './codec.js';
import { columnsGemm, type ColumnSource } from './columns_gemm.js';
import type { ColumnGeometry } from './conv_geometry.js';
import { divideByScale } from './quant_stats.js';
import { nativeCore, type NativeAccumulator, type NativeMatrix } from './native.js';
import { resolveThreads } from './threads.js';

/** An operand: float32 values (scale 1), or a QTensor (real value = decode(code) / scale). */
export type LowpOperand = Float32Array | QTensor;

export interface LowpOutput {
  format: FormatLike;
  rounding?: Rounding;
  saturate?: boolean;
  seed?: number;
}

export interface LowpGemmOptions {
  transA?: boolean;
  transB?: boolean;
  /**
   * `fp32` (default; any name of float32), a format (e.g. `e6m9`, `fp16`, `bf16`), or an aligned
   * accumulator: `hopper-fp8`, `hopper-fp8-fast`, or its parameters (src/kernels/hopper_gemm.ts).
   */
  accumulation?: 'fp32' | FormatLike | HopperModel | AlignedAccumulator;
  /** Rounding of the accumulator (default nearest). */
  rounding?: 'nearest' | 'stochastic';
  /** Accumulator overflow saturates at ±max instead of giving Inf/NaN. */
  saturate?: boolean;
  /** Chunk length L for chunked accumulation; 0 (default) for none. */
  chunk?: number;
  /**
   * Chunk ends instead of a fixed length (non-decreasing, the last k; an empty chunk adds
   * nothing); nearest rounding only, since stochastic draws are keyed by the addition's index.
   */
  chunkEnds?: Int32Array;
  /** Seed of the stochastic rounding draws. */
  seed?: number;
  /** A 32-bit stream key to use instead of seedKey(seed) (for callers that run several GEMMs
   *  under one seed, such as grouped convolutions). */
  streamKey?: number;
  /** Round the result to this format. */
  output?: LowpOutput;
  /** Write C (m x n) here instead of a new array (every element is written). */
  out?: Float32Array;
  threads?: number;
}

/** An operand after decoding: values without the scale, and facts of its format. */
export interface DecodedOperand {
  values: Float32Array;
  scale: number;
  /** Significand bits of the operand's format (24 for float32). */
  significandBits: number;
  /** Exponent of the operand format's smallest positive value (-149 for float32). */
  quantumExponent: number;
}

function isCoded(x: LowpOperand): x is QTensor {
  return !(x instanceof Float32Array);
}

/** The format and scale of a coded operand, after checking them and its length. */
function checkCoded(x: QTensor, name: string, elements: number): { format: Format; scale: number } {
  const { format, scale } = x;
  if (!(Number.isFinite(scale) && scale > 0)) throw new InvalidArgumentError(`lowpGemm: ${name} scale is ${scale}; expected a finite positive number`);
  if (x.codes.length !== elements) throw new InvalidArgumentError(`lowpGemm: ${name} holds ${x.codes.length} codes; expected ${elements}`);
  return { format, scale };
}

/** Decode (or take) an operand as a float32 matrix of its stored shape. */
export function decodeOperand(x: LowpOperand, name: string, elements: number, fast: boolean): DecodedOperand {
  if (!isCoded(x)) {
    if (x.length !== elements) throw new InvalidArgumentError(`lowpGemm: ${name} holds ${x.length} values; expected ${elements}`);
    return { values: x, scale: 1, significandBits: 24, quantumExponent: -149 };
  }
  const { format, scale } = checkCoded(x, name, elements);
  const values = fast ? decode(x.codes, format) : decodeReference(x.codes, format);
  return { values, scale, significandBits: format.mantissaBits + 1, quantumExponent: Math.log2(format.minSubnormal) };
}

/** chunkEnds must end at k (resolveOptions checks the rest, before k is known). */
function checkChunkEnds(ends: Int32Array, k: number): void {
  const last = ends.length ? ends[ends.length - 1] : -1;
  if (last !== k) throw new InvalidArgumentError(`lowpGemm: the last of chunkEnds is ${last}; expected k = ${k}`);
}

/**
 * The chunks of a sum of k products as the ends of the nonempty ones (strictly increasing, the
 * last k), from chunkEnds or the chunk length; null without chunks.
 */
function chunkBounds(r: Resolved, k: number): number[] | null {
  if (r.chunkEnds) {
    checkChunkEnds(r.chunkEnds, k);
    const ends: number[] = [];
    for (const e of r.chunkEnds) if (e > (ends.length ? ends[ends.length - 1] : 0)) ends.push(e);
    return ends;
  }
  if (r.chunk === 0) return null;
  const ends: number[] = [];
  for (let e = r.chunk; e < k + r.chunk; e += r.chunk) ends.push(Math.min(e, k));
  return ends;
}

interface Resolved {
  accumulation: Format | null;
  rounding: 'nearest' | 'stochastic';
  saturate: boolean;
  chunk: number;
  chunkEnds: Int32Array | null;
  key: number;
}

/** The aligned accumulator an accumulation option names, or null. */
export function alignedOf(accumulation: LowpGemmOptions['accumulation']): AlignedAccumulator | null {
  if (isAlignedModel(accumulation)) return ALIGNED_MODELS[accumulation];
  if (accumulation !== null && typeof accumulation === 'object' && 'group' in accumulation) return checkAligned(accumulation);
  return null;
}

function resolveOptions(options: LowpGemmOptions): Resolved {
  if (alignedOf(options.accumulation)) throw new InvalidArgumentError('lowpGemm: an aligned accumulator takes coded operands of at most 8 bits (both operands as codes)');
  // float32 accumulation under any of its names (fp32, float32, e8m23) is the plain float32 sum.
  const acc = resolveFormat((options.accumulation as FormatLike | undefined) ?? 'fp32');
  const accumulation = acc.name === 'float32' ? null : acc;
  const rounding = options.rounding ?? 'nearest';
  if (rounding !== 'nearest' && rounding !== 'stochastic') {
    throw new InvalidArgumentError(`lowpGemm: accumulation rounding ${JSON.stringify(rounding)}; expected nearest or stochastic`);
  }
  const chunk = options.chunk ?? 0;
  if (!Number.isInteger(chunk) || chunk < 0) throw new InvalidArgumentError(`lowpGemm: chunk is ${chunk}; expected 0 (none) or a positive integer`);
  const key = options.streamKey ?? seedKey(options.seed ?? 0);
  if (!Number.isInteger(key) || key < 0 || key >= 2 ** 32) throw new InvalidArgumentError(`lowpGemm: streamKey is ${key}; expected a 32-bit unsigned integer`);
  const chunkEnds = options.chunkEnds ?? null;
  if (chunkEnds) {
    if (!(chunkEnds instanceof Int32Array)) throw new InvalidArgumentError('lowpGemm: chunkEnds must be an Int32Array');
    if (rounding !== 'nearest') throw new InvalidArgumentError('lowpGemm: chunkEnds need nearest rounding (stochastic draws are keyed by the addition\'s index)');
    for (let c = 1; c < chunkEnds.length; c++) {
      if (chunkEnds[c] < chunkEnds[c - 1]) throw new InvalidArgumentError(`lowpGemm: chunkEnds decrease at ${c} (${chunkEnds[c - 1]} then ${chunkEnds[c]})`);
    }
    if (chunkEnds.length > 0 && chunkEnds[0] < 0) throw new InvalidArgumentError('lowpGemm: chunkEnds must not be negative');
  }
  return { accumulation, rounding, saturate: options.saturate ?? false, chunk, chunkEnds, key };
}

/**
 * The given output array, checked, or zeros from the buffer pool (else a fresh array, prefaulted:
 * the kernels write it on several threads).
 */
function outputArray(out: Float32Array | undefined, length: number): Float32Array {
  if (!out) return takeZeroed(length);
  if (!(out instanceof Float32Array) || out.length !== length) {
    throw new InvalidArgumentError(`lowpGemm: out must be a Float32Array of ${length} elements (m x n); got ${out?.length ?? typeof out}`);
  }
  return out;
}

function checkDims(m: number, n: number, k: number): void {
  for (const [name, v] of [['m', m], ['n', n], ['k', k]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`lowpGemm: ${name} is ${v}; expected a non-negative integer`);
  }
}

/**
 * C's elements divided by the product of the operands' scales, then rounded to the output format
 * if one is given: what every product here ends with (exported for kernels that compute the same
 * sums another way, such as the direct convolution).
 */
export function finishProduct(c: Float32Array, scaleA: number, scaleB: number, output: LowpOutput | undefined): Float32Array {
  return finish(c, scaleA, scaleB, output, true);
}

/** Rescale by the operand scales and round to the output format (shared by both paths). */
function finish(c: Float32Array, scaleA: number, scaleB: number, output: LowpOutput | undefined, fast: boolean): Float32Array {
  const scale = Math.fround(scaleA * scaleB);
  // The reference divides element by element; the fast path divides power-of-two scales natively.
  if (fast) divideByScale(c, scale);
  else if (scale !== 1) for (let i = 0; i < c.length; i++) c[i] = c[i] / scale;
  if (!output) return c;
  const options = { rounding: output.rounding ?? 'nearest', saturate: output.saturate ?? false, seed: output.seed ?? 0 };
  return fast ? quantize(c, output.format, options, c) : quantizeValues(c, resolveFormat(output.format), options);
}

function quantizeValues(c: Float32Array, f: Format, options: { rounding: Rounding; saturate: boolean; seed: number }): Float32Array {
  const p = encodeParams(f, options);
  const bits = new Uint32Array(c.buffer, c.byteOffset, c.length);
  const table = f.bits <= 16 ? decodeTable(f) : null;
  for (let i = 0; i < c.length; i++) {
    const code = encodeBits(bits[i], p, i);
    if (table) c[i] = table[code];
    else bits[i] = code;
  }
  return c;
}

/** round_F of a float32 value, as element `t` of the stream `p` (whose key is the cell key). */
function roundTo(x: number, p: EncodeParams, t: number, table: Float32Array | null, scratch: Float32Array, scratchBits: Uint32Array): number {
  scratch[0] = x;
  const code = encodeBits(scratchBits[0], p, t);
  if (table) return table[code];
  scratchBits[0] = code;
  return scratch[0];
}

/** The contract as a naive loop: the reference the native kernel must equal bit for bit. */
export function lowpGemmReference(
  m: number,
  n: number,
  k: number,
  a: LowpOperand,
  b: LowpOperand,
  options: LowpGemmOptions = {},
): Float32Array {
  checkDims(m, n, k);
  const aligned = alignedOf(options.accumulation);
  if (aligned) return alignedProduct(m, n, k, a, b, aligned, options, false);
  return lowpGemmDecodedReference(m, n, k, decodeOperand(a, 'A', m * k, false), decodeOperand(b, 'B', k * n, false), options);
}

/** Codes of a coded operand of at most 8 bits as a row-major rows x cols matrix (transposed if stored so). */
function rowMajorCodes(x: LowpOperand, name: string, rows: number, cols: number, transposed: boolean): { codes: Uint8Array; format: Format; scale: number } {
  if (isCoded(x) && x.codes instanceof Uint8Array && x.format.bits <= 8) {
    const { format, scale } = checkCoded(x, name, rows * cols);
    if (!transposed) return { codes: x.codes, format, scale };
    const codes = new Uint8Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) codes[r * cols + c] = x.codes[c * rows + r];
    return { codes, format, scale };
  }
  throw new InvalidArgumentError(`lowpGemm: an aligned accumulator (hopper-fp8 and its kind) takes coded operands of at most 8 bits; ${name} is ${isCoded(x) ? x.format.name + ' codes' : 'float32'}`);
}

/** The product under an aligned accumulator: its totals, then the contract's scales and output rounding. */
function alignedProduct(m: number, n: number, k: number, a: LowpOperand, b: LowpOperand, model: AlignedAccumulator, options: LowpGemmOptions, fast: boolean): Float32Array {
  const A = rowMajorCodes(a, 'A', m, k, options.transA ?? false);
  const B = rowMajorCodes(b, 'B', k, n, options.transB ?? false);
  const totals = fast ? alignedGemm(m, n, k, A.codes, A.format, B.codes, B.format, model, options.threads) : hopperGemm(m, n, k, A.codes, A.format, B.codes, B.format, { model });
  const c = outputArray(options.out, m * n);
  c.set(totals);
  return finish(c, A.scale, B.scale, options.output, fast);
}

/** The reference on operands already decoded. */
export function lowpGemmDecodedReference(
  m: number,
  n: number,
  k: number,
  A: DecodedOperand,
  B: DecodedOperand,
  options: LowpGemmOptions = {},
): Float32Array {
  const r = resolveOptions(options);
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const c = outputArray(options.out, m * n);
  const f = r.accumulation;
  const base = f ? encodeParams(f, { rounding: r.rounding, saturate: r.saturate }) : null;
  const table = f && f.bits <= 16 ? decodeTable(f) : null;
  const key = r.key;
  const ends = chunkBounds(r, k);
  const scratch = new Float32Array(1);
  const scratchBits = new Uint32Array(scratch.buffer);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const p = base ? { ...base, key: cellKey(key, i, j), counterOffset: 0 } : null;
      const add = (acc: number, term: number, t: number) => {
        const sum = Math.fround(acc + term);
        return p ? roundTo(sum, p, t, table, scratch, scratchBits) : sum;
      };
      let acc = 0;
      let partial = 0;
      let run = 0;
      for (let t = 0; t < k; t++) {
        const av = transA ? A.values[t * m + i] : A.values[i * k + t];
        const bv = transB ? B.values[j * k + t] : B.values[t * n + j];
        const product = Math.fround(av * bv);
        if (!ends) {
          acc = add(acc, product, t);
        } else {
          partial = add(partial, product, t);
          if (t + 1 === ends[run]) {
            acc = add(acc, partial, k + run);
            run++;
            partial = 0;
          }
        }
      }
      c[i * n + j] = acc;
    }
  }
  return finish(c, A.scale, B.scale, options.output, false);
}

/**
 * The fast path: for fp32 accumulation without chunks of operands whose products are exact,
 * the SGEMM kernel on the decoded operands (it adds each product to the running sum in k order
 * with fused multiply-adds, which round exactly as the contract does when the product is
 * exact); otherwise the native emulated-accumulation kernel. Without the addon, the reference.
 */
export function lowpGemm(
  m: number,
  n: number,
  k: number,
  a: LowpOperand,
  b: LowpOperand,
  options: LowpGemmOptions = {},
): Float32Array {
  checkDims(m, n, k);
  const native = nativeCore();
  const aligned = alignedOf(options.accumulation);
  if (aligned) return alignedProduct(m, n, k, a, b, aligned, options, native !== null);
  if (native) {
    // Floats or one-byte codes go to the kernels as they are and are decoded while packing.
    const A = packedOperand(a, 'A', m * k);
    const B = packedOperand(b, 'B', k * n);
    if (A && B) return runNative(m, n, k, A, B, options);
  }
  const fast = native !== null;
  return lowpGemmDecoded(m, n, k, decodeOperand(a, 'A', m * k, fast), decodeOperand(b, 'B', k * n, fast), options);
}

/** Where op(B) is the transpose of the column matrix of images (lowpGemmColumns). */
interface NativeColumns {
  geometry: ColumnGeometry;
  imageStride: number;
}

/** An operand as the native kernels take it (floats, or one-byte codes with their table and format record), with its scale and format's facts. */
export interface NativeOperand extends NativeMatrix {
  table: Float32Array | null;
  format: Format | null;
  scale: number;
  significandBits: number;
  quantumExponent: number;
}

/**
 * The native paths: for fp32 accumulation without chunks, the SGEMM kernel, which adds each
 * product to the running sum in k order: with fused multiply-adds when the products are exact
 * (one rounding, as the contract's), else with a multiply then an add (the contract's rounding of
 * the product, then of the sum); otherwise the emulated-accumulation kernel.
 */
function runNative(m: number, n: number, k: number, A: NativeOperand, B: NativeOperand, options: LowpGemmOptions, columns: NativeColumns | null = null): Float32Array {
  const native = nativeCore()!;
  const r = resolveOptions(options);
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const threads = resolveThreads(options.threads);
  const c = outputArray(options.out, m * n);
  const exactProducts = A.significandBits + B.significandBits <= 24;
  if (r.chunkEnds) checkChunkEnds(r.chunkEnds, k);
  if (!r.accumulation && r.chunk === 0 && !r.chunkEnds) {
    native.sgemmCoded(A, B, c, { transA, transB, m, n, k, lda: transA ? m : k, ldb: transB ? k : n, ldc: n, unfused: !exactProducts, threads });
  } else {
    native.lowpGemm(A, B, c, { transA, transB, m, n, k, ...nativeAccumulator(A, B, options), columns, threads });
  }
  return finish(c, A.scale, B.scale, options.output, true);
}

/**
 * The emulated accumulator of a product of these operands under these options, as the native
 * kernels take it (the options resolved; chunk ends unchecked: the kernels check them against k).
 */
export function nativeAccumulator(A: NativeOperand, B: NativeOperand, options: LowpGemmOptions): NativeAccumulator {
  const r = resolveOptions(options);
  // With fp32 accumulation (chunked, or inexact products) the accumulator is not rounded: no table.
  const f = r.accumulation ?? resolveFormat('fp32');
  return {
    accumulator: { ...encodeParams(f, { rounding: r.rounding, saturate: r.saturate }), key: r.key },
    table: r.accumulation ? decodeTable(r.accumulation) : null,
    chunk: r.chunk,
    chunkEnds: r.chunkEnds,
    exactProducts: A.significandBits + B.significandBits <= 24,
    // Products on the accumulator's subnormal grid, and normal float32 values when not zero.
    productsOnSubnormalGrid: A.quantumExponent + B.quantumExponent >= Math.max(Math.log2(f.minSubnormal), -126),
  };
}

/** The fast path on operands already decoded (the reference when the addon is missing). */
export function lowpGemmDecoded(
  m: number,
  n: number,
  k: number,
  A: DecodedOperand,
  B: DecodedOperand,
  options: LowpGemmOptions = {},
): Float32Array {
  if (!nativeCore()) return lowpGemmDecodedReference(m, n, k, A, B, options);
  const asNative = (x: DecodedOperand): NativeOperand => ({ ...x, data: x.values, table: null, format: null });
  return runNative(m, n, k, asNative(A), asNative(B), options);
}

/** An operand as the native kernels take it (floats, or one-byte codes and their table), or null. */
function packedOperand(x: LowpOperand, name: string, elements: number): NativeOperand | null {
  if (!isCoded(x)) {
    if (x.length !== elements) throw new InvalidArgumentError(`lowpGemm: ${name} holds ${x.length} values; expected ${elements}`);
  } else {
    checkCoded(x, name, elements);
  }
  return nativeOperand(x);
}

/**
 * An operand (or a plane of one: its length is not checked) as the native kernels take it, or
 * null for codes wider than a byte.
 */
export function nativeOperand(x: LowpOperand | DecodedOperand): NativeOperand | null {
  if (x instanceof Float32Array) return { data: x, table: null, format: null, scale: 1, significandBits: 24, quantumExponent: -149 };
  if ('values' in x) return { ...x, data: x.values, table: null, format: null };
  const { format, scale } = x;
  if (!(Number.isFinite(scale) && scale > 0)) throw new InvalidArgumentError(`lowpGemm: operand scale is ${scale}; expected a finite positive number`);
  if (!(x.codes instanceof Uint8Array) || format.storageBytes !== 1) return null;
  return {
    data: x.codes, table: decodeTable(format), scale, significandBits: format.mantissaBits + 1, quantumExponent: Math.log2(format.minSubnormal),
    format,
  };
}

/** Whether lowpGemm runs these options on the SGEMM (fp32 accumulation without chunks, with the addon). */
export function runsOnSgemm(options: LowpGemmOptions): boolean {
  if (alignedOf(options.accumulation)) return false;
  const r = resolveOptions(options);
  return nativeCore() !== null && !r.accumulation && r.chunk === 0 && !r.chunkEnds;
}

/**
 * lowpGemm with B a convolution's column matrix read from its images (src/kernels/columns_gemm.ts)
 * instead of stored: the same bits as lowpGemm on the stored matrix, where lowpGemm runs on the
 * SGEMM (fp32 accumulation without chunks, with the addon). Elsewhere null: the caller builds
 * the columns and calls lowpGemm.
 */
export function lowpGemmColumns(
  m: number, n: number, k: number, a: NativeOperand, x: NativeOperand, source: Omit<ColumnSource, 'x' | 'table' | 'format'>, options: LowpGemmOptions = {},
): Float32Array | null {
  checkDims(m, n, k);
  // An aligned accumulator runs on stored columns (lowpGemm with codes).
  if (alignedOf(options.accumulation)) return null;
  if (!runsOnSgemm(options)) {
    // The emulated-accumulation kernel reads the transposed columns (the weight gradient's) from
    // the images too: each strip of op(B) is runs along rows of the column matrix.
    if (!options.transB || !nativeCore()) return null;
    const g = source.geometry;
    if (n !== g.channels * g.kernelH * g.kernelW || k !== source.batch * g.outH * g.outW) {
      throw new InvalidArgumentError(`lowpGemmColumns: the GEMM ${m}x${n}x${k} with transB does not match the column matrix of ${source.batch} images (${n} x ${k} expected)`);
    }
    return runNative(m, n, k, a, x, options, { geometry: g, imageStride: source.imageStride });
  }
  const c = outputArray(options.out, m * n);
  const A = a.table ? { codes: a.data as Uint8Array, table: a.table, format: a.format } : (a.data as Float32Array);
  columnsGemm(m, n, k, A, { ...source, x: x.data, table: x.table, format: x.format }, c, {
    transA: options.transA, transB: options.transB, unfused: a.significandBits + x.significandBits > 24, threads: options.threads,
  });
  return finish(c, a.scale, x.scale, options.output, true);
}
