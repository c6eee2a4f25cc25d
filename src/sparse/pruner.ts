/**
 * Pruning during training: which layers are pruned, when their masks are recomputed, and the
 * rule that a pruned weight is exactly zero whenever the model runs.
 *
 * Prunable layers are the GEMM layers' weights (parameters named `*.weight` of rank 2 or more),
 * seen as rows = the weight's first dimension, cols = the rest (a convolution's output channels x
 * input channels x kh x kw). The first and the last of them are left dense unless asked
 * (`pruneFirstLast`), and any layer path can be excluded (`exclude`: a dotted module path such as
 * `layer1.0.conv1`, or a parameter name). Masks are recomputed at steps start, start + every, ...
 * up to end (and at end), to the cubic schedule's sparsity from `initial` to `sparsity`; between
 * them they hold, and after every optimizer step the pruned weights and their optimizer slots are
 * set to zero again, so that the forward never sees a pruned value.
 */
import { InvalidArgumentError } from '../errors.js';
import { zeroWhere } from '../kernels/index.js';
import type { Tensor } from '../tensor/index.js';
import { blockMask, checkSparsity, cubicSparsity, expandMask, globalBlockMasks, maskGrid, maskSparsity, parseBlockShape, type BlockNorm, type BlockShape } from './mask.js';

export interface PruneConfig {
  /** Block shape: `RxC` or `filter`. */
  block: string;
  /** Final sparsity (fraction of blocks dropped), in [0, 1). */
  sparsity: number;
  /** Sparsity at `start` (default 0). */
  initial?: number;
  /** First step masks are computed at (steps taken before it; default 0). */
  start?: number;
  /** Step the final sparsity is reached at (default: start, one-shot). */
  end?: number;
  /** Masks recomputed every N steps between start and end (default 100). */
  every?: number;
  norm?: BlockNorm;
  /** Rank all the layers' blocks together instead of each layer's own. */
  global?: boolean;
  /** Layer paths (or parameter names) left dense. */
  exclude?: string[];
  /** Prune the first and last GEMM layers too (default false). */
  pruneFirstLast?: boolean;
  /**
   * `auto` (default): pruned convolutions run their products on the block-sparse kernel where the
   * fixed rules choose it (src/sparse/sparse_compute.ts); `dense`: never.
   */
  kernels?: 'auto' | 'dense';
}

export interface PrunedLayer {
  name: string;
  weight: Tensor;
  rows: number;
  cols: number;
}

export interface LayerSparsity {
  name: string;
  block: string;
  rows: number;
  cols: number;
  blocks: number;
  /** Dropped blocks over all blocks. */
  sparsity: number;
  /** Zero weights over all weights. */
  zeros: number;
}

/** `RxC:s` or `filter:s` (the CLI's --prune), checked. */
export function parsePruneSpec(text: string): { block: string; sparsity: number } {
  const at = text.lastIndexOf(':');
  if (at < 0) throw new InvalidArgumentError(`--prune ${JSON.stringify(text)}: expected BLOCK:SPARSITY, e.g. 8x8:0.75 or filter:0.5`);
  const block = text.slice(0, at);
  parseBlockShape(block);
  const sparsity = Number(text.slice(at + 1));
  checkSparsity(sparsity, `--prune sparsity ${JSON.stringify(text.slice(at + 1))}`);
  return { block, sparsity };
}

/** The layers a prune config applies to, from a model's named parameters (errors name unknown exclusions). */
export function prunableLayers(params: readonly (readonly [string, Tensor])[], config: Pick<PruneConfig, 'exclude' | 'pruneFirstLast'>): PrunedLayer[] {
  const gemm = params.filter(([name, t]) => name.endsWith('.weight') && t.shape.length >= 2);
  const excluded = new Set<string>();
  for (const path of config.exclude ?? []) {
    const hits = gemm.filter(([name]) => name === path || name === `${path}.weight` || name.startsWith(`${path}.`));
    if (!hits.length) {
      const names = gemm.map(([name]) => name.slice(0, -'.weight'.length));
      throw new InvalidArgumentError(`prune: no GEMM layer at "${path}"; layer paths are ${names.slice(0, 8).join(', ')}${names.length > 8 ? `, ... (${names.length} in all)` : ''}`);
    }
    for (const [name] of hits) excluded.add(name);
  }
  return gemm
    .filter(([name], i) => !excluded.has(name) && (config.pruneFirstLast || (i !== 0 && i !== gemm.length - 1)))
    .map(([name, weight]) => ({ name, weight, rows: weight.shape[0], cols: weight.size / weight.shape[0] }));
}

function checkSteps(config: PruneConfig): { start: number; end: number; every: number; initial: number } {
  const start = config.start ?? 0;
  const end = config.end ?? start;
  const every = config.every ?? 100;
  const initial = config.initial ?? 0;
  for (const [name, v] of [['start', start], ['end', end], ['every', every]] as const) {
    if (!Number.isInteger(v) || v < (name === 'every' ? 1 : 0)) throw new InvalidArgumentError(`prune ${name} is ${v}; expected an integer >= ${name === 'every' ? 1 : 0}`);
  }
  if (end < start) throw new InvalidArgumentError(`prune end ${end} is before start ${start}`);
  checkSparsity(initial, 'prune initial sparsity');
  checkSparsity(config.sparsity, 'prune sparsity');
  if (config.kernels !== undefined && config.kernels !== 'auto' && config.kernels !== 'dense') {
    throw new InvalidArgumentError(`prune kernels is ${JSON.stringify(config.kernels)}; expected "auto" (the block-sparse products where their rules choose them) or "dense"`);
  }
  return { start, end, every, initial };
}

