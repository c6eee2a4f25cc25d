/**
 * Block-scaled quantization of a GEMM operand: the matrix is cut into blocks, each with its own
 * scale, along the GEMM's sum axis K. One rule covers every granularity of a recipe's `scaling`:
 * - `mx` (OCP Microscaling v1.0): blocks of 1 x 32 along K, an E8M0 scale;
 * - `tile`: 1 x B along K (activations, errors) or B x B (weights), B = 128 by default;
 * - `row` / `channel`: 1 x K, one scale per row of the operand's GEMM view;
 * - `tensor`: one block (R x K) for the whole matrix.
 *
 * CONTRACT (the native kernel returns these bits).
 * The operand is an R x K matrix V (R = m for A, n for B, in the GEMM view: A is m x K, B is
 * K x n and is seen as its transpose n x K), read from `values` at V[r][k] = values[r * K + k]
 * (`layout: 'rk'`) or values[k * R + r] (`layout: 'kr'`). Blocks are blockRows x blockK; the last
 * block row and column are shorter where blockRows or blockK does not divide R or K (never
 * padded: the missing elements do not exist, so they neither enter amax nor the sum).
 * For each block: amax = the largest |v| over its finite elements (NaN and Inf are left out and
 * counted), then the scale s (a divisor: codes hold fl32(v * s), the value is decode(code) / s):
 * - `e8m0` (MX): X = 2^e with e = floor(log2 amax) - emax(element format), clamped to E8M0's
 *   [-127, 127], and e = -127 for an all-zero block; s = 2^-e (exact in float32), and the E8M0
 *   code is e + 127. OCP sets X to NaN for a block holding a NaN; here the scale stays finite and
 *   the element format carries the NaN (as its NaN code, or +max for FP6/FP4, which have none).
 * - `pow2`: s = 2^t, t the largest integer with amax * 2^(t + margin) <= maxFinite (exact integer
 *   arithmetic on the float32 fields); s = 1 for an all-zero block.
 * - `fp32`: s = fl32(maxFinite / (amax * 2^margin)) in double arithmetic, then to float32; s = 1
 *   for an all-zero block.
 * `pow2` and `fp32` scales are clamped to [2^-100, 2^100], as per-tensor scales are.
 * Elements: code = encode(fl32(v * s)) with the element format's codec, saturating when asked
 * (MX always saturates), rounding nearest or stochastic with element counter k * R + r.
 * Counts: NaN/Inf inputs, nonzero inputs (NaN excluded) and nonzero inputs whose code has no
 * magnitude bits (underflow).
 * Storage: codes K x R (k-major: the run of K-block b is one contiguous slab for the GEMM), and
 * scales [ceil(K / blockK)] x [ceil(R / blockRows)] (k-block major).
 */
import { InvalidArgumentError } from '../errors.js';
import {
  E8M0,
  decodeTable,
  encodeBits,
  encodeParams,
  floorLog2,
  resolveFormat,
  type Format,
  type FormatLike,
  type Rounding,
} from '../formats/index.js';
import { nativeCore } from './native.js';
import { kernelThreads } from './threads.js';

export type ScaleKind = 'e8m0' | 'pow2' | 'fp32';
export const SCALE_KINDS: readonly ScaleKind[] = ['e8m0', 'pow2', 'fp32'];

/** How one operand is cut and scaled. */
export interface BlockSpec {
  format: FormatLike;
  /** Block extent along R (1 for 1 x B blocks, B for B x B tiles, R or more for one block row). */
  blockRows: number;
  /** Block length along K (K or more: one block along K). */
  blockK: number;
  scale: ScaleKind;
  /** pow2 / fp32: amax lands 2^margin below the format's max. Default 0. */
  margin?: number;
  rounding?: Extract<Rounding, 'nearest' | 'stochastic'>;
  saturate?: boolean;
  seed?: number;
  /** Stochastic counter of element 0 (a long stream cast in pieces draws as if whole). Default 0. */
  counterOffset?: number;
}

/** A block-scaled operand in its GEMM view (R x K), stored k-major. */
export interface BlockQTensor {
  readonly codes: Uint8Array;
  readonly format: Format;
  readonly rows: number;
  readonly k: number;
  readonly blockRows: number;
  readonly blockK: number;
  /** Divisors, [ceil(k / blockK)] x [ceil(rows / blockRows)]. */
  readonly scales: Float32Array;
  readonly scaleKind: ScaleKind;
  /** NaN and Inf inputs met (left out of amax). */
  readonly nonFinite: number;
  /** Nonzero inputs, and those whose code has no magnitude bits (underflow to zero). */
  readonly nonzero: number;
  readonly underflow: number;
}

