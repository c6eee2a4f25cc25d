/**
 * The numerics study of docs/numerics.md: the numerics lab on ResNet-20 on MNIST and UNet on
 * mnist-seg under the fp8 recipe. Each run trains with statistics collected at three steps and
 * stops after the last; printed, as the Markdown tables the doc shows:
 * - per tensor class, how many layers each candidate format holds (narrowest format within 0.1%
 *   loss at every step collected, under its best per-tensor scale), and the recipe's E5M2
 *   underflow under its own scaling (median and worst layer);
 * - per product, the SNR against the float32 shadow (median and worst layer) at each step, and the
 *   operands' share of the error;
 * - the cost of collection: median step time with and without it, from a separate short run of
 *   the same configuration that looks at every other step (so both medians have many samples).
 * The heatmaps are written as PNG into docs/img/ and the full pages stay in runs/numerics/.
 *
 *   npm run experiment:numerics            (about two minutes on 2 cores)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  STATS_FILE, STATS_PAGE, loadDataset, narrowestFormats, presetRecipe, readStats, train, type StatsDocument, type StatTensor, type TrainConfig,
} from '../src/index.js';

interface Study {
  name: string;
  config: TrainConfig;
  data: Parameters<typeof loadDataset>;
  steps: number[];
  /** Heatmaps to save: [tensor class, step] (their order on the page). */
  pictures: [StatTensor, number][];
}

const TENSORS: StatTensor[] = ['weights', 'activations', 'errors', 'weightGradients'];

const base = { epochs: 1, lr: 0.002, weightDecay: 0.0005, optimizer: 'adamw', seed: 0, checkpointEvery: 0, logEvery: 10, modelOptions: {} } as const;

const STUDIES: Study[] = [
  {
    name: 'resnet20-mnist-fp8',
    config: { ...base, model: 'resnet20', data: 'mnist', recipe: presetRecipe('fp8'), batchSize: 64, maxTrain: 12_800, maxTest: 500 },
    data: ['mnist'],
    steps: [0, 50, 199],
    pictures: [['errors', 199], ['activations', 199]],
  },
  {
    name: 'unet-mnistseg-fp8',
    config: { ...base, model: 'unet', modelOptions: { width: 8, depth: 3 }, data: 'mnist-seg', recipe: presetRecipe('fp8'), batchSize: 16, maxTrain: 960, maxTest: 64 },
    data: ['mnist-seg', { mnistSegCount: [960, 64] }],
    steps: [0, 20, 59],
    pictures: [['errors', 59]],
  },
];

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];
const pct = (v: number) => `${(100 * v).toFixed(v < 0.001 ? 4 : 2)}%`;

function formatTable(doc: StatsDocument): string {
  const table = narrowestFormats(doc, 0.001);
  const keys = [...doc.formats.map((f) => f.key), 'none'];
  const lines = [`| tensor | ${keys.join(' | ')} | E5M2 underflow under the recipe (median / worst layer) |`, `|---|${keys.map(() => '---:').join('|')}|---:|`];
  for (const t of TENSORS) {
    const counts = new Map<string, number>();
    for (const row of table.values()) {
      const fit = row.get(t);
      if (fit) counts.set(fit.key ?? 'none', (counts.get(fit.key ?? 'none') ?? 0) + 1);
    }
    const under = doc.records.filter((r) => r.tensor === t && r.step === doc.steps.at(-1)).map((r) => r.formats.e5m2.underflow);
    lines.push(`| ${t} | ${keys.map((k) => counts.get(k) ?? 0).join(' | ')} | ${pct(median(under))} / ${pct(Math.max(...under))} |`);
  }
  return lines.join('\n');
}

function snrTable(doc: StatsDocument): string {
  const lines = ['| product | ' + doc.steps.map((s) => `step ${s}: SNR dB median / worst`).join(' | ') + ' | operands\' share of the error (median, last step) |', `|---|${doc.steps.map(() => '---:').join('|')}|---:|`];
  for (const product of ['forward', 'inputGradient', 'weightGradient'] as const) {
    const cells = doc.steps.map((s) => {
      const v = doc.records.filter((r) => r.step === s && r.tensor === 'weights' && r.error?.[product]?.snr_db != null).map((r) => r.error![product]!.snr_db!);
      return v.length ? `${median(v).toFixed(1)} / ${Math.min(...v).toFixed(1)}` : '-';
    });
    const shares = doc.records.filter((r) => r.step === doc.steps.at(-1) && r.tensor === 'weights' && r.error?.[product]?.operands_share != null).map((r) => r.error![product]!.operands_share!);
    lines.push(`| ${product} | ${cells.join(' | ')} | ${shares.length ? pct(median(shares)) : '-'} |`);
  }
  return lines.join('\n');
}

/**
 * Step times without and with collection: 30 steps of the study's configuration looking at every
 * other step, the first two steps (warming caches and pools) left out.
 */
async function stepTimes(study: Study, dataset: Awaited<ReturnType<typeof loadDataset>>): Promise<[number[], number[]]> {
  const times: [number[], number[]] = [[], []];
  let mark = performance.now();
  let taken = 0;
  await train({ ...study.config, maxTrain: 30 * study.config.batchSize, maxTest: study.config.batchSize }, dataset, join('runs', 'numerics', `${study.name}-timing`), {
    overwrite: true,
    stats: { every: 2 },
    hooks: {
      onStep: (p) => {
        const now = performance.now();
        // p.step steps are done: the one just timed is p.step - 1, looked at when even.
        if (p.step > 2) times[(p.step - 1) % 2 === 0 ? 1 : 0].push(now - mark);
        mark = now;
        taken = p.step;
      },
      shouldStop: () => taken >= 30,
    },
  });
  return times;
}

for (const study of STUDIES) {
  const dataset = await loadDataset(...study.data);
  const out = join('runs', 'numerics', study.name);
  const last = Math.max(...study.steps);
  let taken = 0;
  await train(study.config, dataset, out, {
    overwrite: true,
    stats: { steps: study.steps },
    hooks: { onStep: (p) => void (taken = p.step), shouldStop: () => taken > last },
  });
  const doc = readStats(join(out, STATS_FILE));
  const [plain, looked] = await stepTimes(study, dataset);
  console.log(`\n## ${study.name}: ${study.config.model} on ${study.config.data}, recipe ${study.config.recipe.name}, steps ${doc.steps.join(', ')}\n`);
  console.log(formatTable(doc) + '\n');
  console.log(snrTable(doc) + '\n');
  console.log(`Step time: ${median(plain).toFixed(0)} ms without collection, ${median(looked).toFixed(0)} ms with (${(median(looked) / median(plain)).toFixed(2)}x; medians of ${plain.length} and ${looked.length} steps).`);
  // The page's charts in order: SNR, then per tensor class present, each step.
  const svgs = [...readFileSync(join(out, STATS_PAGE), 'utf8').matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
  const present = TENSORS.filter((t) => doc.records.some((r) => r.tensor === t));
  for (const [tensor, step] of study.pictures) {
    const index = 1 + present.indexOf(tensor) * doc.steps.length + doc.steps.indexOf(step);
    const file = join('docs', 'img', `${study.name}-${tensor}-step${step}.png`);
    await sharp(Buffer.from(svgs[index])).png().toFile(file);
    console.log(`Picture: ${file}`);
  }
}
