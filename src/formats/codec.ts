/**
 * The one codec for every format: float32 values <-> codes, and quantize (encode then decode).
 * This is the TypeScript reference that the native core must match bit for bit.
 *
 * Contract of `encode` for a float32 input x and a format F (exponent bits e, mantissa bits m):
 * - NaN -> F's quiet NaN with x's sign (`ieee`: S.1..1.10..0; `fn`: S.1..1.1..1); `fnuz`: its
 *   one NaN 1.0..0 whatever x's sign; `finite` (no NaN): +max, as PTX's cvt.satfinite.
 * - ±0 -> ±0. Every other result keeps x's sign too, including values that round to zero, except
 *   in `fnuz` formats, which have no -0: there a zero result is +0 (code 0).
 * - Finite x is rounded on the grid of F's quantum at x's binade, q = 2^(max(E, emin) - m) where
 *   E = floor(log2 |x|), extended past F's largest value:
 *   - `nearest`: to the nearer neighbour, ties to the one with even last mantissa bit;
 *   - `toward-zero`: to the neighbour of smaller magnitude;
 *   - `stochastic`: up with probability equal to the discarded fraction f = |x|/q - floor(|x|/q),
 *     resolved to 32 bits: up iff draw < floor(f * 2^32), where draw = drawU32(seedKey(seed),
 *     counterOffset + element index). Unbiased to within 2^-32 of a quantum.
 * - A rounded magnitude above F's max finite value overflows: to ±max when `saturate` is set or
 *   the rounding is `toward-zero` (IEEE 754 round-toward-zero never leaves the finite range) or
 *   the format is `finite`; otherwise to ±Inf (`ieee`) or NaN (`fn`, `fnuz`). So E5M2 sends
 *   |x| >= 61440 to Inf and E4M3FN sends |x| > 464 to NaN (464 itself ties to 448, the even
 *   neighbour).
 * - ±Inf -> ±max when `saturate` or the format is `finite`, else ±Inf (`ieee`) or NaN (`fn`, `fnuz`).
 * - With subnormals flushed, a result below the smallest normal becomes a signed zero.
 */
import { InvalidArgumentError } from '../errors.js';
import { drawU32, seedKey } from './random.js';
import { resolveFormat } from './registry.js';
import type { Format } from './spec.js';

export type Rounding = 'nearest' | 'stochastic' | 'toward-zero';
export const ROUNDINGS: readonly Rounding[] = ['nearest', 'stochastic', 'toward-zero'];

export interface CastOptions {
  /** Default `nearest`. */
  rounding?: Rounding;
  /** Overflow and ±Inf go to ±max finite. Default false. */
  saturate?: boolean;
  /** Seed of the stochastic rounding stream (non-negative safe integer). Default 0. */
  seed?: number;
  /** Counter of the first element in the stream, so that a long tensor cast in pieces draws the
   *  same numbers as one cast whole. Default 0. */
  counterOffset?: number;
}

/** Codes are stored one per element in the narrowest unsigned array that holds them. */
export type CodeArray = Uint8Array | Uint16Array | Uint32Array;

export type FormatLike = string | Format;

/** An empty code array of the right width for `format`. */
export function allocCodes(format: FormatLike, length: number): CodeArray {
  const f = resolveFormat(format);
  if (f.storageBytes === 1) return new Uint8Array(length);
  if (f.storageBytes === 2) return new Uint16Array(length);
  return new Uint32Array(length);
}

export function checkRounding(rounding: string): Rounding {
  if (!(ROUNDINGS as readonly string[]).includes(rounding)) {
    throw new InvalidArgumentError(
      `unknown rounding ${JSON.stringify(rounding)}; expected one of ${ROUNDINGS.join(', ')}`,
    );
  }
  return rounding as Rounding;
}

/** Powers of two 2^0 .. 2^32 (a table: `2 ** x` with a variable exponent is slow). */
const POW2 = Float64Array.from({ length: 33 }, (_, i) => 2 ** i);

const NEAREST = 0;
const STOCHASTIC = 1;
const TOWARD_ZERO = 2;
const ROUNDING_CODE: Record<Rounding, number> = { nearest: NEAREST, stochastic: STOCHASTIC, 'toward-zero': TOWARD_ZERO };

/** Everything the per-element loop needs, resolved once per call (also handed to the native core). */
export interface EncodeParams {
  readonly format: Format;
  readonly m: number;
  readonly emin: number;
  readonly bias: number;
  readonly twoM: number;
  readonly twoM1: number;
  readonly signMask: number;
  readonly maxBiasedExponent: number;
  readonly maxMantissaAtTop: number;
  readonly nanCode: number;
  /** Code for ±Inf inputs (before the sign). */
  readonly infResult: number;
  /** Code for a finite overflow (before the sign). */
  readonly finiteOverflow: number;
  readonly subnormals: boolean;
  /** A zero result keeps the input's sign (false for `fnuz`, which has no -0). */
  readonly signedZero: boolean;
  /** A NaN input's sign goes onto the NaN code (`ieee`, `fn`). */
  readonly signedNaN: boolean;
  readonly rounding: number;
  /** Stochastic stream key: seedKey(seed), or any other 32-bit key (GEMM keys per element). */
  readonly key: number;
  readonly counterOffset: number;
}

