/** Number formats as data, and the one codec that serves them all. */
export { defineFormat, layoutOf } from './spec.js';
export type { Format, FormatSpec, SpecialValues } from './spec.js';
export { PRESETS, formatNames, resolveFormat } from './registry.js';
export {
  ROUNDINGS,
  allocCodes,
  checkRounding,
  decodeReference,
  decodeCode,
  decodeTable,
  encodeReference,
  encodeBits,
  encodeParams,
  encodeValue,
  quantizeReference,
} from './codec.js';
export type { CastOptions, CodeArray, EncodeParams, FormatLike, Rounding } from './codec.js';
export { makeQTensor } from './qtensor.js';
export type { QTensor } from './qtensor.js';
export { STREAM_ROLES, cellKey, checkSeed, drawU32, mix32, seedKey, streamKey, streamSeed } from './random.js';
export type { StreamRole } from './random.js';
export { E8M0, decodeE8M0, e8m0FromExponent, encodeE8M0, floorLog2, isE8M0Name } from './e8m0.js';
export type { ScaleFormat } from './e8m0.js';
