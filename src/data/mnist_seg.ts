/**
 * mnist-seg: a deterministic segmentation set built from real MNIST digits. Each 64x64 canvas
 * holds three digits (28x28) at seeded positions; the image is the pixel-wise maximum of the
 * digits. Labels: 0 for background, 1 + digit for stroke pixels (intensity >= 128), and the ignore
 * label for the faint rim of a stroke (1-127), whose class is ambiguous. Later digits are drawn
 * over earlier ones. 11 classes.
 */
import { Generator } from '../tensor/index.js';
import type { ImageSet } from './mnist.js';
import { IGNORE_LABEL, type SegmentationSet } from './segmentation.js';

export const MNIST_SEG_SIZE = 64;
export const MNIST_SEG_CLASSES = 11;
const DIGITS_PER_CANVAS = 3;

/** `count` canvases from the digits of `source`, example k from digits 3k, 3k+1, 3k+2 (mod count). */
export function buildMnistSeg(source: ImageSet, count: number, seed: number): SegmentationSet {
  const size = MNIST_SEG_SIZE;
  const plane = size * size;
  const digit = source.height * source.width;
  const out: SegmentationSet = { images: new Uint8Array(count * plane), masks: new Uint8Array(count * plane), count, channels: 1, height: size, width: size };
  for (let k = 0; k < count; k++) {
    const g = new Generator(seed * 1_000_003 + k);
    const image = out.images.subarray(k * plane, (k + 1) * plane);
    const mask = out.masks.subarray(k * plane, (k + 1) * plane);
    for (let d = 0; d < DIGITS_PER_CANVAS; d++) {
      const index = (k * DIGITS_PER_CANVAS + d) % source.count;
      const top = g.below(size - source.height + 1);
      const left = g.below(size - source.width + 1);
      const label = 1 + source.labels[index];
      for (let r = 0; r < source.height; r++) {
        for (let c = 0; c < source.width; c++) {
          const v = source.images[index * digit + r * source.width + c];
          if (v === 0) continue;
          const p = (top + r) * size + left + c;
          image[p] = Math.max(image[p], v);
          if (v >= 128) mask[p] = label;
          else if (mask[p] === 0) mask[p] = IGNORE_LABEL;
        }
      }
    }
  }
  return out;
}
