/**
 * Experiment: the recipes of today's hardware against the seed's, on the same model, seed and data.
 *
 * ResNet-20 (width 16) on Fashion-MNIST and MNIST, one epoch of 4096 examples (64 steps of 64),
 * AdamW with warmup and cosine decay, evaluated on 2000 test images, with fp32, fp8, hybrid,
 * rowwise, mxfp8, deepseek-v3, mxfp6 and mxfp4. Printed per data set: top-1, the run's seconds,
 * and the share of nonzero values that underflowed to zero, per tensor class (weights,
 * activations, errors; mean over layers and logged steps; "-" where the class stays float32).
 * A JSON copy goes to runs/block_recipes/results.json.
 *
 *   npm run experiment:recipes            (about 20 minutes on 2 cores)
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '../src/data/index.js';
import { presetRecipe } from '../src/quant/index.js';
import { train } from '../src/train/index.js';

const RECIPES = ['fp32', 'fp8', 'hybrid', 'rowwise', 'mxfp8', 'deepseek-v3', 'mxfp6', 'mxfp4'];
const DATASETS = (process.argv[2] ?? 'fashion-mnist,mnist').split(',');
const CLASSES = ['weights', 'activations', 'errors'] as const;

interface Row {
  data: string;
  recipe: string;
  top1: number;
  seconds: number;
  underflow: Record<(typeof CLASSES)[number], number | null>;
}

function underflowShares(metricsFile: string): Row['underflow'] {
  const sums = new Map<string, { total: number; count: number }>();
  for (const line of readFileSync(metricsFile, 'utf8').trim().split('\n')) {
    const record = JSON.parse(line) as { type: string; tensor?: string; underflow?: number };
    if (record.type !== 'numerics' || record.tensor === undefined || record.underflow === undefined) continue;
    const entry = sums.get(record.tensor) ?? { total: 0, count: 0 };
    entry.total += record.underflow;
    entry.count++;
    sums.set(record.tensor, entry);
  }
  const share = (cls: string) => {
    const entry = sums.get(cls);
    return entry && entry.count ? entry.total / entry.count : null;
  };
  return { weights: share('weights'), activations: share('activations'), errors: share('errors') };
}

function percent(x: number | null, digits = 2): string {
  return x === null ? '-' : `${(100 * x).toFixed(digits)}%`;
}

const rows: Row[] = [];
for (const data of DATASETS) {
  const dataset = await loadDataset(data);
  for (const recipe of RECIPES) {
    const out = mkdtempSync(join(tmpdir(), `octet-recipes-${recipe}-`));
    const started = performance.now();
    const result = await train(
      {
        model: 'resnet20', modelOptions: {}, data, recipe: presetRecipe(recipe), epochs: 1, batchSize: 64, lr: 0.01, weightDecay: 0,
        optimizer: 'adamw', seed: 1, maxTrain: 4096, maxTest: 2000, checkpointEvery: 0, logEvery: 8,
      },
      dataset,
      out,
    );
    const row: Row = { data, recipe, top1: result.final!.value, seconds: (performance.now() - started) / 1000, underflow: underflowShares(join(out, 'metrics.jsonl')) };
    rows.push(row);
    console.log(`${data} ${recipe}: top-1 ${percent(row.top1)} in ${row.seconds.toFixed(1)} s`);
  }
}

console.log('\n| data | recipe | top-1 | seconds | underflow: weights | activations | errors |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.data} | ${r.recipe} | ${percent(r.top1)} | ${r.seconds.toFixed(1)} | ${percent(r.underflow.weights)} | ${percent(r.underflow.activations)} | ${percent(r.underflow.errors)} |`);
}
mkdirSync('runs/block_recipes', { recursive: true });
writeFileSync('runs/block_recipes/results.json', JSON.stringify(rows, null, 2) + '\n');
