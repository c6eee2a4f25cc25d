/** Benchmarks: JSON rows, with peers measured in the same run where the machine has them. */
export { codecBench } from './codec_bench.js';
export type { CodecBenchRow } from './codec_bench.js';
export { GEMM_SHAPES, gemmBench } from './gemm_bench.js';
export type { GemmBenchRow, GemmShape } from './gemm_bench.js';
export { blockBench, lowpBench } from './lowp_bench.js';
export type { LowpBenchRow } from './lowp_bench.js';
export { TRAIN_BENCH_MODELS, parseInputShape, trainBench } from './train_bench.js';
export type { TrainBenchOptions, TrainBenchRow } from './train_bench.js';
export type { StepProfile } from './train_profile.js';
export { RESNET18_CONVS, SPARSE_BLOCKS, SPARSITIES, sparseBench, sparseStepBench } from './sparse_bench.js';
export type { SparseBenchRow } from './sparse_bench.js';
