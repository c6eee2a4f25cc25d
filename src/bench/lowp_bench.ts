/**
 * Low-precision GEMM speed: FP8 x FP8 operands with fp32, e6m9 and chunked e6m9 accumulation
 * (and stochastic e6m9 on the square shapes), GFLOP/s and the ratio to the float32 GEMM of the
 * same shape measured in the same run. Block-scaled rows (`scaling` mx or tile): E4M3 operands
 * already quantized in blocks, `mx` (blocks of 32, E8M0 scales), `promote-128` (1 x 128 and
 * 128 x 128 tiles, float32 partials promoted every 128) and `deepseek-v3` (the same with hopper-fp8
 * partials: the aligned 14-bit accumulator), with `ratio_tensor`: the speed against the
 * per-tensor E4M3 GEMM with the same (fp32) accumulation, measured beside it.
 */
import { makeQTensor } from '../formats/index.js';
import { blockQuantize, blockScaledGemm, encode, gemm, lowpGemm, nativeCore, type BlockSpec, type LowpGemmOptions } from '../kernels/index.js';
import { GEMM_SHAPES, filled, type GemmShape } from './gemm_bench.js';
import { bestOf } from './timing.js';

export interface LowpBenchRow {
  bench: 'lowp';
  a: string;
  b: string;
  acc: string;
  chunk: number;
  rounding: string;
  m: number;
  n: number;
  k: number;
  shape: string;
  threads: number;
  path: 'native' | 'typescript';
  gflops: number;
  fp32_gflops: number;
  ratio_fp32: number;
  /** Block-scaled rows: how the operands are scaled, and the speed against the per-tensor E4M3 GEMM. */
  scaling?: 'mx' | 'tile';
  ratio_tensor?: number;
}

const TILE_A: BlockSpec = { format: 'e4m3', blockRows: 1, blockK: 128, scale: 'fp32', saturate: true };
const TILE_B: BlockSpec = { format: 'e4m3', blockRows: 128, blockK: 128, scale: 'fp32', saturate: true };
/** `promote-128`: float32 partials of 128 promoted; `deepseek-v3`: the same with hopper-fp8 (aligned, 14-bit) partials. */
const BLOCK_MODES: Array<{ acc: string; scaling: 'mx' | 'tile'; a: BlockSpec; b: BlockSpec; promote: number; accumulation: string }> = [
  {
    acc: 'mx', scaling: 'mx', promote: 0, accumulation: 'fp32',
    a: { format: 'e4m3', blockRows: 1, blockK: 32, scale: 'e8m0' }, b: { format: 'e4m3', blockRows: 1, blockK: 32, scale: 'e8m0' },
  },
  { acc: 'promote-128', scaling: 'tile', promote: 128, accumulation: 'fp32', a: TILE_A, b: TILE_B },
  { acc: 'deepseek-v3', scaling: 'tile', promote: 128, accumulation: 'hopper-fp8', a: TILE_A, b: TILE_B },
];