const MIN_SCALE_EXPONENT = -100;
const MAX_SCALE_EXPONENT = 100;

interface Resolved {
  format: Format;
  blockRows: number;
  blockK: number;
  scale: ScaleKind;
  margin: number;
  saturate: boolean;
  rounding: 'nearest' | 'stochastic';
  seed: number;
  counterOffset: number;
}

function resolveSpec(spec: BlockSpec, rows: number, k: number): Resolved {
  const format = resolveFormat(spec.format);
  if (format.storageBytes !== 1) {
    throw new InvalidArgumentError(`block scaling: ${format.name} has ${format.bits}-bit codes; block-scaled operands take formats of at most 8 bits`);
  }
  for (const [name, v] of [['blockRows', spec.blockRows], ['blockK', spec.blockK]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`block scaling: ${name} is ${v}; expected a positive integer`);
  }
  if (!SCALE_KINDS.includes(spec.scale)) {
    throw new InvalidArgumentError(`block scaling: scale ${JSON.stringify(spec.scale)}; expected one of ${SCALE_KINDS.join(', ')}`);
  }
  const margin = spec.margin ?? 0;
  if (!Number.isInteger(margin) || margin < 0 || margin > 30) throw new InvalidArgumentError(`block scaling: margin is ${margin}; expected an integer from 0 to 30`);
  const rounding = spec.rounding ?? 'nearest';
  if (rounding !== 'nearest' && rounding !== 'stochastic') throw new InvalidArgumentError(`block scaling: rounding ${JSON.stringify(rounding)}; expected nearest or stochastic`);
  return {
    format,
    blockRows: Math.min(spec.blockRows, Math.max(rows, 1)),
    blockK: Math.min(spec.blockK, Math.max(k, 1)),
    scale: spec.scale,
    margin,
    saturate: spec.scale === 'e8m0' ? true : spec.saturate ?? false,
    rounding,
    seed: spec.seed ?? 0,
    counterOffset: spec.counterOffset ?? 0,
  };
}

/** The divisor of a block from its finite amax (the contract above). */
export function blockScale(amax: number, format: Format, kind: ScaleKind, margin: number): number {
  if (kind === 'e8m0') {
    const e = amax > 0 ? Math.min(E8M0.maxExponent, Math.max(E8M0.minExponent, floorLog2(amax) - format.emax)) : E8M0.minExponent;
    return Math.fround(2 ** -e);
  }
  if (!(amax > 0)) return 1;
  if (kind === 'pow2') {
    // amax = ma 2^ea, maxFinite = mf 2^ef (ma, mf in [1, 2)): amax 2^(t+margin) <= maxFinite
    // holds for t <= ef - ea - margin, one less when ma > mf.
    const ea = floorLog2(amax);
    const ef = floorLog2(format.maxFinite);
    const t = ef - ea - margin - (amax / 2 ** ea > format.maxFinite / 2 ** ef ? 1 : 0);
    return 2 ** Math.min(MAX_SCALE_EXPONENT, Math.max(MIN_SCALE_EXPONENT, t));
  }
  const s = Math.fround(format.maxFinite / (amax * 2 ** margin));
  return Math.min(2 ** MAX_SCALE_EXPONENT, Math.max(2 ** MIN_SCALE_EXPONENT, s));
}

function checkInput(values: Float32Array, rows: number, k: number): void {
  for (const [name, v] of [['rows', rows], ['k', k]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`block scaling: ${name} is ${v}; expected a non-negative integer`);
  }
  if (!(values instanceof Float32Array) || values.length !== rows * k) {
    throw new InvalidArgumentError(`block scaling: ${values?.length} values for a ${rows} x ${k} matrix; expected ${rows * k}`);
  }
}

function scaleGrid(r: Resolved, rows: number, k: number): { rowBlocks: number; kBlocks: number } {
  return { rowBlocks: Math.ceil(rows / r.blockRows), kBlocks: Math.ceil(k / r.blockK) };
}

