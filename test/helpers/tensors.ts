/** Tensors for op tests: seeded values, kept away from the kinks of piecewise ops. */
import { Generator, Tensor } from '../../src/tensor/index.js';
import { convGeometry, type ConvGeometry } from '../../src/kernels/conv_geometry.js';

export function randomTensor(shape: number[], seed: number, lo = -1, hi = 1, requiresGrad = true): Tensor {
  const t = Tensor.uniform(shape, new Generator(seed), lo, hi);
  return t.requireGrad(requiresGrad);
}

/** Uniform values moved at least `margin` away from each kink. */
export function awayFrom(shape: number[], seed: number, kinks: number[], lo: number, hi: number, margin = 0.05): Tensor {
  const t = randomTensor(shape, seed, lo, hi);
  for (let i = 0; i < t.size; i++) {
    for (const k of kinks) {
      if (Math.abs(t.data[i] - k) < margin) t.data[i] = k + (t.data[i] >= k ? margin : -margin);
    }
  }
  return t;
}

/** Distinct values spaced 0.1 apart in a seeded order (no near-ties for max pooling). */
export function distinctTensor(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const order = new Generator(seed).permutation(n);
  return Tensor.from(Array.from(order, (v) => (v - n / 2) * 0.1), shape).requireGrad();
}

/** The geometry of a convolution of square images with a square kernel (the same stride, padding and dilation on both axes). */
export function squareConv(
  batch: number, channels: number, size: number, outChannels: number, kernel: number, stride: number, pad: number, dilation: number, groups: number,
): ConvGeometry {
  return convGeometry([batch, channels, size, size], [outChannels, channels / groups, kernel, kernel], { stride, padding: pad, dilation, groups });
}
