/**
 * The seed's segmentation table at our scale (docs/segmentation.md): UNet and Fast-SCNN on
 * mnist-seg under fp32, sfp8, fp8 and hybrid, over several seeds; mean and spread of mIoU and pixel
 * accuracy, and the mean per-class IoU. Each run is an ordinary training run (`octet train` with
 * the settings below) in OUT/MODEL/RECIPE/seed-S; a run that finished is read back, not repeated,
 * and an interrupted one resumes from its checkpoint, so the table can be built over several
 * sittings. Written: OUT/table.md and OUT/table.json, printed too.
 *
 *   npm run experiment:segtable -- --models unet --seeds 1,2,3
 *   npm run experiment:segtable -- --models fastscnn --seeds 1,2,3
 *
 * Flags (defaults): --models unet,fastscnn, --recipes fp32,sfp8,fp8,hybrid, --seeds 1,2,3,
 * --out runs/segtable, --data mnist-seg (or mnist-seg-large: its runs and table go to OUT/mnist-seg-large),
 * and the training settings of docs/segmentation.md's one-command runs:
 * --epochs (unet 3, fastscnn 1), --max-train (all 6000), --batch-size 16, --lr 0.003, --warmup 50, --class-weights median,
 * --width 8 (unet), --max-test 500.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { criterionPart } from '../src/cli/train_command.js';
import { loadDataset, loadRecipe, train, CHECKPOINT_FILE, type TrainConfig, type TrainResult } from '../src/index.js';

const { values: flags } = parseArgs({
  options: {
    models: { type: 'string', default: 'unet,fastscnn' },
    recipes: { type: 'string', default: 'fp32,sfp8,fp8,hybrid' },
    seeds: { type: 'string', default: '1,2,3' },
    epochs: { type: 'string' },
    'batch-size': { type: 'string', default: '16' },
    lr: { type: 'string', default: '0.003' },
    warmup: { type: 'string', default: '50' },
    'class-weights': { type: 'string', default: 'median' },
    width: { type: 'string', default: '8' },
    'max-test': { type: 'string', default: '500' },
    'max-train': { type: 'string' },
    out: { type: 'string', default: 'runs/segtable' },
    data: { type: 'string', default: 'mnist-seg' },
  },
});

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const models = list(flags.models!);
const recipes = list(flags.recipes!);
const seeds = list(flags.seeds!).map(Number);
const EPOCHS: Record<string, number> = { unet: 3, fastscnn: 1 };
const data = flags.data!;
if (data !== 'mnist-seg' && data !== 'mnist-seg-large') throw new Error(`--data ${data}: this table is for mnist-seg or mnist-seg-large`);
const dataset = await loadDataset(data);
// Runs of mnist-seg-large live beside, not over, those of mnist-seg.
const runRoot = data === 'mnist-seg' ? flags.out! : join(flags.out!, data);

interface Row { model: string; recipe: string; seed: number; miou: number; pixelAccuracy: number; iou: number[]; seconds: number; steps: number }
const rows: Row[] = [];

function configFor(model: string, recipe: string, seed: number): TrainConfig {
  return {
    model, modelOptions: model === 'unet' ? { width: Number(flags.width) } : {}, data, recipe: loadRecipe(recipe),
    epochs: flags.epochs ? Number(flags.epochs) : EPOCHS[model] ?? 4, batchSize: Number(flags['batch-size']), lr: Number(flags.lr), weightDecay: 0.0005,
    warmupSteps: Number(flags.warmup), optimizer: 'adamw', seed, maxTrain: flags['max-train'] ? Number(flags['max-train']) : undefined, maxTest: Number(flags['max-test']), checkpointEvery: 500, logEvery: 50,
    ...criterionPart({ classWeights: flags['class-weights'] }),
  };
}

for (const model of models) {
  for (const recipe of recipes) {
    for (const seed of seeds) {
      const out = join(runRoot, model, recipe, `seed-${seed}`);
      const done = join(out, 'row.json');
      if (existsSync(done)) {
        const row = JSON.parse(readFileSync(done, 'utf8')) as Row;
        // JSON has no NaN: a class absent from labels and predictions was written as null.
        rows.push({ ...row, iou: row.iou.map((v) => v ?? NaN), seconds: row.seconds ?? NaN });
        continue;
      }
      const config = configFor(model, recipe, seed);
      const resume = existsSync(join(out, CHECKPOINT_FILE));
      const started = performance.now();
      const result: TrainResult = await train(config, dataset, out, { resume });
      const final = result.final!;
      const row: Row = {
        model, recipe, seed, miou: final.value, pixelAccuracy: final.pixelAccuracy!, iou: final.iou!, steps: result.steps,
        seconds: resume ? NaN : (performance.now() - started) / 1000,
      };
      writeFileSync(done, JSON.stringify(row) + '\n');
      rows.push(row);
      console.log(`${model} ${recipe} seed ${seed}: mIoU ${(100 * row.miou).toFixed(2)}%, pixel accuracy ${(100 * row.pixelAccuracy).toFixed(2)}%, ${row.seconds.toFixed(0)} s`);
    }
  }
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: number[]) => (v.length < 2 ? 0 : Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1)));
const pct = (v: number) => (100 * v).toFixed(2);
const lines: string[] = [];
const summary: object[] = [];
for (const model of models) {
  const c0 = configFor(model, 'fp32', seeds[0]);
  lines.push(`### ${model}${model === 'unet' ? ` width ${flags.width}` : ''}: ${c0.epochs} epochs of ${data} (${c0.maxTrain ?? 6000} canvases), batch ${c0.batchSize}, lr ${c0.lr}, ` +
    `class weights ${flags['class-weights']}, seeds ${seeds.join(', ')}, ${flags['max-test']} test canvases`, '');
  lines.push('| recipe | mIoU % (mean ± sd) | min - max | vs fp32 | pixel acc % (mean ± sd) | s per run |', '|---|---:|---:|---:|---:|---:|');
  const base = rows.filter((r) => r.model === model && r.recipe === recipes[0]);
  for (const recipe of recipes) {
    const rs = rows.filter((r) => r.model === model && r.recipe === recipe);
    if (!rs.length) continue;
    const m = rs.map((r) => r.miou);
    const p = rs.map((r) => r.pixelAccuracy);
    const secs = rs.map((r) => r.seconds).filter(Number.isFinite);
    const delta = recipe === recipes[0] ? '' : `${mean(m) - mean(base.map((r) => r.miou)) >= 0 ? '+' : ''}${(100 * (mean(m) - mean(base.map((r) => r.miou)))).toFixed(2)}`;
    lines.push(`| ${recipe} | ${pct(mean(m))} ± ${pct(sd(m))} | ${pct(Math.min(...m))} - ${pct(Math.max(...m))} | ${delta} | ${pct(mean(p))} ± ${pct(sd(p))} | ${secs.length ? mean(secs).toFixed(0) : '-'} |`);
    summary.push({ model, recipe, seeds: rs.map((r) => r.seed), miou: m, pixelAccuracy: p, meanIou: rs[0].iou.map((_, c) => mean(rs.map((r) => r.iou[c]))) });
  }
  lines.push('', `Mean IoU % per class (class 0 background, class 1 + d the digit d):`, '', `| recipe | ${Array.from({ length: 11 }, (_, c) => c).join(' | ')} |`, `|---|${Array(11).fill('---:').join('|')}|`);
  for (const recipe of recipes) {
    const rs = rows.filter((r) => r.model === model && r.recipe === recipe);
    if (rs.length) lines.push(`| ${recipe} | ${rs[0].iou.map((_, c) => (100 * mean(rs.map((r) => r.iou[c]))).toFixed(1)).join(' | ')} |`);
  }
  lines.push('');
}
writeFileSync(join(runRoot, 'table.md'), lines.join('\n'));
writeFileSync(join(runRoot, 'table.json'), JSON.stringify({ rows, summary }, null, 2) + '\n');
console.log(lines.join('\n'));
