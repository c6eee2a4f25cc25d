/**
 * Experiment: block-structured pruning during training against dense, on the same model, seed and
 * data.
 *
 * ResNet-20 (width 16) on MNIST and Fashion-MNIST, one epoch of 4096 examples (64 steps of 64),
 * AdamW with warmup and cosine decay, under the fp32 and fp8 recipes; pruned in 1x1 (unstructured),
 * 4x4, 8x8 and 16x16 blocks and whole filters to 50%, 75% and 90% of each layer's blocks (first
 * and last layers dense), gradually: the cubic schedule from 0 at step 8 to the final sparsity at
 * step 40, masks recomputed every 8 steps, then 24 steps at the final masks. Printed: top-1 on 2000
 * test images per configuration. A JSON copy goes to runs/sparsity/results.json.
 *
 *   npm run experiment:sparsity            (about half an hour on 2 cores)
 *   npm run experiment:sparsity -- mnist   (one data set)
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '../src/data/index.js';
import { presetRecipe } from '../src/quant/index.js';
import { train } from '../src/train/index.js';

const DATASETS = (process.argv[2] ?? 'mnist,fashion-mnist').split(',');
const RECIPES = ['fp32', 'fp8'];
const BLOCKS = ['1x1', '4x4', '8x8', '16x16', 'filter'];
const SPARSITIES = [0.5, 0.75, 0.9];

interface Row {
  data: string;
  recipe: string;
  block: string;
  sparsity: number;
  top1: number;
  seconds: number;
}

const rows: Row[] = [];
for (const data of DATASETS) {
  const dataset = await loadDataset(data);
  for (const recipe of RECIPES) {
    const configs: Array<[string, number]> = [['dense', 0], ...BLOCKS.flatMap((b) => SPARSITIES.map((s) => [b, s] as [string, number]))];
    for (const [block, sparsity] of configs) {
      const out = mkdtempSync(join(tmpdir(), `octet-sparsity-${recipe}-`));
      const started = performance.now();
      const result = await train(
        {
          model: 'resnet20', modelOptions: {}, data, recipe: presetRecipe(recipe), epochs: 1, batchSize: 64, lr: 0.01, weightDecay: 0,
          optimizer: 'adamw', seed: 1, maxTrain: 4096, maxTest: 2000, checkpointEvery: 0, logEvery: 16,
          ...(block === 'dense' ? {} : { prune: { block, sparsity, start: 8, end: 40, every: 8 } }),
        },
        dataset,
        out,
      );
      const row: Row = { data, recipe, block, sparsity, top1: result.final!.value, seconds: (performance.now() - started) / 1000 };
      rows.push(row);
      console.log(`${data} ${recipe} ${block} ${sparsity}: top-1 ${(100 * row.top1).toFixed(2)}% in ${row.seconds.toFixed(1)} s`);
      mkdirSync('runs/sparsity', { recursive: true });
      writeFileSync('runs/sparsity/results.json', JSON.stringify(rows, null, 2) + '\n');
    }
  }
}

for (const data of DATASETS) {
  console.log(`\n${data}: top-1 (dense, then each block shape at 50 / 75 / 90%)`);
  console.log('| recipe | dense | ' + BLOCKS.map((b) => `${b} 50 / 75 / 90%`).join(' | ') + ' |');
  console.log('|---|---|' + BLOCKS.map(() => '---').join('|') + '|');
  for (const recipe of RECIPES) {
    const of = (block: string, s: number) => rows.find((r) => r.data === data && r.recipe === recipe && r.block === block && r.sparsity === s)!;
    const pct = (r: Row) => (100 * r.top1).toFixed(2);
    console.log(`| ${recipe} | ${pct(of('dense', 0))} | ` + BLOCKS.map((b) => SPARSITIES.map((s) => pct(of(b, s))).join(' / ')).join(' | ') + ' |');
  }
}
