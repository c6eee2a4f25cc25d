/**
 * Block masks over a layer's GEMM view (rows = output channels, cols = input channels x kh x kw:
 * the layout the convolutions and linear layers multiply).
 *
 * Blocks are `rows x cols` (1x1 is unstructured pruning, 4x4 / 8x8 / 16x16 blocks, `filter` a
 * whole output channel: 1 x all columns). Where a block does not divide the view, the last block
 * row and column are shorter (no padding: the missing entries do not exist). A block's score is
 * its mean magnitude, L1 (mean |w|) or L2 (root mean square), so shorter edge blocks compete on
 * equal terms. Pruning `sparsity` of a layer drops round(sparsity x blocks) blocks, the lowest
 * scores first (equal scores: the lower block index first), so the count is exact and the same
 * on every machine; global pruning ranks every block of every layer together.
 */
import { InvalidArgumentError } from '../errors.js';

export interface BlockShape {
  /** As written: `8x8`, `filter`, ... */
  readonly name: string;
  /** Block rows (1 for `filter`). */
  readonly rows: number;
  /** Block columns; 0 for `filter` (the whole row, whatever the layer's width). */
  readonly cols: number;
}

export type BlockNorm = 'l1' | 'l2';

/** `RxC` (positive integers, e.g. 8x8, 1x1, 4x16) or `filter`; anything else is refused. */
export function parseBlockShape(text: string): BlockShape {
  if (text === 'filter') return { name: 'filter', rows: 1, cols: 0 };
  const m = /^(\d+)x(\d+)$/.exec(text);
  const rows = m ? Number(m[1]) : 0, cols = m ? Number(m[2]) : 0;
  if (!m || rows < 1 || cols < 1) {
    throw new InvalidArgumentError(`block shape "${text}" is not RxC with positive integers (1x1, 4x4, 8x8, 16x16, ...) or "filter"`);
  }
  return { name: text, rows, cols };
}

/** A sparsity in [0, 1), checked. */
export function checkSparsity(sparsity: number, where = 'sparsity'): number {
  if (!(Number.isFinite(sparsity) && sparsity >= 0 && sparsity < 1)) {
    throw new InvalidArgumentError(`${where} is ${sparsity}; expected a fraction in [0, 1) (0.75 prunes three blocks in four)`);
  }
  return sparsity;
}

/** The block size of a shape on a rows x cols view (filter: 1 x cols). */
export function blockSize(shape: BlockShape, cols: number): { br: number; bc: number } {
  return { br: shape.rows, bc: shape.cols === 0 ? Math.max(1, cols) : shape.cols };
}

/** Block rows and columns of a view. */
export function maskGrid(rows: number, cols: number, shape: BlockShape): { blockRowCount: number; blockColCount: number; br: number; bc: number } {
  const { br, bc } = blockSize(shape, cols);
  return { blockRowCount: Math.ceil(rows / br), blockColCount: Math.ceil(cols / bc), br, bc };
}

function checkView(weight: Float32Array, rows: number, cols: number, where: string): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new InvalidArgumentError(`${where}: the view is ${rows} x ${cols}; expected positive integers`);
  }
  if (weight.length !== rows * cols) throw new InvalidArgumentError(`${where}: the weight has ${weight.length} values; expected ${rows} x ${cols} = ${rows * cols}`);
}

/** Each block's score (block rows major): mean |w| (l1) or sqrt(mean w^2) (l2). */
export function blockScores(weight: Float32Array, rows: number, cols: number, shape: BlockShape, norm: BlockNorm = 'l1'): Float64Array {
  checkView(weight, rows, cols, 'blockScores');
  const { blockRowCount, blockColCount, br, bc } = maskGrid(rows, cols, shape);
  const sums = new Float64Array(blockRowCount * blockColCount);
  for (let i = 0; i < rows; i++) {
    const q = Math.floor(i / br);
    for (let t = 0; t < cols; t++) {
      const v = weight[i * cols + t];
      sums[q * blockColCount + Math.floor(t / bc)] += norm === 'l1' ? Math.abs(v) : v * v;
    }
  }
  for (let q = 0; q < blockRowCount; q++) {
    for (let p = 0; p < blockColCount; p++) {
      const count = (Math.min(rows, (q + 1) * br) - q * br) * (Math.min(cols, (p + 1) * bc) - p * bc);
      const mean = sums[q * blockColCount + p] / count;
      sums[q * blockColCount + p] = norm === 'l1' ? mean : Math.sqrt(mean);
    }
  }
  return sums;
}

