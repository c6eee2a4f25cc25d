/**
 * What each accumulation mode costs in accuracy: relative error of FP8 (E5M2) x FP8 GEMM results
 * against the exact sums of the same FP8 products (computed in float64), for several inner
 * dimensions k. Prints one JSON object per line.
 *
 *   node --import tsx examples/accumulation_error.ts
 */
import { decode, encode, lowpGemm, type LowpGemmOptions } from '../src/index.js';

function data(length: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    // Normal-ish values, as activations and weights are: sum of two uniforms, shifted positive
    // half the time so that sums do not cancel to zero.
    const u = s / 2 ** 32;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (u + s / 2 ** 32 - 1) * 2 + (seed % 2 ? 0.5 : 0);
  });
}

const m = 64;
const n = 64;
const modes: Array<[string, LowpGemmOptions]> = [
  ['fp32', {}],
  ['e6m9', { accumulation: 'e6m9' }],
  ['e6m9 chunk 64', { accumulation: 'e6m9', chunk: 64 }],
  ['e6m9 stochastic', { accumulation: 'e6m9', rounding: 'stochastic', seed: 3 }],
  ['fp16', { accumulation: 'fp16' }],
  ['bf16', { accumulation: 'bf16' }],
];
for (const k of [64, 512, 4096]) {
  const a = { codes: encode(data(m * k, 1), 'e5m2'), format: 'e5m2' };
  const b = { codes: encode(data(k * n, 2), 'e5m2'), format: 'e5m2' };
  const av = decode(a.codes, 'e5m2');
  const bv = decode(b.codes, 'e5m2');
  const exact = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) for (let j = 0; j < n; j++) exact[i * n + j] += av[i * k + t] * bv[t * n + j];
  for (const [mode, options] of modes) {
    const c = lowpGemm(m, n, k, a, b, options);
    let sumRel = 0;
    let worst = 0;
    for (let i = 0; i < c.length; i++) {
      const rel = Math.abs(c[i] - exact[i]) / Math.max(1e-30, Math.abs(exact[i]));
      sumRel += rel;
      worst = Math.max(worst, rel);
    }
    console.log(JSON.stringify({ k, mode, mean_relative_error: sumRel / c.length, max_relative_error: worst }));
  }
}
