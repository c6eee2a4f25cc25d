/**
 * Softmax cross-entropy, for classification ([N, C] logits, N labels) and per pixel for
 * segmentation ([N, C, H, W] logits, N*H*W labels), with label smoothing and an ignore index.
 * The loss is the mean over positions whose label is not ignored; with every position ignored it
 * is 0 (and so is its gradient), not NaN.
 *
 * Class weights (`weights`, one per class) follow PyTorch's cross_entropy(weight=...): position i
 * with label y contributes w[y] * (-log p_y), and the sum is divided by the sum of w[y] over the
 * positions (a weighted mean, so weights that are all equal change nothing). With label smoothing
 * e as well, position i contributes (1 - e) w[y] (-log p_y) + (e / C) sum_c w[c] (-log p_c), over
 * the same denominator (PyTorch's definition). A zero total weight gives 0, not NaN.
 */
import { record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import { Tensor, formatShape, shapeSize } from '../tensor/index.js';

export interface CrossEntropyOptions {
  /** Weight moved from the true class to a uniform distribution over all classes. Default 0. */
  labelSmoothing?: number;
  /** Labels equal to this are left out. Default -100 (PyTorch's). */
  ignoreIndex?: number;
  /** One non-negative, finite weight per class (PyTorch's `weight`). Default: all 1. */
  weights?: ArrayLike<number>;
}

interface CrossEntropySaved {
  /** Softmax minus the target distribution, divided by the count (zero rows for ignored). */
  grad: Float32Array;
}

export function softmaxCrossEntropy(logits: Tensor, labels: Int32Array | readonly number[], options: CrossEntropyOptions = {}): Tensor {
  if (logits.rank < 2) throw new InvalidArgumentError(`softmaxCrossEntropy: logits ${formatShape(logits.shape)}; expected [N, C] or [N, C, ...]`);
  const [batch, classes] = logits.shape;
  const spatial = shapeSize(logits.shape.slice(2));
  const positions = batch * spatial;
  if (labels.length !== positions) {
    throw new InvalidArgumentError(
      `softmaxCrossEntropy: ${labels.length} labels for logits ${formatShape(logits.shape)}; expected ${positions} (one per ${spatial > 1 ? 'pixel' : 'example'})`,
    );
  }
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1)) throw new InvalidArgumentError(`softmaxCrossEntropy: labelSmoothing is ${smoothing}; expected 0..1`);
  const ignore = options.ignoreIndex ?? -100;
  const weights = options.weights;
  if (weights !== undefined) {
    if (weights.length !== classes) throw new InvalidArgumentError(`softmaxCrossEntropy: ${weights.length} class weights for ${classes} classes; give one weight per class`);
    for (let c = 0; c < classes; c++) {
      if (!(Number.isFinite(weights[c]) && weights[c] >= 0)) throw new InvalidArgumentError(`softmaxCrossEntropy: class weight ${c} is ${weights[c]}; expected a finite number >= 0`);
    }
  }
  const weightOf = (c: number) => (weights === undefined ? 1 : weights[c]);
  let weightSum = 0;
  for (let c = 0; c < classes; c++) weightSum += weightOf(c);
  let count = 0;
  for (let i = 0; i < positions; i++) {
    const y = labels[i];
    if (y === ignore) continue;
    if (!Number.isInteger(y) || y < 0 || y >= classes) {
      throw new InvalidArgumentError(
        `softmaxCrossEntropy: label ${y} at position ${i} is outside 0..${classes - 1} and is not the ignore index ${ignore}`,
      );
    }
    count += weightOf(y);
  }
  const grad = new Float32Array(logits.size);
  let total = 0;
  const probs = new Float64Array(classes);
  for (let n = 0; n < batch; n++) {
    for (let s = 0; s < spatial; s++) {
      const y = labels[n * spatial + s];
      if (y === ignore) continue;
      const at = (c: number) => (n * classes + c) * spatial + s;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) max = Math.max(max, logits.data[at(c)]);
      let z = 0;
      for (let c = 0; c < classes; c++) {
        probs[c] = Math.exp(logits.data[at(c)] - max);
        z += probs[c];
      }
      const logZ = Math.log(z) + max;
      if (weights === undefined) {
        for (let c = 0; c < classes; c++) {
          const target = (c === y ? 1 - smoothing : 0) + smoothing / classes;
          total -= target * (logits.data[at(c)] - logZ);
          grad[at(c)] = count ? (probs[c] / z - target) / count : 0;
        }
      } else {
        // d/dz_c of the weighted term: p_c ((1 - e) w_y + (e / C) sum_k w_k) - (1 - e) w_y [c = y] - (e / C) w_c.
        const wy = (1 - smoothing) * weights[y];
        const mass = wy + (smoothing / classes) * weightSum;
        for (let c = 0; c < classes; c++) {
          const target = (c === y ? wy : 0) + (smoothing / classes) * weights[c];
          total -= target * (logits.data[at(c)] - logZ);
          grad[at(c)] = count ? ((probs[c] / z) * mass - target) / count : 0;
        }
      }
    }
  }
  return record('softmaxCrossEntropy', [logits], Tensor.scalar(count ? total / count : 0), { grad } satisfies CrossEntropySaved);
}

registerGradient<CrossEntropySaved>('softmaxCrossEntropy', (node, g) => {
  const out = new Float32Array(node.saved.grad.length);
  for (let i = 0; i < out.length; i++) out[i] = node.saved.grad[i] * g[0];
  return [out];
});
