/**
 * E8M0, the scale format of OCP Microscaling (MX v1.0): 8 bits, unsigned, exponent only, bias 127.
 * Code c (0..254) stands for 2^(c - 127); 0xFF is NaN. There is no sign, no zero and no Inf.
 * Values run from 2^-127 (a float32 subnormal, still exact) to 2^127.
 *
 * It is not an element format (the one codec's records have a sign and a mantissa), so it has
 * this small codec of its own. Encoding a float32 x:
 * - NaN, zero and negative x have no code: NaN (0xFF);
 * - +Inf: 0xFF, or 2^127 (0xFE) when saturating;
 * - finite x > 0: its binade's power of two 2^E (E = floor(log2 x)) or the next one, by the
 *   rounding: `toward-zero` takes 2^E; `nearest` takes 2^(E+1) when x > 1.5 * 2^E, and on the tie
 *   x = 1.5 * 2^E the one with the even code; then clamped to [2^-127, 2^127] (E8M0 has no zero:
 *   below its range it keeps its smallest value).
 */
import { InvalidArgumentError } from '../errors.js';

export interface ScaleFormat {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly bits: 8;
  readonly bias: 127;
  readonly nanCode: 0xff;
  readonly minExponent: -127;
  readonly maxExponent: 127;
  readonly description: string;
}

/** float8_e8m0fnu (ml_dtypes' name): unsigned, finite or NaN, exponent only. */
export const E8M0: ScaleFormat = Object.freeze({
  name: 'float8_e8m0fnu',
  aliases: Object.freeze(['e8m0', 'ue8m0']),
  bits: 8,
  bias: 127,
  nanCode: 0xff,
  minExponent: -127,
  maxExponent: 127,
  description: 'OCP MX E8M0 block scale: unsigned power of two 2^-127 .. 2^127, 0xFF = NaN',
});

/** Whether a name (any case) names E8M0. */
export function isE8M0Name(name: string): boolean {
  const key = name.trim().toLowerCase();
  return key === E8M0.name || E8M0.aliases.includes(key);
}

/** floor(log2 |x|) of a finite nonzero float32, exactly (float32 subnormals included). */
export function floorLog2(x: number): number {
  const bits = new Uint32Array(Float32Array.of(x).buffer)[0] & 0x7fffffff;
  const exponentField = bits >>> 23;
  if (exponentField !== 0) return exponentField - 127;
  return 31 - Math.clz32(bits) - 149;
}

/** The E8M0 code of 2^e for an integer exponent, clamped to [-127, 127]. */
export function e8m0FromExponent(e: number): number {
  return Math.min(127, Math.max(-127, e)) + 127;
}

/** The value of an E8M0 code: 2^(code - 127), NaN for 0xFF. */
export function decodeE8M0(code: number): number {
  if (!(Number.isInteger(code) && code >= 0 && code <= 0xff)) {
    throw new InvalidArgumentError(`${code} is not an E8M0 code; expected an integer from 0 to 255`);
  }
  return code === 0xff ? NaN : 2 ** (code - 127);
}

/** Encode one number (taken as float32) to E8M0, as the top of this file says. */
export function encodeE8M0(value: number, options: { rounding?: 'nearest' | 'toward-zero'; saturate?: boolean } = {}): number {
  const x = Math.fround(value);
  if (!(x > 0)) return E8M0.nanCode;
  if (x === Infinity) return options.saturate ? e8m0FromExponent(127) : E8M0.nanCode;
  const e = floorLog2(x);
  if ((options.rounding ?? 'nearest') === 'toward-zero') return e8m0FromExponent(e);
  // x / 2^e lies in [1, 2): above 1.5 goes up, at 1.5 to the even code.
  const ratio = x / 2 ** e;
  const up = ratio > 1.5 || (ratio === 1.5 && ((e + 127) & 1) === 1);
  return e8m0FromExponent(up ? e + 1 : e);
}
