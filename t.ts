import { lowpGemm, lowpGemmReference } from './src/kernels/lowp_gemm.js';
import { encode } from './src/kernels/codec.js';
const m = 37, n = 45, k = 300;
const a = new Float32Array(m * k).map(() => (Math.random() - 0.5) * 4);
const b = new Float32Array(k * n).map(() => (Math.random() - 0.5) * 4);
const A = { codes: encode(a, 'e5m2'), format: 'e5m2', scale: 2 };
const B = { codes: encode(b, 'e5m2'), format: 'e5m2', scale: 0.5 };
for (const opts of [{}, { accumulation: 'e6m9' }, { accumulation: 'e6m9', chunk: 64 }, { accumulation: 'e6m9', rounding: 'stochastic' as const, seed: 3 }, { accumulation: 'fp32', chunk: 16 }, { accumulation: 'bf16' }, { accumulation: 'fp16', saturate: true }]) {
  const x = lowpGemm(m, n, k, A, B, opts as any);
  const y = lowpGemmReference(m, n, k, A, B, opts as any);
  let bad = 0; for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) bad++;
  console.log(JSON.stringify(opts), 'mismatches', bad, x[0], y[0]);
}
