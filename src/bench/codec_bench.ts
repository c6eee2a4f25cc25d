/**
 * Throughput of the format codec: encode, quantize and decode of 1M float32 elements, in
 * elements per second, for the formats the FP8 system uses, on the native path (each thread
 * count) and the TypeScript reference; and `quantize_operand`, what quantizing one GEMM operand
 * costs in training (amax, then the scaled encode with overflow and underflow counts). Peers from the same run: numpy's float16 cast, and ONNX
 * Runtime's saturating FP8 Cast round trip (a dev dependency; left out where absent).
 */
import {
  decodeReference,
  encodeReference,
  quantizeReference,
  resolveFormat,
} from '../formats/index.js';
import { absMax, decode, encode, encodeScaled, kernelThreads, nativeCore, quantize, setKernelThreads } from '../kernels/index.js';
import { castRoundTripModel, ONNX_TYPE } from './onnx_cast_model.js';
import { loadOnnxRuntime, numpyFloat16RoundTrip } from './peers.js';
import { timeIt, timeItAsync } from './timing.js';

export interface CodecBenchRow {
  bench: 'codec';
  op: 'encode' | 'quantize' | 'decode' | 'quantize_operand';
  format: string;
  rounding: string;
  n: number;
  path: 'native' | 'typescript';
  threads: number;
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

export async function codecBench(threadCounts: number[], n = 1 << 20): Promise<CodecBenchRow[]> {
  const x = testData(n);
  const rows: CodecBenchRow[] = [];
  const ort = await loadOnnxRuntime();
  const numpy = numpyFloat16RoundTrip(n);
  const native = nativeCore() !== null;
  const out = new Float32Array(n);
  for (const name of ['e5m2', 'e4m3', 'e6m9', 'fp16']) {
    const format = resolveFormat(name);
    const codes = encodeReference(x, format);
    let peer: Pick<CodecBenchRow, 'peer' | 'peer_elements_per_s'> | null = null;
    const onnxType = name === 'e5m2' ? ONNX_TYPE.float8e5m2 : name === 'e4m3' ? ONNX_TYPE.float8e4m3fn : null;
    if (ort && onnxType !== null) {
      const session = await ort.InferenceSession.create(castRoundTripModel(onnxType, true, n));
      const feeds = { x: new ort.Tensor('float32', x, [n]) };
      const t = await timeItAsync(async () => void (await session.run(feeds)));
      await session.release();
      peer = { peer: 'onnxruntime Cast saturating round trip', peer_elements_per_s: n / t.seconds };
    } else if (name === 'fp16' && numpy) {
      peer = { peer: 'numpy astype(float16).astype(float32)', peer_elements_per_s: numpy.quantize };
    }
    for (const rounding of ['nearest', 'stochastic'] as const) {
      const options = { rounding, seed: 1 };
      const base = { bench: 'codec' as const, format: format.name, rounding, n };
      for (const threads of native ? threadCounts : []) {
        const enc = timeIt(() => void encode(x, format, { ...options, threads }, codes));
        const q = timeIt(() => void quantize(x, format, { ...options, threads }, out));
        rows.push({ ...base, op: 'encode', path: 'native', threads, elements_per_s: n / enc.seconds });
        const row: CodecBenchRow = { ...base, op: 'quantize', path: 'native', threads, elements_per_s: n / q.seconds };
        if (peer && rounding === 'nearest') Object.assign(row, peer, { ratio: row.elements_per_s / peer.peer_elements_per_s! });
        rows.push(row);
      }
      const enc = timeIt(() => void encodeReference(x, format, options, codes));
      const q = timeIt(() => void quantizeReference(x, format, options, out));
      rows.push({ ...base, op: 'encode', path: 'typescript', threads: 1, elements_per_s: n / enc.seconds });
      rows.push({ ...base, op: 'quantize', path: 'typescript', threads: 1, elements_per_s: n / q.seconds });
    }
    for (const threads of native ? threadCounts : []) {
      const d = timeIt(() => void decode(codes, format, out, threads));
      rows.push({ bench: 'codec', op: 'decode', format: format.name, rounding: '-', n, path: 'native', threads, elements_per_s: n / d.seconds });
    }
    const d = timeIt(() => void decodeReference(codes, format, out));
    rows.push({ bench: 'codec', op: 'decode', format: format.name, rounding: '-', n, path: 'typescript', threads: 1, elements_per_s: n / d.seconds });
    if (format.bits === 8 && native) {
      const saved = kernelThreads();
      for (const threads of threadCounts) {
        setKernelThreads(threads);
        const t = timeIt(() => void encodeScaled(x, 2 ** Math.floor(Math.log2(format.maxFinite / absMax(x))), format));
        rows.push({ bench: 'codec', op: 'quantize_operand', format: format.name, rounding: 'nearest', n, path: 'native', threads, elements_per_s: n / t.seconds });
      }
      setKernelThreads(saved);
    }
  }
  return rows;
}
