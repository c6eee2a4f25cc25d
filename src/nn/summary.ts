/**
 * A one-line-per-layer summary of a model, as the summaries users know from torchinfo and Keras:
 * it runs one forward pass in eval mode without recording gradients and lists every leaf layer
 * that ran, in order, with its output shape, its own parameters and its multiply-accumulates.
 */
import { noGrad } from '../autograd/index.js';
import type { Tensor } from '../tensor/index.js';
import { Module, withForwardTrace } from './module.js';

export interface SummaryRow {
  /** Dotted path of the layer, e.g. `layer1.0.conv1`. */
  name: string;
  /** The layer's own description, e.g. `Conv2d(64, 64, k=3x3, s=1)`. */
  layer: string;
  outputShape: number[];
  params: number;
  macs: number;
}

export interface ModelSummary {
  rows: SummaryRow[];
  totalParams: number;
  totalMacs: number;
  inputShape: number[];
}

export function summarize(model: Module, input: Tensor): ModelSummary {
  const paths = new Map(model.namedModules().map(([path, m]) => [m, path] as const));
  const rows: SummaryRow[] = [];
  const wasTraining = model.training;
  model.eval();
  try {
    withForwardTrace(
      (module, inputs, output) => {
        if (module.namedChildren().length > 0) return;
        rows.push({
          name: paths.get(module) ?? '?',
          layer: module.describe(),
          outputShape: [...output.shape],
          params: module.numParameters(),
          macs: module.macs(inputs, output),
        });
      },
      () => noGrad(() => model.call(input)),
    );
  } finally {
    model.train(wasTraining);
  }
  return {
    rows,
    totalParams: model.numParameters(),
    totalMacs: rows.reduce((n, r) => n + r.macs, 0),
    inputShape: [...input.shape],
  };
}
