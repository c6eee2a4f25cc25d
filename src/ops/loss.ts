/**
 * Softmax cross-entropy, for classification ([N, C] logits, N labels) and per pixel for
 * segmentation ([N, C, H, W] logits, N*H*W labels), with label smoothing and an ignore index.
 * The loss is the mean over positions whose label is not ignored; with every position ignored it
 * is 0 (and so is its gradient), not NaN.
 */
import { record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import { Tensor, formatShape, shapeSize } from '../tensor/index.js';

export interface CrossEntropyOptions {
  /** Weight moved from the true class to a uniform distribution over all classes. Default 0. */
  labelSmoothing?: number;
  /** Labels equal to this are left out. Default -100 (PyTorch's). */
  ignoreIndex?: number;
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
  let count = 0;
  for (let i = 0; i < positions; i++) {
    const y = labels[i];
    if (y === ignore) continue;
    if (!Number.isInteger(y) || y < 0 || y >= classes) {
      throw new InvalidArgumentError(
        `softmaxCrossEntropy: label ${y} at position ${i} is outside 0..${classes - 1} and is not the ignore index ${ignore}`,
      );
    }
    count++;
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
      for (let c = 0; c < classes; c++) {
        const target = (c === y ? 1 - smoothing : 0) + smoothing / classes;
        total -= target * (logits.data[at(c)] - logZ);
        grad[at(c)] = (probs[c] / z - target) / count;
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
