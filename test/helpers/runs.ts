/** Small training runs for the train tests: a narrow ResNet-20 on real MNIST. */
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { presetRecipe } from '../../src/quant/index.js';
import type { TrainConfig } from '../../src/train/index.js';

export function smallRun(recipe: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  return {
    model: 'resnet20', modelOptions: { width: 4 }, data: 'mnist', recipe: presetRecipe(recipe),
    epochs: 2, batchSize: 32, lr: 0.01, weightDecay: 0, optimizer: 'adamw', seed: 3,
    maxTrain: 256, maxTest: 200, checkpointEvery: 0, logEvery: 1, ...overrides,
  };
}

let mnist: Dataset | null = null;

/** MNIST, loaded once per test file. */
export async function mnistData(): Promise<Dataset> {
  return (mnist ??= await loadDataset('mnist'));
}
