/**
 * Evaluation: top-1/top-5 (classification) or mIoU (segmentation) on the first test examples, in
 * batches of a given size. A checkpoint is evaluated as it was trained: under its recipe (the
 * forward quantization, with the scales its session holds) and its convolution algorithm, in the
 * batch size its run evaluated with, so it reproduces the run's last evaluation bit for bit.
 * Evaluating changes no state a training run depends on (see LayerQuantState.quantize).
 */
import { noGrad, withActivationRelease } from '../autograd/index.js';
import { makeBatch, type Dataset } from '../data/index.js';
import type { ConvAlgorithm } from '../kernels/index.js';
import type { Module } from '../nn/index.js';
import { softmaxCrossEntropy } from '../ops/index.js';
import { applyRecipe, type QuantSession, type Recipe } from '../quant/index.js';
import { readCheckpointRecord, restoreCheckpoint } from './checkpoint.js';
import { ConfusionMatrix, topKCorrect } from './metrics.js';
import { buildTrainModel } from './build.js';
import { savedCriterion, type Criterion } from './criterion.js';
import type { EvalResult, TrainConfig } from './trainer.js';

/** `criterion`: the run's loss options (its ignore label and class weights); default the data set's ignore label. */
export function evaluate(
  model: Module,
  dataset: Dataset,
  maxTest: number | undefined,
  batchSize: number,
  criterion: Criterion = { ignoreIndex: dataset.ignoreIndex },
): Omit<EvalResult, 'epoch' | 'step'> {
  const split = dataset.test;
  const count = Math.min(split.count, maxTest ?? split.count);
  const classes = dataset.classes;
  const wasTraining = model.training;
  model.eval();
  let top1 = 0;
  let top5 = 0;
  let lossSum = 0;
  let lossCount = 0;
  const confusion = new ConfusionMatrix(classes);
  // Only the logits are read: the model's intermediates go back to the buffer pool as it runs.
  withActivationRelease(() => noGrad(() => {
    for (let start = 0; start < count; start += batchSize) {
      const indices = Int32Array.from({ length: Math.min(batchSize, count - start) }, (_, i) => start + i);
      const batch = makeBatch(split, indices, dataset.normalization, null);
      const logits = model.call(batch.x);
      lossSum += softmaxCrossEntropy(logits, batch.labels, criterion).item() * indices.length;
      lossCount += indices.length;
      if (dataset.task === 'classification') {
        top1 += topKCorrect(logits.data, classes, batch.labels, 1);
        top5 += topKCorrect(logits.data, classes, batch.labels, Math.min(5, classes));
      } else {
        confusion.addSegmentation(logits.data, batch.labels, indices.length, dataset.ignoreIndex ?? -1);
      }
    }
  }));
  model.train(wasTraining);
  const loss = lossSum / Math.max(1, lossCount);
  if (dataset.task === 'classification') return { metric: 'top1', value: top1 / count, top5: top5 / count, loss };
  return { metric: 'miou', value: confusion.meanIou(), iou: confusion.iou(), pixelAccuracy: confusion.pixelAccuracy(), loss };
}

/** The batch size a training run evaluates with. */
export function evalBatchSize(config: Pick<TrainConfig, 'batchSize'>): number {
  return Math.max(config.batchSize, 64);
}

export interface CheckpointEvalOptions {
  /** Another recipe to evaluate under (fp32: no quantization); default the checkpoint's. */
  recipe?: Recipe;
  /** Default: the checkpoint's (direct for checkpoints from before Winograd). */
  conv?: ConvAlgorithm;
  /** Default: the run's. */
  maxTest?: number;
  /** Default: the one its run evaluated with. */
  batchSize?: number;
}

export interface CheckpointEval extends Omit<EvalResult, 'epoch' | 'step'> {
  step: number;
  /** What ran. */
  recipe: string;
  conv: ConvAlgorithm;
  batchSize: number;
  maxTest: number | null;
}

/**
 * A checkpoint's model with its weights, under its recipe (with the scales and step its session
 * holds) or another one (fresh scales), its float32 convolutions as its run ran them.
 */
export function checkpointModel(
  file: string,
  dataset: Dataset,
  options: Pick<CheckpointEvalOptions, 'recipe' | 'conv'>,
  loaded = readCheckpointRecord<TrainConfig>(file),
): { model: Module; session: QuantSession; recipe: Recipe; conv: ConvAlgorithm } {
  const config = loaded.record.config;
  const conv = options.conv ?? config.conv ?? 'direct';
  const recipe = options.recipe ?? config.recipe;
  const model = buildTrainModel({ ...config, conv }, dataset);
  const session = applyRecipe(model, recipe, { seed: config.seed, algorithm: conv });
  // The session's scales and step only where the recipe is the one the checkpoint was trained with.
  restoreCheckpoint(file, loaded, model, null, recipe === config.recipe ? session : null);
  return { model, session, recipe, conv };
}

/** Evaluate a checkpoint as its run evaluated it (see the top of this file), or as `options` say. */
export function evaluateCheckpoint(
  file: string,
  dataset: Dataset,
  options: CheckpointEvalOptions = {},
  loaded = readCheckpointRecord<TrainConfig>(file),
): CheckpointEval {
  const config = loaded.record.config;
  const { model, recipe, conv } = checkpointModel(file, dataset, options, loaded);
  const maxTest = options.maxTest ?? config.maxTest;
  const batchSize = options.batchSize ?? evalBatchSize(config);
  const seen = savedCriterion(config, dataset);
  return { step: loaded.record.step, recipe: recipe.name, conv, batchSize, maxTest: maxTest ?? null, ...evaluate(model, seen.dataset, maxTest, batchSize, seen.criterion) };
}