export function encodeParams(f: Format, options: CastOptions): EncodeParams {
  const rounding = checkRounding(options.rounding ?? 'nearest');
  const saturate = options.saturate ?? false;
  const counterOffset = options.counterOffset ?? 0;
  if (!Number.isInteger(counterOffset) || counterOffset < 0 || counterOffset >= 2 ** 32) {
    throw new InvalidArgumentError(`counterOffset is ${counterOffset}; expected an integer from 0 to 2^32 - 1`);
  }
  const overflowCode = f.infCode ?? f.nanCode;
  // Finite-only formats have no code for an overflow but the largest finite one.
  const saturating = saturate || f.specials === 'finite';
  return {
    format: f,
    m: f.mantissaBits,
    emin: f.emin,
    bias: f.bias,
    twoM: 2 ** f.mantissaBits,
    twoM1: 2 ** (f.mantissaBits + 1),
    signMask: f.signMask,
    maxBiasedExponent: f.maxBiasedExponent,
    maxMantissaAtTop: f.maxMantissaAtTop,
    nanCode: f.nanCode,
    infResult: saturating ? f.maxCode : overflowCode,
    finiteOverflow: saturating || rounding === 'toward-zero' ? f.maxCode : overflowCode,
    subnormals: f.subnormals,
    signedZero: f.signedZero,
    signedNaN: f.specials === 'ieee' || f.specials === 'fn',
    rounding: ROUNDING_CODE[rounding],
    key: seedKey(options.seed ?? 0),
    counterOffset,
  };
}

/**
 * A magnitude code with the input's sign: not on a zero of a format without -0, nor on the
 * `fnuz` NaN (the code with only the sign bit set, above every magnitude).
 */
function withSign(sign: number, code: number, p: EncodeParams): number {
  return (code === 0 && !p.signedZero) || code >= p.signMask ? code : sign + code;
}

/** Encode one float32, given by its bit pattern `u`, as element number `index`. */
export function encodeBits(u: number, p: EncodeParams, index: number): number {
  const sign = u >>> 31 ? p.signMask : 0;
  const ax = u & 0x7fffffff;
  if (ax > 0x7f800000) return p.signedNaN ? sign + p.nanCode : p.nanCode;
  return withSign(sign, encodeMagnitude(ax, p, index), p);
}

/** The magnitude code of a float32 magnitude (bits `ax`, not NaN), as element number `index`. */
function encodeMagnitude(ax: number, p: EncodeParams, index: number): number {
  if (ax === 0x7f800000) return p.infResult;
  if (ax === 0) return 0;
  const exp8 = ax >>> 23;
  // x = sig * 2^(E - 23); float32 subnormals keep E = -126 with sig < 2^23.
  const E = exp8 === 0 ? -126 : exp8 - 127;
  const sig = exp8 === 0 ? ax : (ax & 0x7fffff) | 0x800000;
  let targetE = E > p.emin ? E : p.emin;
  // Bits of sig below F's quantum at targetE.
  const s = 23 - p.m + targetE - E;
  let n = sig;
  if (s > 0) {
    // sig < 2^24, so from s = 24 on all of it is discarded.
    const rem = s >= 24 ? sig : sig & ((1 << s) - 1);
    n = s >= 24 ? 0 : sig >>> s;
    if (p.rounding === NEAREST) {
      // half = 2^(s-1) exceeds any rem from s = 25 on.
      if (s <= 24) {
        const half = 1 << (s - 1);
        if (rem > half || (rem === half && (n & 1) === 1)) n += 1;
      }
    } else if (p.rounding === STOCHASTIC) {
      // floor(f * 2^32) with f = rem / 2^s; exact in doubles; 0 from s = 56 on (rem < 2^24).
      const fraction32 = s <= 32 ? rem * POW2[32 - s] : s < 56 ? Math.floor(rem / POW2[s - 32]) : 0;
      if (drawU32(p.key, (p.counterOffset + index) >>> 0) < fraction32) n += 1;
    }
  }
  if (n === 0) return 0;
  if (n < p.twoM) {
    // Only possible at targetE = emin: a subnormal.
    return p.subnormals ? n : 0;
  }
  if (n === p.twoM1) {
    n = p.twoM;
    targetE += 1;
  }
  const biased = targetE + p.bias;
  const mantissa = n - p.twoM;
  if (biased > p.maxBiasedExponent || (biased === p.maxBiasedExponent && mantissa > p.maxMantissaAtTop)) {
    return p.finiteOverflow;
  }
  return biased * p.twoM + mantissa;
}

function asFloat32(values: Float32Array | readonly number[], what: string): Float32Array {
  if (values instanceof Float32Array) return values;
  if (Array.isArray(values)) return Float32Array.from(values);
  throw new InvalidArgumentError(`${what} takes a Float32Array or an array of numbers`);
}

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

