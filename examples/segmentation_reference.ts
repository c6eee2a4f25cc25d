/**
 * Experiment: Octet's segmentation training against PyTorch's, step by step (issue 24).
 *
 * Exports the mnist-seg examples a run uses, the batch order of every step and Octet's initial
 * weights into OUT/export, trains the model with Octet (`train`, the function `octet train` runs)
 * and with examples/segmentation_torch.py (PyTorch, the same architecture loaded with the same
 * weights, the same AdamW, cosine schedule with warmup, batches and loss), and writes both
 * learning curves side by side to OUT/curves.json and OUT/curves.md (loss per step, mIoU and pixel
 * accuracy per epoch). The PyTorch side runs only where `/usr/bin/python3 -c "import torch"` works
 * (Debian: apt-get install python3-torch); otherwise the Octet curve and the export are written.
 *
 *   npm run experiment:segmentation -- --model unet --width 16 --max-train 4096 --epochs 3
 *   npm run experiment:segmentation -- --model fastscnn --max-train 4096 --epochs 3 --out runs/segref-fastscnn
 *
 * Flags (defaults): --model unet, --width/--depth (model defaults), --data mnist-seg, --recipe
 * fp32, --epochs 1, --batch-size 64, --lr 0.002, --weight-decay 0.0005, --warmup (5% of steps),
 * --seed 1, --max-train (all), --max-test 500, --out runs/segref, --python /usr/bin/python3,
 * --skip-torch, --skip-octet, --data-count TRAIN,TEST (mnist-seg canvases), --class-weights balanced|median|LIST.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { epochOrder, trainingSubset } from '../src/data/batches.js';
import { loadDataset } from '../src/data/index.js';
import { presetRecipe } from '../src/quant/index.js';
import { criterionPart } from '../src/cli/train_command.js';
import { buildTrainModel, runCriterion, train, writeSafetensors } from '../src/train/index.js';
import { f32Tensor } from '../src/train/safetensors.js';
import type { StoredTensor, TrainConfig } from '../src/train/index.js';

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string', default: 'unet' },
    width: { type: 'string' },
    depth: { type: 'string' },
    data: { type: 'string', default: 'mnist-seg' },
    'data-count': { type: 'string' },
    recipe: { type: 'string', default: 'fp32' },
    epochs: { type: 'string', default: '1' },
    'batch-size': { type: 'string', default: '64' },
    lr: { type: 'string', default: '0.002' },
    'weight-decay': { type: 'string', default: '0.0005' },
    warmup: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'max-train': { type: 'string' },
    'max-test': { type: 'string', default: '500' },
    'class-weights': { type: 'string' },
    out: { type: 'string', default: 'runs/segref' },
    python: { type: 'string', default: '/usr/bin/python3' },
    'skip-torch': { type: 'boolean', default: false },
    'skip-octet': { type: 'boolean', default: false },
  },
});

const int = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number.parseInt(v, 10));
const out = flags.out!;
const exportDir = join(out, 'export');
const dataCount = flags['data-count']?.split(',').map(Number) as [number, number] | undefined;
const dataset = await loadDataset(flags.data!, dataCount ? { mnistSegCount: dataCount } : {});
if (dataset.task !== 'segmentation') throw new Error(`--data ${flags.data} is a ${dataset.task} set; this experiment compares segmentation training`);
const config: TrainConfig = {
  model: flags.model!, modelOptions: { width: int(flags.width), depth: int(flags.depth) }, data: flags.data!,
  recipe: presetRecipe(flags.recipe!), epochs: int(flags.epochs)!, batchSize: int(flags['batch-size'])!, lr: Number(flags.lr),
  weightDecay: Number(flags['weight-decay']), warmupSteps: int(flags.warmup), optimizer: 'adamw', seed: int(flags.seed)!,
  maxTrain: int(flags['max-train']), maxTest: int(flags['max-test']), checkpointEvery: 0, logEvery: 16,
  ...criterionPart({ classWeights: flags['class-weights'] }),
};

// --- the export both sides read --------------------------------------------------------------
mkdirSync(exportDir, { recursive: true });
const subset = trainingSubset(dataset.train.count, config.seed, config.maxTrain);
const stepsPerEpoch = Math.max(1, Math.floor(subset.length / config.batchSize));
const steps = stepsPerEpoch * config.epochs;
const batch = Math.min(config.batchSize, subset.length);
const order = new Int32Array(steps * batch);
for (let e = 0; e < config.epochs; e++) {
  const o = epochOrder(subset, config.seed, e);
  for (let s = 0; s < stepsPerEpoch; s++) order.set(o.subarray(s * batch, (s + 1) * batch), (e * stepsPerEpoch + s) * batch);
}
const testCount = Math.min(dataset.test.count, config.maxTest ?? dataset.test.count);
const { channels, height, width } = dataset.train;
const plane = height * width;
writeFileSync(join(exportDir, 'train-images.u8'), dataset.train.images);
writeFileSync(join(exportDir, 'train-masks.u8'), dataset.train.masks!);
writeFileSync(join(exportDir, 'test-images.u8'), dataset.test.images.subarray(0, testCount * channels * plane));
writeFileSync(join(exportDir, 'test-masks.u8'), dataset.test.masks!.subarray(0, testCount * plane));
writeFileSync(join(exportDir, 'order.i32'), new Uint8Array(order.buffer));
const model = buildTrainModel(config, dataset);
const init = new Map<string, StoredTensor>();
for (const [name, t] of model.stateDict()) init.set(name, f32Tensor(t.data, t.shape));
writeSafetensors(join(exportDir, 'init.safetensors'), init);
const warmupSteps = Math.min(steps, config.warmupSteps ?? Math.round(steps * 0.05));
const weights = runCriterion(dataset, config.classWeights, subset).weights;
writeFileSync(join(exportDir, 'meta.json'), JSON.stringify({
  classes: dataset.classes, ignoreIndex: dataset.ignoreIndex ?? -100, channels, height, width,
  model: config.model, modelWidth: config.modelOptions.width ?? null, modelDepth: config.modelOptions.depth ?? null,
  trainCount: dataset.train.count, testCount, mean: dataset.normalization.mean, std: dataset.normalization.std,
  steps, stepsPerEpoch, batchSize: batch, lr: config.lr, weightDecay: config.weightDecay, warmupSteps, seed: config.seed,
  threads: 2, evalBatch: 64, classWeights: weights ? Array.from(weights) : null,
}, null, 2) + '\n');

interface Curve { loss: number[]; evals: { step: number; miou: number; pixelAccuracy: number; iou: number[]; loss: number }[]; seconds: number }

// --- Octet ------------------------------------------------------------------------------------
let octet: Curve | null = null;
const octetFile = join(out, 'octet.json');
if (!flags['skip-octet']) {
  const loss: number[] = [];
  const started = performance.now();
  rmSync(join(out, 'octet-run'), { recursive: true, force: true });
  const result = await train(config, dataset, join(out, 'octet-run'), { hooks: { onStep: (p) => { loss[p.step - 1] = p.loss; } } });
  octet = {
    loss,
    evals: result.evals.map((e) => ({ step: e.step, miou: e.value, pixelAccuracy: e.pixelAccuracy ?? NaN, iou: e.iou ?? [], loss: e.loss })),
    seconds: (performance.now() - started) / 1000,
  };
  writeFileSync(octetFile, JSON.stringify(octet) + '\n');
  console.log(`octet: ${steps} steps in ${octet.seconds.toFixed(1)} s, final mIoU ${(100 * octet.evals.at(-1)!.miou).toFixed(2)}%`);
} else if (existsSync(octetFile)) {
  octet = JSON.parse(readFileSync(octetFile, 'utf8')) as Curve;
}

// --- PyTorch ----------------------------------------------------------------------------------
let torch: Curve | null = null;
const python = flags.python!;
const hasTorch = !flags['skip-torch'] && spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
if (hasTorch) {
  const started = performance.now();
  const r = spawnSync(python, [join(import.meta.dirname, 'segmentation_torch.py'), exportDir], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`the PyTorch peer failed (exit ${r.status}); its output is above`);
  const lines = readFileSync(join(exportDir, 'torch.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  torch = {
    loss: lines.filter((l) => l.type === 'train').map((l) => l.loss),
    evals: lines.filter((l) => l.type === 'eval').map(({ type: _t, ...l }) => l),
    seconds: (performance.now() - started) / 1000,
  };
  writeFileSync(join(out, 'torch.json'), JSON.stringify(torch) + '\n');
  console.log(`torch: ${steps} steps in ${torch.seconds.toFixed(1)} s, final mIoU ${(100 * torch.evals.at(-1)!.miou).toFixed(2)}%`);
} else if (!flags['skip-torch']) {
  console.log(`torch: not run (${python} cannot import torch); the export in ${exportDir} is ready for examples/segmentation_torch.py`);
}

// --- the comparison ---------------------------------------------------------------------------
if (!octet && !torch) {
  console.log(`exported to ${exportDir}; neither side was run (--skip-octet --skip-torch)`);
  process.exit(0);
}
const pct = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : (100 * v).toFixed(2));
const fix = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(4));
const shown = [...new Set([0, 1, 2, 3, 4, 5, 10, 20, 50, ...Array.from({ length: 20 }, (_, i) => Math.round(((i + 1) * (steps - 1)) / 20))])].filter((s) => s < steps).sort((a, b) => a - b);
const mean = (a: number[], from: number, to: number) => a.slice(from, to).reduce((s, v) => s + v, 0) / Math.max(1, a.slice(from, to).length);
const lines = [
  `# ${config.model}${config.modelOptions.width ? ` width ${config.modelOptions.width}` : ''} on ${config.data}: Octet (${flags.recipe}) against PyTorch`,
  '',
  `${steps} steps of ${batch}, lr ${config.lr}, weight decay ${config.weightDecay}, warmup ${warmupSteps}, seed ${config.seed}, ${testCount} test canvases.`,
  '',
  '| step | Octet loss | PyTorch loss | Octet (mean of 8 to here) | PyTorch (mean of 8) |',
  '|---:|---:|---:|---:|---:|',
  ...shown.map((s) => `| ${s} | ${fix(octet?.loss[s])} | ${fix(torch?.loss[s])} | ${octet ? fix(mean(octet.loss, Math.max(0, s - 7), s + 1)) : '-'} | ${torch ? fix(mean(torch.loss, Math.max(0, s - 7), s + 1)) : '-'} |`),
  '',
  '| after step | Octet mIoU % | PyTorch mIoU % | Octet pixel acc % | PyTorch pixel acc % |',
  '|---:|---:|---:|---:|---:|',
  ...(octet ?? torch)!.evals.map((e, i) => `| ${e.step} | ${pct(octet?.evals[i]?.miou)} | ${pct(torch?.evals[i]?.miou)} | ${pct(octet?.evals[i]?.pixelAccuracy)} | ${pct(torch?.evals[i]?.pixelAccuracy)} |`),
  '',
  `Per-class IoU % at the end (class 0 = background): Octet ${octet?.evals.at(-1)?.iou.map((v) => (100 * v).toFixed(1)).join(' ') ?? '-'}; PyTorch ${torch?.evals.at(-1)?.iou.map((v) => (100 * v).toFixed(1)).join(' ') ?? '-'}.`,
  `Seconds: Octet ${octet?.seconds.toFixed(1) ?? '-'}, PyTorch ${torch?.seconds.toFixed(1) ?? '-'}.`,
];
writeFileSync(join(out, 'curves.md'), lines.join('\n') + '\n');
writeFileSync(join(out, 'curves.json'), JSON.stringify({ config: { ...config, recipe: flags.recipe }, steps, octet, torch }) + '\n');
console.log(lines.join('\n'));
