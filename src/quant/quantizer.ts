/** Quantize one GEMM operand to codes of its format with a scale, counting what was lost. */
import type { CodeArray, Format, QTensor, Rounding } from '../formats/index.js';
import { encodeScaled } from '../kernels/index.js';
import type { OperandStats } from './telemetry.js';

export interface QuantizeSpec {
  format: Format;
  rounding: Rounding;
  saturate: boolean;
  seed: number;
}

/**
 * codes of fl32(x * scale) (into `out` when given, else a fresh array); real value = decode(code) / scale. Overflow counts values whose scaled
 * magnitude exceeds the format's max finite (saturated, or Inf/NaN without saturation); underflow
 * counts nonzero values whose code is a zero.
 */
export function quantizeOperand(x: Float32Array, scale: number, spec: QuantizeSpec, amax: number, out?: CodeArray): { coded: QTensor; stats: OperandStats } {
  const { coded, overflow, nonzero, underflow } = encodeScaled(x, scale, spec.format, { rounding: spec.rounding, saturate: spec.saturate, seed: spec.seed }, out);
  return { coded, stats: { amax, scale: coded.scale, values: x.length, nonzero, underflow, overflow } };
}
