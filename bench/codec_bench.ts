/**
 * Throughput of the format codec: encode, decode and quantize of 1M float32 elements, in
 * elements per second, for the formats the FP8 system uses. Peers from the same run: numpy's
 * float16 cast, and ONNX Runtime's saturating FP8 Cast round trip.
 */
import { decode, encode, quantize, resolveFormat } from '../src/formats/index.js';
import { castRoundTripModel, ONNX_TYPE } from '../test/helpers/onnx_cast.js';
import { loadOnnxRuntime, numpyFloat16RoundTrip } from './peers.js';
import { timeIt, timeItAsync } from './timing.js';

export interface CodecBenchRow {
  bench: 'codec';
  op: 'encode' | 'decode' | 'quantize';
  format: string;
  rounding: string;
  n: number;
  path: 'typescript';
  elements_per_s: number;
  peer?: string;
  peer_elements_per_s?: number;
  ratio?: number;
}

function testData(n: number): Float32Array {
  let s = 12345;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = ((s / 2 ** 32) * 2 - 1) * 300;
  }
  return x;
}

export async function codecBench(n = 1 << 20): Promise<CodecBenchRow[]> {
  const x = testData(n);
  const rows: CodecBenchRow[] = [];
  const ort = await loadOnnxRuntime();
  const numpy = numpyFloat16RoundTrip(n);
  for (const name of ['e5m2', 'e4m3', 'e6m9', 'fp16']) {
    const format = resolveFormat(name);
    for (const rounding of ['nearest', 'stochastic'] as const) {
      const codes = encode(x, format, { rounding });
      const out = new Float32Array(n);
      const enc = timeIt(() => void encode(x, format, { rounding, seed: 1 }, codes));
      const q = timeIt(() => void quantize(x, format, { rounding, seed: 1 }, out));
      const base = { bench: 'codec' as const, format: format.name, rounding, n, path: 'typescript' as const };
      const encodeRow: CodecBenchRow = { ...base, op: 'encode', elements_per_s: n / enc.seconds };
      const quantizeRow: CodecBenchRow = { ...base, op: 'quantize', elements_per_s: n / q.seconds };
      if (rounding === 'nearest' && name === 'fp16' && numpy) {
        Object.assign(encodeRow, { peer: 'numpy astype(float16)', peer_elements_per_s: numpy.encode, ratio: encodeRow.elements_per_s / numpy.encode });
        Object.assign(quantizeRow, { peer: 'numpy astype(float16).astype(float32)', peer_elements_per_s: numpy.quantize, ratio: quantizeRow.elements_per_s / numpy.quantize });
      }
      const onnxType = name === 'e5m2' ? ONNX_TYPE.float8e5m2 : name === 'e4m3' ? ONNX_TYPE.float8e4m3fn : null;
      if (rounding === 'nearest' && ort && onnxType !== null) {
        const session = await ort.InferenceSession.create(castRoundTripModel(onnxType, true, n));
        const feeds = { x: new ort.Tensor('float32', x, [n]) };
        const t = await timeItAsync(async () => void (await session.run(feeds)));
        await session.release();
        const peer = n / t.seconds;
        Object.assign(quantizeRow, { peer: 'onnxruntime Cast saturating round trip', peer_elements_per_s: peer, ratio: quantizeRow.elements_per_s / peer });
      }
      rows.push(encodeRow, quantizeRow);
    }
    const allCodes = encode(x, format);
    const decOut = new Float32Array(n);
    const d = timeIt(() => void decode(allCodes, format, decOut));
    rows.push({ bench: 'codec', op: 'decode', format: format.name, rounding: '-', n, path: 'typescript', elements_per_s: n / d.seconds });
  }
  return rows;
}
