/** Block-structured sparsity: block masks over a layer's GEMM view and pruning schedules. */
export {
  applyMask, blockMask, blockScores, blockSize, checkSparsity, cubicSparsity, expandMask, globalBlockMasks, maskGrid, maskSparsity, parseBlockShape,
} from './mask.js';
export type { BlockNorm, BlockShape, MaskLayer } from './mask.js';
export { Pruner, parsePruneSpec, prunableLayers } from './pruner.js';
export type { LayerSparsity, PruneConfig, PrunedLayer } from './pruner.js';
export { attachSparsePatterns, detachSparsePatterns } from './sparse_compute.js';
export type { SparseLayer } from './sparse_compute.js';
