import { lowpGemm } from './src/kernels/lowp_gemm.js';
import { encode, gemm } from './src/kernels/index.js';
const N = Number(process.argv[2] ?? 1024); const m = N, n = N, k = N;
const a = new Float32Array(m * k).map(() => (Math.random() - 0.5) * 4);
const b = new Float32Array(k * n).map(() => (Math.random() - 0.5) * 4);
const A = { codes: encode(a, 'e5m2'), format: 'e5m2', scale: 1 };
const B = { codes: encode(b, 'e5m2'), format: 'e5m2', scale: 1 };
const best = (f: () => void) => { f(); let t = 1e9; for (let r = 0; r < 5; r++) { const s = performance.now(); f(); t = Math.min(t, performance.now() - s); } return 2 * m * n * k / t / 1e6; };
const c = new Float32Array(m * n);
const f32 = best(() => gemm(m, n, k, a, b, c));
console.log('fp32 sgemm', f32.toFixed(0));
for (const opts of [{}, { accumulation: 'e6m9' }, { accumulation: 'e6m9', chunk: 64 }, { accumulation: 'e6m9', rounding: 'stochastic' as const }]) {
  const g = best(() => lowpGemm(m, n, k, A, B, opts as any));
  console.log(JSON.stringify(opts), g.toFixed(1), 'GFLOPS ratio', (g / f32).toFixed(3));
}
