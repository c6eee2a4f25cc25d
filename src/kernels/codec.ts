/**
 * The format codec on the fast path: the native core when it is loaded, else the TypeScript
 * reference in src/formats/codec.ts. Both follow the contract written there, bit for bit
 * (tested over every format, rounding mode and thread count).
 */
import { InvalidArgumentError } from '../errors.js';
import {
  decodeReference,
  decodeTable,
  encodeReference,
  encodeParams,
  quantizeReference,
  resolveFormat,
  type CastOptions,
  type CodeArray,
  type Format,
  type FormatLike,
} from '../formats/index.js';
import { freshCodes } from './buffer_pool.js';
import { nativeCore } from './native.js';
import { resolveThreads } from './threads.js';

/** Below this many elements the call overhead of the addon outweighs its speed. */
const NATIVE_MIN = 256;

function tableOrNull(f: Format): Float32Array | null {
  return f.bits > 16 ? null : decodeTable(f);
}

function toFloat32(values: Float32Array | readonly number[]): Float32Array {
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

function checkLength(out: { length: number } | undefined, n: number, what: string): void {
  if (out && out.length !== n) {
    throw new InvalidArgumentError(`${what}: output has ${out.length} elements; expected ${n}, one per input`);
  }
}

export interface FastCastOptions extends CastOptions {
  /** Threads for this call (native path). */
  threads?: number;
}

/** Encode float32 values into codes of `format` (see src/formats/codec.ts for the contract). */
export function encode(
  values: Float32Array | readonly number[],
  format: FormatLike,
  options: FastCastOptions = {},
  out?: CodeArray,
): CodeArray {
  const native = nativeCore();
  const src = toFloat32(values);
  if (!native || src.length < NATIVE_MIN) return encodeReference(src, format, options, out);
  const f = resolveFormat(format);
  checkLength(out, src.length, 'encode');
  const codes = out ?? freshCodes(f, src.length);
  if (codes.BYTES_PER_ELEMENT !== f.storageBytes) {
    throw new InvalidArgumentError(`encode: ${f.name} codes need ${f.storageBytes}-byte elements; the output has ${codes.BYTES_PER_ELEMENT}`);
  }
  native.encode(src, codes, { params: encodeParams(f, options), threads: resolveThreads(options.threads) });
  return codes;
}

/** Round values to `format` and back to float32. */
export function quantize(
  values: Float32Array | readonly number[],
  format: FormatLike,
  options: FastCastOptions = {},
  out?: Float32Array,
): Float32Array {
  const native = nativeCore();
  const src = toFloat32(values);
  if (!native || src.length < NATIVE_MIN) return quantizeReference(src, format, options, out);
  const f = resolveFormat(format);
  checkLength(out, src.length, 'quantize');
  const result = out ?? new Float32Array(src.length);
  native.quantize(src, result, { params: encodeParams(f, options), table: tableOrNull(f), threads: resolveThreads(options.threads) });
  return result;
}

/** Decode codes of `format` to float32 values. The native path serves code arrays whose
 *  element width equals the format's width (every word is a code); others take the reference
 *  path, which also checks each code. */
export function decode(
  codes: CodeArray | readonly number[],
  format: FormatLike,
  out?: Float32Array,
  threads?: number,
): Float32Array {
  const native = nativeCore();
  const f = resolveFormat(format);
  const wordIsCode = ArrayBuffer.isView(codes) && (codes as CodeArray).BYTES_PER_ELEMENT * 8 === f.bits;
  if (!native || !wordIsCode || codes.length < NATIVE_MIN) return decodeReference(codes, f, out);
  checkLength(out, codes.length, 'decode');
  const result = out ?? new Float32Array(codes.length);
  native.decode(codes as CodeArray, result, { table: tableOrNull(f), threads: resolveThreads(threads) });
  return result;
}