export class Pruner {
  readonly config: PruneConfig;
  readonly shape: BlockShape;
  readonly layers: PrunedLayer[];
  /** Keep patterns (one byte per block) by parameter name; absent before the first mask. */
  private readonly keep = new Map<string, Uint8Array>();
  private readonly elements = new Map<string, Uint8Array>();
  private readonly steps: { start: number; end: number; every: number; initial: number };

  constructor(params: readonly (readonly [string, Tensor])[], config: PruneConfig) {
    this.config = config;
    this.shape = parseBlockShape(config.block);
    this.steps = checkSteps(config);
    this.layers = prunableLayers(params, config);
    if (!this.layers.length) throw new InvalidArgumentError('prune: the model has no GEMM layer left to prune (the first and last are kept dense unless pruneFirstLast)');
  }

  /** Whether masks are (re)computed before step `step` (steps taken so far). */
  due(step: number): boolean {
    const { start, end, every } = this.steps;
    return step >= start && step <= end && ((step - start) % every === 0 || step === end);
  }

  /** The schedule's sparsity at a step. */
  sparsityAt(step: number): number {
    const { start, end, initial } = this.steps;
    return end === start ? (step >= start ? this.config.sparsity : initial) : cubicSparsity(step, start, end, initial, this.config.sparsity);
  }

  /** Recompute every mask for `step` from the weights as they are, then enforce them. */
  update(step: number, zeroSlots?: (name: string, keep: Uint8Array) => void): void {
    const sparsity = this.sparsityAt(step);
    const norm = this.config.norm ?? 'l1';
    const patterns = this.config.global
      ? globalBlockMasks(this.layers.map((l) => ({ weight: l.weight.data, rows: l.rows, cols: l.cols })), this.shape, sparsity, norm)
      : this.layers.map((l) => blockMask(l.weight.data, l.rows, l.cols, this.shape, sparsity, norm));
    this.layers.forEach((l, i) => this.set(l, patterns[i]));
    this.enforce(zeroSlots);
  }

  private set(layer: PrunedLayer, keep: Uint8Array): void {
    this.keep.set(layer.name, keep);
    this.elements.set(layer.name, expandMask(keep, layer.rows, layer.cols, this.shape));
  }

  /** Zero every pruned weight (and, through zeroSlots, its optimizer state). */
  enforce(zeroSlots?: (name: string, keep: Uint8Array) => void): void {
    for (const layer of this.layers) {
      const mask = this.elements.get(layer.name);
      if (!mask) continue;
      zeroWhere(layer.weight.data, mask);
      zeroSlots?.(layer.name, mask);
    }
  }

  /**
   * Per-element keep masks by parameter name (layers with a mask so far), for an optimizer step
   * that skips the pruned entries (Optimizer.stepAll's `keep`) before enforce zeroes them.
   */
  elementMasks(): ReadonlyMap<string, Uint8Array> {
    return this.elements;
  }

  /** Keep patterns by parameter name (layers with a mask so far). */
  keepPatterns(): Map<string, Uint8Array> {
    return new Map(this.keep);
  }

  /** Keep patterns by parameter name, with their block grid (for checkpoints). */
  patterns(): Array<{ name: string; keep: Uint8Array; shape: [number, number] }> {
    return this.layers.flatMap((l) => {
      const keep = this.keep.get(l.name);
      if (!keep) return [];
      const { blockRowCount, blockColCount } = maskGrid(l.rows, l.cols, this.shape);
      return [{ name: l.name, keep, shape: [blockRowCount, blockColCount] as [number, number] }];
    });
  }

  /** Restore keep patterns (from a checkpoint), checked against the layers' grids. */
  load(patterns: ReadonlyMap<string, Uint8Array>): void {
    for (const [name, keep] of patterns) {
      const layer = this.layers.find((l) => l.name === name);
      if (!layer) throw new InvalidArgumentError(`prune: the checkpoint has a mask for ${name}, which this run does not prune`);
      const { blockRowCount, blockColCount } = maskGrid(layer.rows, layer.cols, this.shape);
      if (keep.length !== blockRowCount * blockColCount) {
        throw new InvalidArgumentError(`prune: the mask for ${name} has ${keep.length} blocks; ${this.shape.name} blocks of its ${layer.rows} x ${layer.cols} view make ${blockRowCount * blockColCount}`);
      }
      this.set(layer, keep);
    }
  }

  /** Per-layer sparsity as it stands. */
  summary(): LayerSparsity[] {
    return this.layers.map((l) => {
      const keep = this.keep.get(l.name);
      const { blockRowCount, blockColCount } = maskGrid(l.rows, l.cols, this.shape);
      let zeros = 0;
      for (const v of l.weight.data) if (v === 0) zeros++;
      return {
        name: l.name, block: this.shape.name, rows: l.rows, cols: l.cols, blocks: blockRowCount * blockColCount,
        sparsity: keep ? maskSparsity(keep) : 0, zeros: zeros / l.weight.size,
      };
    });
  }
}
