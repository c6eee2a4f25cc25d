/** Number formats as data, and the one codec that serves them all. */
export { defineFormat, layoutOf } from './spec.js';
export type { Format, FormatSpec, SpecialValues } from './spec.js';
export { PRESETS, formatNames, resolveFormat } from './registry.js';
export {
  ROUNDINGS,
  allocCodes,
  checkRounding,
  decode,
  decodeCode,
  decodeTable,
  encode,
  encodeBits,
  encodeParams,
  encodeValue,
  quantize,
} from './codec.js';
export type { CastOptions, CodeArray, EncodeParams, FormatLike, Rounding } from './codec.js';
export { checkSeed, drawU32, mix32, seedKey } from './random.js';
