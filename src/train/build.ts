/** The model of a run, built from its config for its data set. */
import type { Dataset } from '../data/index.js';
import { buildModel, useFloat32Compute, type Module } from '../nn/index.js';
import type { TrainConfig } from './trainer.js';

/** The model a config describes, sized for the data set, computing in float32 with convolutions on config.conv. */
export function buildTrainModel(config: Pick<TrainConfig, 'model' | 'modelOptions' | 'seed' | 'conv'>, dataset: Dataset): Module {
  const model = buildModel(config.model, { ...config.modelOptions, classes: dataset.classes, inChannels: dataset.train.channels, seed: config.seed });
  useFloat32Compute(model, config.conv);
  return model;
}