/** Block-scaled GEMMs (operands quantized beforehand, as per-tensor rows' are), native only. */
export function blockBench(threadCounts: number[], shapes: GemmShape[] = GEMM_SHAPES.filter((s) => s.m !== 2048)): LowpBenchRow[] {
  if (!nativeCore()) return [];
  const rows: LowpBenchRow[] = [];
  for (const shape of shapes) {
    const { m, n, k } = shape;
    const flops = 2 * m * n * k;
    const af = filled(m * k, 1, 4);
    const bf = filled(k * n, 2, 4);
    const a = makeQTensor(encode(af, 'e4m3'), 'e4m3');
    const b = makeQTensor(encode(bf, 'e4m3'), 'e4m3');
    const c = new Float32Array(m * n);
    const blocks = BLOCK_MODES.map((mode) => ({ mode, qa: blockQuantize(af, m, k, 'rk', mode.a), qb: blockQuantize(bf, n, k, 'kr', mode.b) }));
    for (const threads of threadCounts) {
      let fp32Seconds = Infinity;
      let tensorSeconds = Infinity;
      const seconds = blocks.map(() => Infinity);
      for (let round = 0; round < 3; round++) {
        fp32Seconds = Math.min(fp32Seconds, bestOf(() => void gemm(m, n, k, af, bf, c, { threads }), 0.2));
        tensorSeconds = Math.min(tensorSeconds, bestOf(() => void lowpGemm(m, n, k, a, b, { threads, out: c }), 0.2));
        blocks.forEach(({ mode, qa, qb }, i) => (seconds[i] = Math.min(seconds[i], bestOf(() => void blockScaledGemm(qa, qb, { threads, out: c, promote: mode.promote, accumulation: mode.accumulation }), 0.2))));
      }
      blocks.forEach(({ mode }, i) => {
        const gflops = flops / seconds[i] / 1e9;
        const fp32 = flops / fp32Seconds / 1e9;
        rows.push({
          bench: 'lowp', a: 'e4m3', b: 'e4m3', acc: mode.acc, chunk: 0, rounding: 'nearest', m, n, k, shape: shape.label, threads, path: 'native',
          gflops, fp32_gflops: fp32, ratio_fp32: gflops / fp32, scaling: mode.scaling, ratio_tensor: tensorSeconds / seconds[i],
        });
      });
    }
  }
  return rows;
}

const MODES: Array<{ acc: string; chunk: number; rounding: 'nearest' | 'stochastic'; squareOnly: boolean }> = [
  { acc: 'fp32', chunk: 0, rounding: 'nearest', squareOnly: false },
  { acc: 'e6m9', chunk: 0, rounding: 'nearest', squareOnly: false },
  { acc: 'e6m9', chunk: 64, rounding: 'nearest', squareOnly: false },
  { acc: 'e6m9', chunk: 0, rounding: 'stochastic', squareOnly: true },
];

export function lowpBench(threadCounts: number[], shapes: GemmShape[] = GEMM_SHAPES.filter((s) => s.m !== 2048)): LowpBenchRow[] {
  const native = nativeCore() !== null;
  const rows: LowpBenchRow[] = [];
  for (const shape of shapes) {
    const { m, n, k } = shape;
    const flops = 2 * m * n * k;
    if (!native && flops > 2 ** 24) continue;
    const af = filled(m * k, 1, 4);
    const bf = filled(k * n, 2, 4);
    const a = makeQTensor(encode(af, 'e5m2'), 'e5m2');
    const b = makeQTensor(encode(bf, 'e5m2'), 'e5m2');
    const c = new Float32Array(m * n);
    for (const threads of native ? threadCounts : [1]) {
      const modes = MODES.filter((mode) => !mode.squareOnly || shape.label === 'square');
      // Both GEMMs write into a preallocated C, as a training loop's buffers would be.
      const runs = modes.map((mode) => {
        const options: LowpGemmOptions = { accumulation: mode.acc, chunk: mode.chunk, rounding: mode.rounding, threads, out: c };
        return () => void lowpGemm(m, n, k, a, b, options);
      });
      // The float32 GEMM and every mode in turn, three rounds, the best of each: interference on
      // a shared machine only slows runs down, and alternating spreads it over all of them. One
      // float32 figure per shape and thread count, so the modes' ratios share their reference.
      let fp32Seconds = Infinity;
      const seconds = modes.map(() => Infinity);
      for (let round = 0; round < 3; round++) {
        fp32Seconds = Math.min(fp32Seconds, bestOf(() => void gemm(m, n, k, af, bf, c, { threads }), 0.2));
        runs.forEach((run, i) => (seconds[i] = Math.min(seconds[i], bestOf(run, 0.2))));
      }
      const fp32 = flops / fp32Seconds / 1e9;
      modes.forEach((mode, i) => {
        const gflops = flops / seconds[i] / 1e9;
        rows.push({
          bench: 'lowp', a: 'e5m2', b: 'e5m2', acc: mode.acc, chunk: mode.chunk, rounding: mode.rounding, m, n, k,
          shape: shape.label, threads, path: native ? 'native' : 'typescript', gflops, fp32_gflops: fp32, ratio_fp32: gflops / fp32,
        });
      });
    }
  }
  return rows;
}
