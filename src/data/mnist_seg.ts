/**
 * mnist-seg: a deterministic segmentation set built from real MNIST digits. Each 64x64 canvas
 * holds three digits (28x28) at seeded positions; the image is the pixel-wise maximum of the
 * digits. Labels: 0 for background, 1 + digit for stroke pixels (intensity >= 128), and the ignore
 * label for the faint rim of a stroke (1-127), whose class is ambiguous. Later digits are drawn
 * over earlier ones. 11 classes.
 *
 * mnist-seg-large: the same construction with one digit per 128x128 canvas, enlarged 4x (to
 * 112x112, bilinear) before it is placed, so strokes are 8-12 pixels wide instead of 2-3: a task a
 * model that classifies at 1/8 of the input (Fast-SCNN) can segment (docs/segmentation.md).
 */
import { Generator } from '../tensor/index.js';
import type { ImageSet } from './mnist.js';
import { IGNORE_LABEL, type SegmentationSet } from './segmentation.js';

export const MNIST_SEG_SIZE = 64;
export const MNIST_SEG_CLASSES = 11;

/** How canvases are laid out: canvas side, digits per canvas, integer enlargement of each digit. */
export interface MnistSegLayout {
  size: number;
  digits: number;
  scale: number;
}

export const MNIST_SEG_LAYOUT: MnistSegLayout = { size: MNIST_SEG_SIZE, digits: 3, scale: 1 };
export const MNIST_SEG_LARGE_LAYOUT: MnistSegLayout = { size: 128, digits: 1, scale: 4 };

/**
 * A digit enlarged `scale` times with bilinear interpolation (half-pixel centres, edges clamped,
 * rounded to the nearest integer): scale 1 returns the digit's own pixels.
 */
export function enlargeDigit(pixels: Uint8Array, height: number, width: number, scale: number): Uint8Array {
  if (scale === 1) return pixels;
  const H = height * scale;
  const W = width * scale;
  const out = new Uint8Array(H * W);
  // Source index below, above and the weight of the one above, per output row or column.
  const coords = (n: number, N: number) => {
    const lo = new Int32Array(N);
    const hi = new Int32Array(N);
    const f = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      const x = Math.min(Math.max((i + 0.5) / scale - 0.5, 0), n - 1);
      lo[i] = Math.floor(x);
      hi[i] = Math.min(lo[i] + 1, n - 1);
      f[i] = x - lo[i];
    }
    return { lo, hi, f };
  };
  const rows = coords(height, H);
  const cols = coords(width, W);
  for (let r = 0; r < H; r++) {
    const r0 = rows.lo[r] * width;
    const r1 = rows.hi[r] * width;
    const fr = rows.f[r];
    for (let c = 0; c < W; c++) {
      const c0 = cols.lo[c];
      const c1 = cols.hi[c];
      const fc = cols.f[c];
      const top = pixels[r0 + c0] * (1 - fc) + pixels[r0 + c1] * fc;
      const bottom = pixels[r1 + c0] * (1 - fc) + pixels[r1 + c1] * fc;
      out[r * W + c] = Math.round(top * (1 - fr) + bottom * fr);
    }
  }
  return out;
}

/**
 * `count` canvases from the digits of `source`, example k from digits kD, kD+1, ... (mod count)
 * for D digits per canvas.
 */
export function buildMnistSeg(source: ImageSet, count: number, seed: number, layout: MnistSegLayout = MNIST_SEG_LAYOUT): SegmentationSet {
  const { size, digits, scale } = layout;
  const dh = source.height * scale;
  const dw = source.width * scale;
  if (!Number.isInteger(scale) || scale < 1 || dh > size || dw > size) {
    throw new RangeError(`mnist-seg layout: a ${source.height}x${source.width} digit enlarged ${scale}x does not fit a ${size}x${size} canvas`);
  }
  const plane = size * size;
  const digit = source.height * source.width;
  const out: SegmentationSet = { images: new Uint8Array(count * plane), masks: new Uint8Array(count * plane), count, channels: 1, height: size, width: size };
  for (let k = 0; k < count; k++) {
    const g = new Generator(seed * 1_000_003 + k);
    const image = out.images.subarray(k * plane, (k + 1) * plane);
    const mask = out.masks.subarray(k * plane, (k + 1) * plane);
    for (let d = 0; d < digits; d++) {
      const index = (k * digits + d) % source.count;
      const top = g.below(size - dh + 1);
      const left = g.below(size - dw + 1);
      const label = 1 + source.labels[index];
      const pixels = enlargeDigit(source.images.subarray(index * digit, (index + 1) * digit), source.height, source.width, scale);
      for (let r = 0; r < dh; r++) {
        for (let c = 0; c < dw; c++) {
          const v = pixels[r * dw + c];
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
