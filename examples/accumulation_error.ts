/**
 * What each accumulation mode costs in accuracy: the error of FP8 (E5M2) x FP8 GEMM results
 * against the exact sums of the same FP8 products (computed in float64), for several inner
 * dimensions k, normalized by the sum of the products' magnitudes (so cancellation does not
 * blow it up): mean and worst |c - exact| / sum|p|, and the mean signed error (bias) on the same
 * scale. A holds positive values (like activations after ReLU), B values of both signs (like
 * weights). Prints one JSON object per line.
 *
 *   node --import tsx examples/accumulation_error.ts
 */
import { decode, encode, lowpGemm, makeQTensor, type LowpGemmOptions } from '../src/index.js';

function data(length: number, seed: number, positive: boolean): Float32Array {
  let s = seed;
  return Float32Array.from({ length }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const v = (u + s / 2 ** 32 - 1) * 2; // triangular on (-2, 2)
    return positive ? Math.abs(v) : v;
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
  const a = makeQTensor(encode(data(m * k, 1, true), 'e5m2'), 'e5m2');
  const b = makeQTensor(encode(data(k * n, 2, false), 'e5m2'), 'e5m2');
  const av = decode(a.codes, 'e5m2');
  const bv = decode(b.codes, 'e5m2');
  const exact = new Float64Array(m * n);
  const magnitude = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let t = 0; t < k; t++) {
      for (let j = 0; j < n; j++) {
        const p = av[i * k + t] * bv[t * n + j];
        exact[i * n + j] += p;
        magnitude[i * n + j] += Math.abs(p);
      }
    }
  }
  for (const [mode, options] of modes) {
    const c = lowpGemm(m, n, k, a, b, options);
    let sum = 0;
    let signed = 0;
    let worst = 0;
    for (let i = 0; i < c.length; i++) {
      const e = (c[i] - exact[i]) / magnitude[i];
      sum += Math.abs(e);
      signed += e;
      worst = Math.max(worst, Math.abs(e));
    }
    console.log(JSON.stringify({ k, mode, mean_error: sum / c.length, max_error: worst, bias: signed / c.length }));
  }
}
