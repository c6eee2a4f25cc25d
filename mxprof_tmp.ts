import { blockQuantize } from './src/kernels/block_quant.js';
import { blockScaledGemm } from './src/kernels/block_gemm.js';
import { lowpGemm, encode } from './src/kernels/index.js';
import { makeQTensor } from './src/formats/index.js';
import { filled } from './src/bench/gemm_bench.js';
const [m, n, k] = (process.argv[2] ?? '64x1024x576').split('x').map(Number);
const which = process.argv[3] ?? 'mx';
const T = Number(process.argv[4] ?? 1);
const af = filled(m * k, 1, 4), bf = filled(k * n, 2, 4);
const spec = { format: 'e4m3', blockRows: 1, blockK: 32, scale: 'e8m0' } as const;
const qa = blockQuantize(af, m, k, 'rk', spec), qb = blockQuantize(bf, n, k, 'kr', spec);
const a = makeQTensor(encode(af, 'e4m3'), 'e4m3'), b = makeQTensor(encode(bf, 'e4m3'), 'e4m3');
const c = new Float32Array(m * n);
const t0 = performance.now(); let reps = 0;
while (reps < Number(process.env.REPS ?? 1e9) && performance.now() - t0 < 4000) { if (which === 'mx') blockScaledGemm(qa, qb, { threads: T, out: c, promote: 0, accumulation: 'fp32' }); else lowpGemm(m, n, k, a, b, { threads: T, out: c }); reps++; }
console.log(which, ((performance.now() - t0) / reps).toFixed(3), 'ms per call');
