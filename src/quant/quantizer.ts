/** Quantize one GEMM operand to codes of its format with a scale, counting what was lost. */
import type { Format, Rounding } from '../formats/index.js';
import { encode, type CodedMatrix } from '../kernels/index.js';
import type { OperandStats } from './telemetry.js';

export interface QuantizeSpec {
  format: Format;
  rounding: Rounding;
  saturate: boolean;
  seed: number;
}

/** codes of x * scale; real value = decode(code) / scale. */
export function quantizeOperand(x: Float32Array, scale: number, spec: QuantizeSpec, amax: number): { coded: CodedMatrix; stats: OperandStats } {
  const scaled = new Float32Array(x.length);
  const max = spec.format.maxFinite;
  let overflow = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] * scale;
    scaled[i] = v;
    if (!(Math.abs(v) <= max)) overflow++;
  }
  const codes = encode(scaled, spec.format, { rounding: spec.rounding, saturate: spec.saturate, seed: spec.seed });
  const magnitude = ~spec.format.signMask;
  let nonzero = 0;
  let underflow = 0;
  for (let i = 0; i < x.length; i++) {
    if (x[i] === 0) continue;
    nonzero++;
    if ((codes[i] & magnitude) === 0) underflow++;
  }
  return {
    coded: { codes, format: spec.format, scale },
    stats: { amax, scale, values: x.length, nonzero, underflow, overflow },
  };
}
