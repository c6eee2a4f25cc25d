/** Fit a model to one tiny fixed batch with AdamW: the "can it learn at all" check for models. */
import { backward } from '../../src/autograd/index.js';
import type { Module } from '../../src/nn/index.js';
import { softmaxCrossEntropy } from '../../src/ops/index.js';
import { AdamW } from '../../src/optim/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

export interface OverfitResult {
  first: number;
  last: number;
}

/**
 * `labels` has one entry per example (classification) or per pixel (segmentation). Batch norm stays
 * in training mode, as it is while training.
 */
export function overfit(model: Module, input: Tensor, labels: Int32Array, steps: number, lr = 0.01): OverfitResult {
  const optimizer = new AdamW(model.namedParameters(), { lr, weightDecay: 0 });
  model.train();
  let first = NaN;
  let last = NaN;
  for (let step = 0; step < steps; step++) {
    optimizer.zeroGrad();
    const loss = softmaxCrossEntropy(model.call(input), labels);
    backward(loss);
    optimizer.stepAll();
    if (step === 0) first = loss.item();
    last = loss.item();
  }
  return { first, last };
}

export function randomInput(shape: number[], seed: number): Tensor {
  return Tensor.randn(shape, new Generator(seed));
}

export function randomLabels(count: number, classes: number, seed: number): Int32Array {
  const g = new Generator(seed);
  return Int32Array.from({ length: count }, () => Math.floor(g.uniform() * classes));
}