/** Indices of the `count` lowest scores (ties: lower index first). */
function lowest(scores: ArrayLike<number>, count: number): Int32Array {
  const order = Int32Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => (scores[a] - scores[b]) || (a - b));
  return order.subarray(0, count);
}

/** A layer's keep pattern (one byte per block, 1 = kept) at `sparsity`, pruning its lowest-scored blocks. */
export function blockMask(weight: Float32Array, rows: number, cols: number, shape: BlockShape, sparsity: number, norm: BlockNorm = 'l1'): Uint8Array {
  checkSparsity(sparsity);
  const scores = blockScores(weight, rows, cols, shape, norm);
  const keep = new Uint8Array(scores.length).fill(1);
  for (const b of lowest(scores, Math.round(sparsity * scores.length))) keep[b] = 0;
  return keep;
}

export interface MaskLayer {
  weight: Float32Array;
  rows: number;
  cols: number;
}

/**
 * Keep patterns for several layers pruned together: round(sparsity x all blocks) blocks dropped,
 * the lowest scores over every layer first (ties: earlier layer, then lower block index).
 */
export function globalBlockMasks(layers: MaskLayer[], shape: BlockShape, sparsity: number, norm: BlockNorm = 'l1'): Uint8Array[] {
  checkSparsity(sparsity);
  const scores = layers.map((l) => blockScores(l.weight, l.rows, l.cols, shape, norm));
  const total = scores.reduce((s, x) => s + x.length, 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const s of scores) {
    all.set(s, at);
    at += s.length;
  }
  const keepAll = new Uint8Array(total).fill(1);
  for (const b of lowest(all, Math.round(sparsity * total))) keepAll[b] = 0;
  const out: Uint8Array[] = [];
  at = 0;
  for (const s of scores) {
    out.push(keepAll.slice(at, at + s.length));
    at += s.length;
  }
  return out;
}

/** The element mask (rows x cols, 1 = kept) of a keep pattern. */
export function expandMask(keep: Uint8Array, rows: number, cols: number, shape: BlockShape): Uint8Array {
  const { blockRowCount, blockColCount, br, bc } = maskGrid(rows, cols, shape);
  if (keep.length !== blockRowCount * blockColCount) {
    throw new InvalidArgumentError(`expandMask: the pattern has ${keep.length} blocks; expected ${blockRowCount} x ${blockColCount} for ${shape.name} blocks of ${rows} x ${cols}`);
  }
  const out = new Uint8Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const q = Math.floor(i / br);
    for (let t = 0; t < cols; t++) out[i * cols + t] = keep[q * blockColCount + Math.floor(t / bc)];
  }
  return out;
}

/** Zero the pruned entries of a weight in place (an element mask from expandMask). */
export function applyMask(weight: Float32Array, mask: Uint8Array): Float32Array {
  if (mask.length !== weight.length) throw new InvalidArgumentError(`applyMask: the mask has ${mask.length} entries; the weight ${weight.length}`);
  for (let i = 0; i < weight.length; i++) if (mask[i] === 0) weight[i] = 0;
  return weight;
}

/** Dropped blocks over all blocks of a keep pattern. */
export function maskSparsity(keep: Uint8Array): number {
  let dropped = 0;
  for (const k of keep) if (k === 0) dropped++;
  return keep.length === 0 ? 0 : dropped / keep.length;
}

/**
 * The gradual pruning schedule of Zhu & Gupta (2017): sparsity at `step` rises from `initial` at
 * `start` to `final` at `end` as final + (initial - final) (1 - (step - start) / (end - start))^3,
 * constant before and after.
 */
export function cubicSparsity(step: number, start: number, end: number, initial: number, final: number): number {
  checkSparsity(initial, 'initial sparsity');
  checkSparsity(final, 'final sparsity');
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end > start)) {
    throw new InvalidArgumentError(`pruning steps ${start} to ${end}: expected integers with 0 <= start < end`);
  }
  if (step <= start) return initial;
  if (step >= end) return final;
  const left = 1 - (step - start) / (end - start);
  return final + (initial - final) * left * left * left;
}
