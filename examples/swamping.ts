/**
 * Swamping, shown with Octet's low-precision GEMM: 4096 products of 2^-10 summed in the 1-6-9
 * accumulator. Without chunks the running sum stalls at 1 (from there 2^-10 is half a unit in
 * the last place and ties round to even); with chunks of 64 the sum is exact.
 *
 *   node --import tsx examples/swamping.ts
 */
import { encode, lowpGemm, makeQTensor } from '../src/index.js';

const k = 4096;
const a = makeQTensor(encode(new Float32Array(k).fill(2 ** -10), 'e5m2'), 'e5m2');
const b = makeQTensor(encode(new Float32Array(k).fill(1), 'e5m2'), 'e5m2');
const exact = k * 2 ** -10;
for (const [label, options] of [
  ['fp32 accumulation', {}],
  ['e6m9, rounded after every add', { accumulation: 'e6m9' }],
  ['e6m9, chunks of 64', { accumulation: 'e6m9', chunk: 64 }],
  ['e6m9, stochastic rounding', { accumulation: 'e6m9', rounding: 'stochastic', seed: 1 }],
] as const) {
  const [sum] = lowpGemm(1, 1, k, a, b, options);
  console.log(`${label.padEnd(32)} sum = ${sum}  (exact ${exact})`);
}
