/**
 * QTensor: values stored as codes of a low-precision format plus a scale, the one form in which
 * quantized data travels (GEMM operands, saved activations, weight-gradient codes). The real
 * value of element i is decode(codes[i]) / scale; one byte per element for FP8 formats, two for
 * 16-bit ones, which is where the memory saving of low-precision training comes from.
 */
import { InvalidArgumentError } from '../errors.js';
import type { CodeArray } from './codec.js';
import { resolveFormat } from './registry.js';
import type { Format } from './spec.js';

export interface QTensor {
  readonly codes: CodeArray;
  readonly format: Format;
  /** Finite and positive; the codes hold the values times it. */
  readonly scale: number;
}

/** A QTensor of codes of `format` (a record, name or alias) with a checked scale. */
export function makeQTensor(codes: CodeArray, format: Format | string, scale = 1): QTensor {
  if (!(Number.isFinite(scale) && scale > 0)) throw new InvalidArgumentError(`QTensor: scale is ${scale}; expected a finite positive number`);
  const f = resolveFormat(format);
  if (!(codes instanceof (f.storageBytes === 1 ? Uint8Array : f.storageBytes === 2 ? Uint16Array : Uint32Array))) {
    throw new InvalidArgumentError(`QTensor: ${f.name} codes take ${f.storageBytes} byte(s) each; got a ${codes.constructor.name}`);
  }
  return { codes, format: f, scale };
}
