/**
 * Run in a child process: a million calls into the native core (GEMM, codec, im2col) on
 * reused arrays, printing the resident set size after a warm-up and at the end.
 */
import { encode, gemm, im2col } from '../../src/kernels/index.js';

const a = new Float32Array(64).fill(1);
const c = new Float32Array(64);
const x = new Float32Array(300).fill(0.5);
const codes = new Uint8Array(300);
const image = new Float32Array(2 * 5 * 5);
const col = new Float32Array(2 * 9 * 25);
const geometry = { channels: 2, height: 5, width: 5, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, outH: 5, outW: 5 };
const calls = Number(process.argv[2] ?? 1_000_000);
const round = (i: number) => {
  if (i % 3 === 0) gemm(8, 8, 8, a, a, c);
  else if (i % 3 === 1) encode(x, 'e5m2', { rounding: 'stochastic', seed: i }, codes);
  else im2col(image, col, geometry);
};
for (let i = 0; i < 100_000; i++) round(i);
global.gc?.();
const before = process.memoryUsage().rss;
for (let i = 0; i < calls; i++) round(i);
global.gc?.();
const after = process.memoryUsage().rss;
process.stdout.write(JSON.stringify({ calls, rssBeforeMb: before / 2 ** 20, rssAfterMb: after / 2 ** 20 }) + '\n');
