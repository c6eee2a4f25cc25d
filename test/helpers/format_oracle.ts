/**
 * An independent, slow reference for the codec, written without any of its code paths:
 * - values of codes come from parsing the code's bit string and building the number by repeated
 *   doubling and halving (no powers, no shifts of the value);
 * - rounding is a search in the sorted table of every finite value of the format, comparing the
 *   input with the exact midpoint of its two neighbours.
 * It reads only the record's fields (exponent bits, mantissa bits, bias, specials), and states the
 * special-value rules of each kind from their specifications (IEEE 754; OCP FP8 for `fn`; ONNX's
 * FNUZ types: NaN = 0x80, no -0, no Inf; OCP MX v1.0 FP6/FP4: every code finite, saturating, with a
 * NaN input taken to +max as PTX cvt.satfinite does).
 */
import type { Format } from '../../src/formats/index.js';

export interface Layout {
  exponentBits: number;
  mantissaBits: number;
  bias: number;
  specials: 'ieee' | 'fn' | 'fnuz' | 'finite';
}

function scaleByTwo(value: number, exponent: number): number {
  let v = value;
  for (let i = 0; i < exponent; i++) v *= 2;
  for (let i = 0; i > exponent; i--) v /= 2;
  return v;
}

/** The value a code stands for, from its bit string. Subnormals are kept. */
export function valueFromBits(code: number, layout: Layout): number {
  const width = 1 + layout.exponentBits + layout.mantissaBits;
  const text = code.toString(2).padStart(width, '0');
  const signBit = text[0];
  const exponentField = text.slice(1, 1 + layout.exponentBits);
  const mantissaField = text.slice(1 + layout.exponentBits);
  const exponentAllOnes = !exponentField.includes('0');
  let magnitude: number;
  if (exponentAllOnes && layout.specials === 'ieee') {
    magnitude = mantissaField.includes('1') ? NaN : Infinity;
  } else if (exponentAllOnes && layout.specials === 'fn' && !mantissaField.includes('0')) {
    magnitude = NaN;
  } else if (layout.specials === 'fnuz' && signBit === '1' && !text.slice(1).includes('1')) {
    // The bit pattern of "negative zero" is the one NaN.
    magnitude = NaN;
  } else {
    // fraction = 0.mantissaField in binary
    let fraction = 0;
    let weight = 0.5;
    for (const bit of mantissaField) {
      if (bit === '1') fraction += weight;
      weight /= 2;
    }
    const biased = parseInt(exponentField, 2);
    magnitude =
      biased === 0
        ? scaleByTwo(fraction, 1 - layout.bias)
        : scaleByTwo(1 + fraction, biased - layout.bias);
  }
  return signBit === '1' ? -magnitude : magnitude;
}

export interface ValueTable {
  /** Non-negative finite values, ascending; codes[i] is the positive code of values[i]. */
  values: Float64Array;
  codes: Uint32Array;
  /** The value one quantum above the largest finite value: the overflow neighbour. */
  beyondMax: number;
  signMask: number;
  infCode: number | null;
  maxCode: number;
  specials: Layout['specials'];
}

export function buildTable(format: Format): ValueTable {
  const signMask = 2 ** (format.exponentBits + format.mantissaBits);
  const entries: Array<[number, number]> = [];
  for (let code = 0; code < signMask; code++) {
    const v = valueFromBits(code, format);
    if (Number.isFinite(v)) entries.push([v, code]);
  }
  entries.sort((a, b) => a[0] - b[0]);
  const values = Float64Array.from(entries, (e) => e[0]);
  const codes = Uint32Array.from(entries, (e) => e[1]);
  const max = values[values.length - 1];
  const belowMax = values[values.length - 2];
  return {
    values,
    codes,
    beyondMax: max + (max - belowMax),
    signMask,
    infCode: format.specials === 'ieee' ? (2 ** format.exponentBits - 1) * 2 ** format.mantissaBits : null,
    maxCode: codes[codes.length - 1],
    specials: format.specials,
  };
}

/** Index of the largest table value <= a (a >= 0, finite). */
function floorIndex(values: Float64Array, a: number): number {
  let lo = 0;
  let hi = values.length - 1;
  if (a >= values[hi]) return hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (values[mid] <= a) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * The code the contract asks for under `nearest` or `toward-zero`, or 'nan' for any NaN code.
 */
export function oracleEncode(
  x: number,
  table: ValueTable,
  rounding: 'nearest' | 'toward-zero',
  saturate: boolean,
): number | 'nan' {
  const finiteOnly = table.specials === 'finite';
  if (Number.isNaN(x)) return finiteOnly ? table.maxCode : 'nan';
  const negative = x < 0 || Object.is(x, -0);
  const sign = negative ? table.signMask : 0;
  const a = Math.abs(x);
  const overflow = (finite: boolean): number | 'nan' => {
    if (saturate || finiteOnly || (finite && rounding === 'toward-zero')) return sign + table.maxCode;
    return table.infCode === null ? 'nan' : sign + table.infCode;
  };
  // FNUZ formats have no negative zero: a zero result is +0 whatever the input's sign.
  if (table.specials === 'fnuz' && negative) {
    const r = oracleEncode(-x, table, rounding, saturate);
    return r === 'nan' || r === 0 ? r : r + table.signMask;
  }
  if (a === Infinity) return overflow(false);
  const last = table.values.length - 1;
  const i = floorIndex(table.values, a);
  if (rounding === 'toward-zero') return a > table.values[last] ? overflow(true) : sign + table.codes[i];
  const lo = table.values[i];
  if (a === lo) return sign + table.codes[i];
  const hi = i === last ? table.beyondMax : table.values[i + 1];
  if (a > hi) return overflow(true);
  const mid = (lo + hi) / 2;
  let pickHigh: boolean;
  if (a < mid) pickHigh = false;
  else if (a > mid) pickHigh = true;
  else {
    // Tie: the neighbour whose code is even (last mantissa bit 0). beyondMax's code would be
    // maxCode + 1.
    const highCode = i === last ? table.codes[i] + 1 : table.codes[i + 1];
    pickHigh = highCode % 2 === 0;
  }
  if (!pickHigh) return sign + table.codes[i];
  return i === last ? overflow(true) : sign + table.codes[i + 1];
}

/** Float32 bit-pattern helpers for building test inputs. */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float32FromBits(bits: number): number {
  u32[0] = bits;
  return f32[0];
}

export function bitsFromFloat32(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** The float32 neighbours of a float32 value (towards +Inf and towards 0 on the same side). */
export function float32Neighbours(x: number): number[] {
  const b = bitsFromFloat32(x);
  const out = [float32FromBits((b + 1) >>> 0)];
  if ((b & 0x7fffffff) !== 0) out.push(float32FromBits((b - 1) >>> 0));
  return out;
}
