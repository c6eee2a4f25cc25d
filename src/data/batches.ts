/**
 * Shuffling, augmentation and batching, all reproducible from a seed: the order of epoch e is a
 * permutation drawn from (seed, e), and the augmentation of example i in epoch e from
 * (seed, e, i), so a resumed run sees exactly the batches an uninterrupted one would.
 */
import { NonFiniteError } from '../errors.js';
import { DataFileError } from './errors.js';
import { Generator, Tensor } from '../tensor/index.js';
import { IGNORE_LABEL } from './segmentation.js';

export interface Split {
  count: number;
  channels: number;
  height: number;
  width: number;
  /** [count, channels, height, width] bytes. */
  images: Uint8Array;
  /** Classification: one label per image (16-bit where there are more than 256 classes). */
  labels?: Uint8Array | Uint16Array;
  /** Segmentation: [count, height, width] class indices. */
  masks?: Uint8Array;
}

export interface Augmentation {
  /** Zero-pad by this many pixels and crop back to the original size at a random offset. */
  cropPadding: number;
  /** Mirror left-right with probability 1/2. */
  horizontalFlip: boolean;
}

export const NO_AUGMENTATION: Augmentation = { cropPadding: 0, horizontalFlip: false };

export interface Normalization {
  mean: number[];
  std: number[];
}

/** Example indices of the training subset: the first `limit` of a seeded shuffle (all if no limit). */
export function trainingSubset(count: number, seed: number, limit?: number): Int32Array {
  if (limit === undefined || limit >= count) return Int32Array.from({ length: count }, (_, i) => i);
  return new Generator(seed ^ 0x5eed).permutation(count).slice(0, limit);
}

/** The order of epoch `epoch` over a subset. */
export function epochOrder(subset: Int32Array, seed: number, epoch: number): Int32Array {
  const p = new Generator(seed * 7919 + epoch + 1).permutation(subset.length);
  return p.map((i) => subset[i]);
}

export interface Batch {
  x: Tensor;
  /** One label per example, or per pixel (segmentation). */
  labels: Int32Array;
}

/**
 * Every label of these examples is a class index (or `ignoreIndex`, for segmentation): a label out
 * of range would otherwise fail inside the loss, far from its cause, or be miscounted.
 */
export function checkLabels(split: Split, data: { name: string; classes: number; ignoreIndex?: number }, indices: ArrayLike<number>, which: string): void {
  const plane = split.height * split.width;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    const labels = split.masks ? split.masks.subarray(i * plane, (i + 1) * plane) : split.labels!.subarray(i, i + 1);
    for (let p = 0; p < labels.length; p++) {
      const label = labels[p];
      if (label < data.classes || label === data.ignoreIndex) continue;
      const where = split.masks ? `pixel ${p} of example ${i}` : `example ${i}`;
      throw new DataFileError(`${data.name} (${which} split)`, `${where} has label ${label}; expected 0 to ${data.classes - 1}${data.ignoreIndex !== undefined ? ` or ${data.ignoreIndex} (ignored)` : ''}`);
    }
  }
}

/** A normalization gives every channel a finite mean and a finite positive std (a zero std would make the inputs infinite). */
function checkNormalization(norm: Normalization, channels: number): void {
  for (let c = 0; c < channels; c++) {
    const mean = norm.mean[c];
    const std = norm.std[c];
    if (!Number.isFinite(mean) || !(Number.isFinite(std) && std > 0)) {
      throw new NonFiniteError(`normalization of channel ${c}: mean ${mean}, std ${std}; expected a finite mean and a finite std above 0 for each of the ${channels} channels`);
    }
  }
}

/**
 * Build a batch: normalized float32 images [B, C, H, W] and labels. With `augment` (training),
 * each example's crop and flip come from (seed, epoch, index).
 */
export function makeBatch(
  split: Split,
  indices: ArrayLike<number>,
  norm: Normalization,
  augment: Augmentation | null,
  seed = 0,
  epoch = 0,
): Batch {
  const { channels: C, height: H, width: W } = split;
  const plane = H * W;
  const B = indices.length;
  const x = Tensor.zeros([B, C, H, W]);
  const segmentation = split.masks !== undefined;
  const labels = new Int32Array(segmentation ? B * plane : B);
  checkNormalization(norm, C);
  const scale = norm.std.map((s) => 1 / (255 * s));
  const shift = norm.mean.map((m, c) => m / norm.std[c]);
  for (let b = 0; b < B; b++) {
    const i = indices[b];
    let dy = 0;
    let dx = 0;
    let flip = false;
    if (augment && (augment.cropPadding > 0 || augment.horizontalFlip)) {
      const g = new Generator(seed * 1_000_003 + epoch * 65_537 + i);
      const p = augment.cropPadding;
      dy = p ? g.below(2 * p + 1) - p : 0;
      dx = p ? g.below(2 * p + 1) - p : 0;
      flip = augment.horizontalFlip && g.uniform() < 0.5;
    }
    for (let r = 0; r < H; r++) {
      const sr = r + dy;
      for (let c = 0; c < W; c++) {
        const sc = (flip ? W - 1 - c : c) + dx;
        const inside = sr >= 0 && sr < H && sc >= 0 && sc < W;
        for (let ch = 0; ch < C; ch++) {
          const v = inside ? split.images[((i * C + ch) * H + sr) * W + sc] : 0;
          x.data[((b * C + ch) * H + r) * W + c] = v * scale[ch] - shift[ch];
        }
        if (segmentation) labels[b * plane + r * W + c] = inside ? split.masks![i * plane + sr * W + sc] : IGNORE_LABEL;
      }
    }
    if (!segmentation) labels[b] = split.labels![i];
  }
  // Readers give bytes, which are always finite; images from elsewhere may not be.
  const perImage = C * plane;
  for (let k = 0; k < x.data.length; k++) {
    if (!Number.isFinite(x.data[k])) {
      const b = Math.floor(k / perImage);
      throw new NonFiniteError(`example ${indices[b]} of the data holds a non-finite value (${x.data[k]} at channel ${Math.floor((k % perImage) / plane)}); remove or repair it`);
    }
  }
  return { x, labels };
}