/** The contract as a naive loop. */
export function blockQuantizeReference(values: Float32Array, rows: number, k: number, layout: 'rk' | 'kr', spec: BlockSpec): BlockQTensor {
  checkInput(values, rows, k);
  const r = resolveSpec(spec, rows, k);
  const { rowBlocks, kBlocks } = scaleGrid(r, rows, k);
  const at = (row: number, t: number) => (layout === 'rk' ? values[row * k + t] : values[t * rows + row]);
  const codes = new Uint8Array(rows * k);
  const scales = new Float32Array(rowBlocks * kBlocks);
  const p = encodeParams(r.format, { rounding: r.rounding, saturate: r.saturate, seed: r.seed, counterOffset: r.counterOffset });
  const bits = new Uint32Array(1);
  const scaled = new Float32Array(bits.buffer);
  let nonFinite = 0;
  let nonzero = 0;
  let underflow = 0;
  const magnitude = r.format.signMask - 1;
  for (let kb = 0; kb < kBlocks; kb++) {
    const k0 = kb * r.blockK;
    const k1 = Math.min(k, k0 + r.blockK);
    for (let rb = 0; rb < rowBlocks; rb++) {
      const r0 = rb * r.blockRows;
      const r1 = Math.min(rows, r0 + r.blockRows);
      let amax = 0;
      for (let t = k0; t < k1; t++) {
        for (let row = r0; row < r1; row++) {
          const a = Math.abs(at(row, t));
          if (a === Infinity || Number.isNaN(a)) nonFinite++;
          else if (a > amax) amax = a;
        }
      }
      const s = blockScale(amax, r.format, r.scale, r.margin);
      scales[kb * rowBlocks + rb] = s;
      for (let t = k0; t < k1; t++) {
        for (let row = r0; row < r1; row++) {
          const v = at(row, t);
          scaled[0] = v * s;
          const code = encodeBits(bits[0], p, t * rows + row);
          codes[t * rows + row] = code;
          if (v !== 0 && !Number.isNaN(v)) {
            nonzero++;
            if ((code & magnitude) === 0) underflow++;
          }
        }
      }
    }
  }
  return { codes, format: r.format, rows, k, blockRows: r.blockRows, blockK: r.blockK, scales, scaleKind: r.scale, nonFinite, nonzero, underflow };
}

/** blockQuantizeReference's bits, natively where the addon is loaded. */
export function blockQuantize(values: Float32Array, rows: number, k: number, layout: 'rk' | 'kr', spec: BlockSpec, threads?: number): BlockQTensor {
  const native = nativeCore();
  if (!native) return blockQuantizeReference(values, rows, k, layout, spec);
  checkInput(values, rows, k);
  const r = resolveSpec(spec, rows, k);
  const { rowBlocks, kBlocks } = scaleGrid(r, rows, k);
  const codes = new Uint8Array(rows * k);
  const scales = new Float32Array(rowBlocks * kBlocks);
  const [nonFinite, nonzero, underflow] = native.blockQuantize(values, codes, scales, {
    rows, k, kMajorInput: layout === 'kr', blockRows: r.blockRows, blockK: r.blockK,
    scaleKind: SCALE_KINDS.indexOf(r.scale), margin: r.margin, maxFinite: r.format.maxFinite, emax: r.format.emax,
    params: encodeParams(r.format, { rounding: r.rounding, saturate: r.saturate, seed: r.seed, counterOffset: r.counterOffset }),
    magnitudeMask: r.format.signMask - 1,
    threads: threads ?? kernelThreads(),
  });
  return { codes, format: r.format, rows, k, blockRows: r.blockRows, blockK: r.blockK, scales, scaleKind: r.scale, nonFinite, nonzero, underflow };
}

/** The scale (divisor) of element (row, t). */
export function blockScaleAt(q: BlockQTensor, row: number, t: number): number {
  const rowBlocks = Math.ceil(q.rows / q.blockRows);
  return q.scales[Math.floor(t / q.blockK) * rowBlocks + Math.floor(row / q.blockRows)];
}

/** The values of a block-scaled operand, decode(code) / scale, k-major (K x R) as its codes. */
export function dequantizeBlocks(q: BlockQTensor): Float32Array {
  const table = decodeTable(q.format);
  const out = new Float32Array(q.rows * q.k);
  const rowBlocks = Math.ceil(q.rows / q.blockRows);
  for (let t = 0; t < q.k; t++) {
    const base = Math.floor(t / q.blockK) * rowBlocks;
    for (let row = 0; row < q.rows; row++) out[t * q.rows + row] = table[q.codes[t * q.rows + row]] / q.scales[base + Math.floor(row / q.blockRows)];
  }
  return out;
}
