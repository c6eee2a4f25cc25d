/**
 * The per-tensor work around quantizing a GEMM operand: amax, then the scaled encode with its
 * overflow and underflow counts (one native pass; the reference does it in three steps). Native
 * and reference give the same numbers (the scaled values are fl32(x * scale), scale as float32).
 */
import { encodeReference, encodeParams, makeQTensor, resolveFormat, type CastOptions, type CodeArray, type FormatLike, type QTensor } from '../formats/index.js';
import { freshCodes } from './buffer_pool.js';
import { decode } from './codec.js';
import { InvalidArgumentError } from '../errors.js';
import { nativeCore } from './native.js';
import { kernelThreads } from './threads.js';

const NATIVE_MIN = 4096;

/** max |x|, or NaN when x holds a NaN or an Inf. */
export function absMaxReference(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]);
    if (!(a <= 3.4028234663852886e38)) return NaN;
    if (a > m) m = a;
  }
  return m;
}

export function absMax(x: Float32Array): number {
  const native = nativeCore();
  return native && x.length >= NATIVE_MIN ? native.absMax(x, { threads: kernelThreads() }) : absMaxReference(x);
}

/** out = fl32(x * scale) (scale taken as float32); returns how many |out| exceed maxFinite or are NaN. */
export function scaleCountOverflowReference(x: Float32Array, scale: number, out: Float32Array, maxFinite: number): number {
  const s = Math.fround(scale);
  let count = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Math.fround(x[i] * s);
    out[i] = v;
    if (!(Math.abs(v) <= maxFinite)) count++;
  }
  return count;
}

export function scaleCountOverflow(x: Float32Array, scale: number, out: Float32Array, maxFinite: number): number {
  if (out.length !== x.length) throw new InvalidArgumentError(`scaleCountOverflow: ${x.length} values but ${out.length} outputs`);
  const native = nativeCore();
  return native && x.length >= NATIVE_MIN
    ? native.scaleCountOverflow(x, out, { scale: Math.fround(scale), maxFinite: Math.fround(maxFinite), threads: kernelThreads() })
    : scaleCountOverflowReference(x, scale, out, maxFinite);
}

/**
 * values[i] / scale, in place, rounded to float32 as the division rounds. A power-of-two scale
 * (reciprocal a normal float32) is applied natively as a multiplication by its exact reciprocal:
 * the same real number, so the same rounding.
 */
export function divideByScale(values: Float32Array, scale: number): Float32Array {
  if (scale === 1) return values;
  const exponent = Math.log2(scale);
  if (Number.isInteger(exponent) && Math.abs(exponent) < 126) scaleCountOverflow(values, 1 / scale, values, Infinity);
  else for (let i = 0; i < values.length; i++) values[i] /= scale;
  return values;
}

/** The real values of a QTensor, decode(code) / scale (into `out` when given). */
export function dequantize(q: QTensor, out?: Float32Array): Float32Array {
  return divideByScale(decode(q.codes, q.format, out), q.scale);
}

export interface UnderflowCount {
  /** Nonzero values of x. */
  nonzero: number;
  /** Of those, how many got a code whose magnitude bits are zero. */
  underflow: number;
}

export function countUnderflowReference(x: Float32Array, codes: CodeArray, magnitudeMask: number): UnderflowCount {
  let nonzero = 0;
  let underflow = 0;
  for (let i = 0; i < x.length; i++) {
    if (x[i] === 0) continue;
    nonzero++;
    if (((codes[i] & magnitudeMask) >>> 0) === 0) underflow++;
  }
  return { nonzero, underflow };
}

/** x quantized with a scale, and what the quantization lost. */
export interface ScaledEncoding extends UnderflowCount {
  coded: QTensor;
  /** Scaled values beyond the format's max finite (or NaN). */
  overflow: number;
}

/**
 * codes of fl32(x * fl32(scale)) as a QTensor of that scale, with the overflow and underflow
 * counts: the three steps above in one.
 */
export function encodeScaledReference(x: Float32Array, scale: number, format: FormatLike, options: CastOptions = {}): ScaledEncoding {
  const f = resolveFormat(format);
  const s = Math.fround(scale);
  const scaled = new Float32Array(x.length);
  const overflow = scaleCountOverflowReference(x, s, scaled, f.maxFinite);
  const codes = encodeReference(scaled, f, options);
  return { coded: makeQTensor(codes, f, s), overflow, ...countUnderflowReference(x, codes, f.signMask - 1) };
}

/** `out`: where the codes go (the format's width, x's length; written whole), a fresh array when absent. */
export function encodeScaled(x: Float32Array, scale: number, format: FormatLike, options: CastOptions = {}, out?: CodeArray): ScaledEncoding {
  const native = nativeCore();
  if (out && out.length !== x.length) throw new InvalidArgumentError(`encodeScaled: out holds ${out.length} codes for ${x.length} values`);
  if (!native || x.length < NATIVE_MIN) {
    const r = encodeScaledReference(x, scale, format, options);
    if (!out) return r;
    out.set(r.coded.codes);
    return { ...r, coded: makeQTensor(out, r.coded.format, r.coded.scale) };
  }
  const f = resolveFormat(format);
  const s = Math.fround(scale);
  const codes = out ?? freshCodes(f, x.length);
  const [overflow, nonzero, underflow] = native.encodeScaled(x, codes, {
    scale: s, params: encodeParams(f, options), maxFinite: Math.fround(f.maxFinite), magnitudeMask: (f.signMask - 1) >>> 0, threads: kernelThreads(),
  });
  return { coded: makeQTensor(codes, f, s), overflow, nonzero, underflow };
}
