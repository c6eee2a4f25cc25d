/**
 * Experiment: block-structured pruning during training against dense, on the same model, seed and
 * data.
 *
 * ResNet-20 (width 16) on MNIST and Fashion-MNIST, one epoch of 4096 examples (64 steps of 64),
 * AdamW with warmup and cosine decay, under the fp32 and fp8 recipes; pruned in 1x1 (unstructured),
 * 4x4, 8x8 and 16x16 blocks and whole filters to 50%, 75% and 90% of each layer's blocks (first
 * and last layers dense), gradually: the cubic schedule from 0 at step 8 to the final sparsity at
 * step 40, masks recomputed every 8 steps, then 24 steps at the final masks. Printed: top-1 on 2000
 * test images per configuration, and the speed-ups of a pruned model at that block shape and
 * sparsity (sparseStepBench: ResNet-20 on 1x28x28 at batch 64, first and last layers dense, an
 * inference forward and a training step with the block-sparse products against the same model on
 * the dense products; the fp8 preset's e6m9 chunked accumulation has no sparse kernel, so its
 * pruned layers run dense: its speed-ups are those of the `hybrid` recipe's operands, E4M3 with
 * float32 accumulation, shown beside them). A JSON copy goes to runs/sparsity/results.json.
 *
 *   npm run experiment:sparsity            (about half an hour on 2 cores)
 *   npm run experiment:sparsity -- mnist   (one data set)
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '../src/data/index.js';
import { sparseStepBench } from '../src/bench/index.js';
import { presetRecipe } from '../src/quant/index.js';
import { train } from '../src/train/index.js';

const DATASETS = (process.argv[2] ?? 'mnist,fashion-mnist').split(',').filter(Boolean);
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

// Speed-ups of a pruned ResNet-20 (1x28x28, batch 64): inference and training step, per block
// shape and sparsity, for float32 operands and FP8 operands with float32 accumulation.
interface Speed {
  recipe: string;
  block: string;
  sparsity: number;
  inference: number;
  train: number;
}
const speeds: Speed[] = [];
for (const [label, recipe] of [['fp32', 'fp32'], ['fp8', 'hybrid']] as const) {
  for (const block of BLOCKS) {
    for (const sparsity of SPARSITIES) {
      const steps = sparseStepBench(2, {
        rounds: 8, block, sparsity, model: 'resnet20', size: 28, inChannels: 1, classes: 10, pruneFirst: false, recipes: [[recipe, presetRecipe(recipe)]],
      });
      const of = (step: string) => steps.find((r) => r.step === step)!.speedup;
      speeds.push({ recipe: label, block, sparsity, inference: of('inference'), train: of('train_step') });
      console.log(`speed ${label} (${recipe}) ${block} ${sparsity}: inference x${of('inference').toFixed(2)}, training step x${of('train_step').toFixed(2)}`);
    }
  }
}
mkdirSync('runs/sparsity', { recursive: true });
writeFileSync('runs/sparsity/results.json', JSON.stringify({ accuracy: rows, speed: speeds }, null, 2) + '\n');

console.log('\nspeed-ups of a pruned model against dense, inference / training step (50 / 75 / 90%)');
console.log('| operands | ' + BLOCKS.map((b) => `${b} 50 / 75 / 90%`).join(' | ') + ' |');
console.log('|---|' + BLOCKS.map(() => '---').join('|') + '|');
for (const label of ['fp32', 'fp8']) {
  const cell = (b: string) => SPARSITIES.map((s) => {
    const r = speeds.find((x) => x.recipe === label && x.block === b && x.sparsity === s)!;
    return `${r.inference.toFixed(2)}/${r.train.toFixed(2)}`;
  }).join(' ; ');
  console.log(`| ${label === 'fp32' ? 'fp32' : 'E4M3, fp32 accumulation (hybrid)'} | ` + BLOCKS.map(cell).join(' | ') + ' |');
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