function checkOut<T extends { length: number }>(out: T | undefined, length: number, what: string): void {
  if (out && out.length !== length) {
    throw new InvalidArgumentError(`${what}: output has ${out.length} elements; expected ${length}, one per input`);
  }
}

/** Encode float32 values (arrays of numbers are rounded to float32 first) into codes of `format`. */
export function encodeReference(
  values: Float32Array | readonly number[],
  format: FormatLike,
  options: CastOptions = {},
  out?: CodeArray,
): CodeArray {
  const f = resolveFormat(format);
  const src = asFloat32(values, 'encode');
  checkOut(out, src.length, 'encode');
  const codes = out ?? allocCodes(f, src.length);
  const p = encodeParams(f, options);
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) codes[i] = encodeBits(bits[i], p, i);
  return codes;
}

/** The value of one code, from its bit fields. */
export function decodeCode(code: number, format: FormatLike): number {
  const f = resolveFormat(format);
  const negative = code >= f.signMask;
  const magnitude = negative ? code - f.signMask : code;
  const twoM = 2 ** f.mantissaBits;
  const biased = Math.floor(magnitude / twoM);
  const mantissa = magnitude - biased * twoM;
  let value: number;
  if (f.specials === 'ieee' && biased === 2 ** f.exponentBits - 1) {
    value = mantissa === 0 ? Infinity : NaN;
  } else if (f.specials === 'fn' && magnitude === f.nanCode) {
    value = NaN;
  } else if (f.specials === 'fnuz' && code === f.nanCode) {
    value = NaN;
  } else if (biased === 0) {
    value = f.subnormals ? mantissa * 2 ** (f.emin - f.mantissaBits) : 0;
  } else {
    value = (twoM + mantissa) * 2 ** (biased - f.bias - f.mantissaBits);
  }
  return negative ? -value : value;
}

const decodeTables = new Map<Format, Float32Array>();

/**
 * Value of every code of a format of at most 16 bits, indexed by code. The table covers every
 * number its storage word can hold (256 or 65536 entries); words that are not codes of a
 * narrower format map to NaN, so a lookup can never leave the table.
 */
export function decodeTable(f: Format): Float32Array {
  if (f.bits > 16) throw new InvalidArgumentError(`${f.name} has ${f.bits}-bit codes; decode tables exist for formats of at most 16 bits`);
  let table = decodeTables.get(f);
  if (!table) {
    table = new Float32Array(2 ** (8 * f.storageBytes)).fill(NaN);
    for (let code = 0; code < 2 ** f.bits; code++) table[code] = decodeCode(code, f);
    decodeTables.set(f, table);
  }
  return table;
}

function checkCodes(codes: ArrayLike<number>, f: Format): void {
  const limit = 2 ** f.bits;
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (!(Number.isInteger(c) && c >= 0 && c < limit)) {
      throw new InvalidArgumentError(
        `code ${c} at index ${i} is not a ${f.name} code; expected an integer from 0 to ${limit - 1}`,
      );
    }
  }
}

/** Decode codes of `format` to float32 values. */
export function decodeReference(codes: CodeArray | readonly number[], format: FormatLike, out?: Float32Array): Float32Array {
  const f = resolveFormat(format);
  checkOut(out, codes.length, 'decode');
  const values = out ?? new Float32Array(codes.length);
  const arrayBits = ArrayBuffer.isView(codes) ? (codes as CodeArray).BYTES_PER_ELEMENT * 8 : Infinity;
  if (arrayBits > f.bits) checkCodes(codes, f);
  if (f.bits > 16) {
    const outBits = bitsOf(values);
    for (let i = 0; i < codes.length; i++) outBits[i] = codes[i];
    return values;
  }
  const table = decodeTable(f);
  for (let i = 0; i < codes.length; i++) values[i] = table[codes[i]];
  return values;
}

/** Round values to `format` and back to float32: encode then decode, without the code array. */
export function quantizeReference(
  values: Float32Array | readonly number[],
  format: FormatLike,
  options: CastOptions = {},
  out?: Float32Array,
): Float32Array {
  const f = resolveFormat(format);
  const src = asFloat32(values, 'quantize');
  checkOut(out, src.length, 'quantize');
  const result = out ?? new Float32Array(src.length);
  const p = encodeParams(f, options);
  const bits = bitsOf(src);
  if (f.bits > 16) {
    const outBits = bitsOf(result);
    for (let i = 0; i < bits.length; i++) outBits[i] = encodeBits(bits[i], p, i);
  } else {
    const table = decodeTable(f);
    for (let i = 0; i < bits.length; i++) result[i] = table[encodeBits(bits[i], p, i)];
  }
  return result;
}

/** Encode a single number (rounded to float32 first) as element `index` of a stream. */
export function encodeValue(x: number, format: FormatLike, options: CastOptions = {}, index = 0): number {
  const f = resolveFormat(format);
  const bits = bitsOf(Float32Array.of(x));
  return encodeBits(bits[0], encodeParams(f, options), index);
}
