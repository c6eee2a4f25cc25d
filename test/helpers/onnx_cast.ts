/**
 * ONNX Runtime as an independent oracle for casts (see src/bench/onnx_cast_model.ts).
 */
import ort from 'onnxruntime-node';
import { castRoundTripModel } from '../../src/bench/onnx_cast_model.js';

export { ONNX_TYPE, castRoundTripModel } from '../../src/bench/onnx_cast_model.js';

/** Run the round-trip cast in ONNX Runtime (CPU). */
export async function onnxCastRoundTrip(
  values: Float32Array,
  to: number,
  saturate: boolean | null,
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(castRoundTripModel(to, saturate, values.length));
  try {
    const result = await session.run({ x: new ort.Tensor('float32', values, [values.length]) });
    return result.y.data as Float32Array;
  } finally {
    await session.release();
  }
}
