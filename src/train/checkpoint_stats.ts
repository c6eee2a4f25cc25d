/**
 * The numerics lab on a trained checkpoint: one training batch through its weights (forward and
 * backward, no update), under its recipe with the scales its session holds, or under another
 * recipe (how would these trained tensors fit E4M3?). Nothing is written to the checkpoint.
 */
import { backward } from '../autograd/index.js';
import { epochOrder, makeBatch, trainingSubset, type Dataset } from '../data/index.js';
import { SettingError } from '../errors.js';
import type { FormatLike } from '../formats/index.js';
import { softmaxCrossEntropy } from '../ops/index.js';
import { savedCriterion } from './criterion.js';
import { NumericsLab, type Recipe } from '../quant/index.js';
import { readCheckpointRecord } from './checkpoint.js';
import { checkpointModel } from './evaluation.js';
import { statsDocument, type StatsDocument } from './stats_report.js';
import type { TrainConfig } from './trainer.js';

export interface CheckpointStatsOptions {
  /** Another recipe to look under; default the checkpoint's. */
  recipe?: Recipe;
  /** The model the caller expects the checkpoint to hold: another one is an error. */
  model?: string;
  formats?: readonly FormatLike[];
}

/** Statistics of one batch through a checkpoint's weights: records of step 0. */
export function checkpointStats(file: string, dataset: Dataset, options: CheckpointStatsOptions = {}, loaded = readCheckpointRecord<TrainConfig>(file)): StatsDocument {
  const config = loaded.record.config;
  if (options.model !== undefined && options.model !== config.model) {
    throw new SettingError('model', `${file} holds a ${config.model} model, not ${options.model}; give its model or another checkpoint`);
  }
  const { model, session, recipe } = checkpointModel(file, dataset, { recipe: options.recipe }, loaded);
  const lab = new NumericsLab(session, { formats: options.formats });
  // The first batch of the run's seeded order, as its first step saw it.
  const subset = trainingSubset(dataset.train.count, config.seed, config.maxTrain);
  const size = Math.min(config.batchSize, subset.length);
  const batch = makeBatch(dataset.train, epochOrder(subset, config.seed, 0).subarray(0, size), dataset.normalization, dataset.augmentation, config.seed, 0);
  model.train();
  lab.begin(0);
  let records;
  try {
    const loss = softmaxCrossEntropy(model.call(batch.x), batch.labels, savedCriterion(config, dataset).criterion);
    backward(session.scaleLoss(loss));
  } finally {
    records = lab.end();
    lab.close();
  }
  return statsDocument(config.model, dataset.name, recipe, lab.formats, records);
}
