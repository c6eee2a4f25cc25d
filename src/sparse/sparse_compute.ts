/**
 * Pruned convolutions on the block-sparse kernel, in training and in evaluation.
 *
 * `attachSparsePatterns` gives each pruned 2-D convolution (one group) its keep pattern
 * (GemmLayer.sparse). Its forward then runs on the block-sparse kernel where the fixed rule
 * sparseConvWins (src/kernels/block_sparse.ts) says that is faster than the product the layer
 * would run dense: under the float32 compute (conv2d) and under a recipe's when both operands are
 * one-byte codes with float32 accumulation (bsrLowpConv2dForward). In the backward, the input
 * gradient (float32: strided layers, stride-1 ones in place of Winograd; codes under float32
 * accumulation: stride-1 layers, the dense product's chains over the kept weights) and the weight
 * gradient (its pruned entries +0) run on the sparse kernel by their own fixed rules
 * (sparseInputGradientWins, sparseWeightGradientWins).
 *
 * A recipe that quantizes weight gradients by their amax sees a pruned layer's gradient with its
 * pruned entries +0, on the dense products too (`kernels: 'dense'` attaches the pattern as
 * GemmLayer.pruned for that): its scale comes from the kept entries, as a block-sparse product
 * computes only those. (Until 2026-12-07 the dense gradient's amax, pruned entries included, set
 * it. With power-of-two scales a binade finer rounds every value the same but those at the bottom
 * of the format's range: the sparsity table's fp8 runs came out the same.)
 *
 * Values. The rule is a function of the pattern and the geometry, never of a timing, so a run
 * gives the same bits on any machine and on every call; training and its evaluations (and `octet
 * eval`) run the same products. Under a recipe with codes the sparse forward is the dense
 * product's bits (zero signs aside). Under float32, a 3x3 stride-1 convolution the rule moves off
 * Winograd (at 25% of blocks kept or fewer) gets the direct product's rounding instead of
 * Winograd's: a pruned float32 run differs from the same run with `kernels: 'dense'` in the last
 * bits, as `--conv direct` differs from `--conv winograd`.
 */
import { InvalidArgumentError } from '../errors.js';
import { keptFraction, sparseConvWins, type SparsePattern } from '../kernels/index.js';
import { GemmLayer, type Module } from '../nn/index.js';
import { maskGrid, parseBlockShape } from './mask.js';

export interface SparseLayer {
  layer: string;
  /** Kept blocks over all blocks. */
  kept: number;
  /** Whether the forward runs sparse against a direct dense product (Winograd's case is decided per call). */
  sparseAgainstDirect: boolean;
}

/**
 * Give every pruned convolution of `model` (keep patterns by parameter name, as checkpoints and
 * the Pruner hold them, in `block` blocks) its pattern, and take it from layers without one.
 * `kernels: 'dense'` keeps every product dense (GemmLayer.pruned only: the same values, the
 * products' speed of an unpruned model). Returns the layers given one.
 */
export function attachSparsePatterns(model: Module, masks: ReadonlyMap<string, Uint8Array>, block: string, kernels: 'auto' | 'dense' = 'auto'): SparseLayer[] {
  const shape = parseBlockShape(block);
  const layers: SparseLayer[] = [];
  for (const [path, m] of model.namedModules()) {
    if (!(m instanceof GemmLayer)) continue;
    const keep = masks.get(`${path}.weight`);
    if (!keep || m.product.kind !== 'conv2d' || (m.product.options.groups ?? 1) !== 1) {
      m.sparse = null;
      m.pruned = null;
      continue;
    }
    const rows = m.weight.shape[0], cols = m.weight.size / rows;
    const { br, bc, blockRowCount, blockColCount } = maskGrid(rows, cols, shape);
    if (keep.length !== blockRowCount * blockColCount) {
      throw new InvalidArgumentError(
        `the mask for ${path}.weight has ${keep.length} blocks; ${shape.name} blocks of its ${rows} x ${cols} view make ${blockRowCount * blockColCount} (was it made with another block shape?)`,
      );
    }
    const pattern: SparsePattern = { rows, cols, br, bc, keep };
    m.sparse = kernels === 'auto' ? pattern : null;
    m.pruned = pattern;
    layers.push({ layer: path, kept: keptFraction(pattern), sparseAgainstDirect: sparseConvWins(pattern, 'direct') });
  }
  return layers;
}

/** Take every pattern off (the dense products). */
export function detachSparsePatterns(model: Module): void {
  for (const [, m] of model.namedModules()) {
    if (m instanceof GemmLayer) {
      m.sparse = null;
      m.pruned = null;
    }
  }
}
