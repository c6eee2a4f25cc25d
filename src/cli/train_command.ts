/** `octet train`, `octet eval` and `octet compare`: the training pipeline on the command line. */
import { join } from 'node:path';
import { SingleBar } from 'cli-progress';
import { loadDataset, type Dataset } from '../data/index.js';
import { InvalidArgumentError } from '../errors.js';
import { resolveFormat } from '../formats/index.js';
import { loadRecipe } from '../quant/index.js';
import { attachSparsePatterns, parsePruneSpec, type PruneConfig } from '../sparse/index.js';
import {
  CLASS_WEIGHT_RULES,
  checkpointMasks,
  checkpointModel,
  evalBatchSize,
  evaluate,
  evaluateCheckpoint,
  readCheckpointRecord,
  savedCriterion,
  baselineOf,
  pointsText,
  recipeLine,
  summarizeComparison,
  train,
  writeFileAtomic,
  writeReport,
  type ClassWeightSpec,
  type CompareEntry,
  type ConvAlgorithm,
  type TrainConfig,
  type TrainHooks,
  type TrainResult,
  type StatsRunOptions,
} from '../train/index.js';
import { parseSize } from './models_command.js';
import type { CliIo } from './io.js';
import { renderTable } from './text_table.js';

export interface TrainOptions {
  model: string;
  data: string;
  recipe?: string;
  epochs: string;
  batchSize: string;
  lr: string;
  weightDecay: string;
  warmup?: string;
  optimizer: string;
  classWeights?: string;
  ignoreIndex?: string;
  seed: string;
  maxTrain?: string;
  maxTest?: string;
  width?: string;
  depth?: string;
  imageSize?: string;
  checkpointEvery: string;
  logEvery: string;
  out: string;
  resume?: boolean;
  overwrite?: boolean;
  progress?: boolean;
  conv?: ConvAlgorithm;
  statsEvery?: string;
  statsFormats?: string;
  init?: string;
  prune?: string;
  pruneStart?: string;
  pruneEnd?: string;
  pruneEvery?: string;
  pruneGlobal?: boolean;
  pruneExclude?: string;
  pruneFirstLast?: boolean;
  pruneKernels?: string;
}

/** --prune and its companions as the run's prune config (none without --prune). */
export function pruneConfig(options: TrainOptions): PruneConfig | undefined {
  if (options.prune === undefined) {
    const stray = ([['pruneStart', '--prune-start'], ['pruneEnd', '--prune-end'], ['pruneEvery', '--prune-every'], ['pruneGlobal', '--prune-global'],
      ['pruneExclude', '--prune-exclude'], ['pruneFirstLast', '--prune-first-last'], ['pruneKernels', '--prune-kernels']] as const).find(([key]) => options[key] !== undefined);
    if (stray) throw new InvalidArgumentError(`${stray[1]} needs --prune BLOCK:SPARSITY (e.g. --prune 8x8:0.75)`);
    return undefined;
  }
  const { block, sparsity } = parsePruneSpec(options.prune);
  const start = number(options.pruneStart, '--prune-start', { integer: true }) ?? 0;
  const end = number(options.pruneEnd, '--prune-end', { integer: true }) ?? start;
  if (end < start) throw new InvalidArgumentError(`--prune-end ${end} is before --prune-start ${start}`);
  const exclude = options.pruneExclude?.split(',').map((p) => p.trim()).filter(Boolean);
  return {
    block, sparsity, start, end, every: number(options.pruneEvery, '--prune-every', { integer: true, min: 1 }) ?? 100,
    ...(options.pruneGlobal ? { global: true } : {}), ...(exclude?.length ? { exclude } : {}), ...(options.pruneFirstLast ? { pruneFirstLast: true } : {}),
    ...(options.pruneKernels !== undefined ? { kernels: pruneKernels(options.pruneKernels) } : {}),
  };
}

function pruneKernels(text: string): 'auto' | 'dense' {
  if (text !== 'auto' && text !== 'dense') throw new InvalidArgumentError(`--prune-kernels ${JSON.stringify(text)}: expected auto (the block-sparse products where their rules choose them) or dense`);
  return text;
}

/** --formats / --stats-formats: candidate formats, each checked now (an unknown name fails before any work). */
export function parseFormats(text: string | undefined, flag: string): string[] {
  if (text === undefined) return [];
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (!names.length) throw new InvalidArgumentError(`${flag} is empty; give formats such as e3m4,e2m5`);
  for (const name of names) {
    try {
      resolveFormat(name);
    } catch (error) {
      throw new InvalidArgumentError(`${flag}: ${(error as Error).message}`);
    }
  }
  return names;
}

/** --stats-every / --stats-formats: the numerics lab during a run (none without --stats-every). */
export function statsRunOptions(options: TrainOptions): StatsRunOptions | undefined {
  const every = number(options.statsEvery, '--stats-every', { integer: true, min: 1 });
  const formats = parseFormats(options.statsFormats, '--stats-formats');
  if (every === undefined) {
    if (formats.length) throw new InvalidArgumentError('--stats-formats needs --stats-every N (collect statistics every N steps)');
    return undefined;
  }
  return { every, formats };
}

/** The flag of each training setting, for errors the library raises about a setting. */
export const SETTING_FLAGS: Record<string, string> = {
  model: '--model', data: '--data', recipe: '--recipe', epochs: '--epochs', batchSize: '--batch-size', lr: '--lr', weightDecay: '--weight-decay',
  warmupSteps: '--warmup', optimizer: '--optimizer', seed: '--seed', maxTrain: '--max-train', maxTest: '--max-test', checkpointEvery: '--checkpoint-every',
  logEvery: '--log-every', classWeights: '--class-weights', ignoreIndex: '--ignore-index', conv: '--conv', resume: '--resume', overwrite: '--overwrite', out: '--out', prune: '--prune', init: '--init',
  statsSteps: '--steps', statsEvery: '--stats-every', stats: '--out',
};

/** A decimal number (as documented: no hex, binary or empty strings, which Number() would accept). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function number(value: string | undefined, flag: string, { integer = false, min = 0 } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = DECIMAL.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new InvalidArgumentError(`${flag} is "${value}"; expected ${integer ? 'an integer' : 'a number'} >= ${min}`);
  }
  return n;
}

export function trainConfig(options: TrainOptions, recipeName: string): TrainConfig {
  if (options.optimizer !== 'adamw' && options.optimizer !== 'sgd') throw new InvalidArgumentError(`--optimizer is "${options.optimizer}"; expected adamw or sgd`);
  return {
    model: options.model,
    modelOptions: { width: number(options.width, '--width', { integer: true, min: 1 }), depth: number(options.depth, '--depth', { integer: true, min: 1 }) },
    data: options.data,
    recipe: loadRecipe(recipeName),
    epochs: number(options.epochs, '--epochs', { integer: true, min: 1 })!,
    batchSize: number(options.batchSize, '--batch-size', { integer: true, min: 1 })!,
    lr: number(options.lr, '--lr')!,
    weightDecay: number(options.weightDecay, '--weight-decay')!,
    warmupSteps: number(options.warmup, '--warmup', { integer: true }),
    optimizer: options.optimizer,
    seed: number(options.seed, '--seed', { integer: true })!,
    maxTrain: number(options.maxTrain, '--max-train', { integer: true, min: 1 }),
    maxTest: number(options.maxTest, '--max-test', { integer: true, min: 1 }),
    checkpointEvery: number(options.checkpointEvery, '--checkpoint-every', { integer: true })!,
    logEvery: number(options.logEvery, '--log-every', { integer: true, min: 1 })!,
    conv: options.conv,
    ...prunePart(options),
    ...criterionPart(options),
    ...(options.init !== undefined ? { init: options.init } : {}),
  };
}

/** --class-weights and --ignore-index (checked against the data set when the run starts). */
export function criterionPart(options: Pick<TrainOptions, 'classWeights' | 'ignoreIndex'>): Pick<TrainConfig, 'classWeights' | 'ignoreIndex'> {
  const part: Pick<TrainConfig, 'classWeights' | 'ignoreIndex'> = {};
  if (options.ignoreIndex !== undefined) {
    const label = number(options.ignoreIndex, '--ignore-index', { integer: true });
    if (label! > 255) throw new InvalidArgumentError(`--ignore-index is ${label}; labels are 0 to 255`);
    part.ignoreIndex = label;
  }
  const text = options.classWeights?.trim();
  if (text !== undefined) {
    if ((CLASS_WEIGHT_RULES as readonly string[]).includes(text)) part.classWeights = text as ClassWeightSpec;
    else if (/^[\d.+eE-]/.test(text)) part.classWeights = text.split(',').map((w, i) => number(w.trim(), `--class-weights (weight ${i})`)!);
    else throw new InvalidArgumentError(`--class-weights is "${options.classWeights}"; expected ${CLASS_WEIGHT_RULES.join(', ')} or one number per class (e.g. 0.1,1,1)`);
  }
  return part;
}

function prunePart(options: TrainOptions): { prune?: PruneConfig } {
  const prune = pruneConfig(options);
  return prune ? { prune } : {};
}

export async function loadData(spec: string, imageSize?: string): Promise<Dataset> {
  return loadDataset(spec, { imageSize: imageSize ? parseSize(imageSize, '--image-size') : undefined });
}

/** Progress bar on stderr (when it is a terminal) plus Ctrl-C handling: stop after the step, save, exit cleanly. */
export function runHooks(io: CliIo, label: string, showBar: boolean): { hooks: TrainHooks; done: () => void } {
  let stop = false;
  const onSigint = () => {
    if (stop) process.exit(130);
    stop = true;
    io.stderr('\noctet: Ctrl-C: finishing this step and saving a checkpoint (Ctrl-C again to quit at once)\n');
  };
  process.on('SIGINT', onSigint);
  const bar = showBar && process.stderr.isTTY
    ? new SingleBar({ format: `${label} [{bar}] {value}/{total} steps | loss {loss} | acc {acc} | {ips} img/s | ETA {eta_formatted}`, hideCursor: true, clearOnComplete: false })
    : null;
  let started = false;
  const hooks: TrainHooks = {
    onStep: (p) => {
      const payload = { loss: p.loss.toFixed(4), acc: `${(100 * p.accuracy).toFixed(1)}%`, ips: p.imagesPerSecond.toFixed(1) };
      if (bar && !started) {
        bar.start(p.totalSteps, p.step - 1, payload);
        started = true;
      }
      bar?.update(p.step, payload);
    },
    onEval: (e) => {
      const text = `${label}: epoch ${e.epoch + 1} ${e.metric} ${(100 * e.value).toFixed(2)}%${e.top5 !== undefined ? ` top-5 ${(100 * e.top5).toFixed(2)}%` : ''} (test loss ${e.loss.toFixed(4)})\n`;
      if (bar) bar.stop();
      io.stderr(text);
      started = false;
    },
    shouldStop: () => stop,
  };
  return {
    hooks,
    done: () => {
      bar?.stop();
      process.off('SIGINT', onSigint);
    },
  };
}

function reportRun(result: TrainResult, out: string, io: CliIo): void {
  if (!result.completed) {
    io.stdout(`Interrupted after step ${result.steps}; checkpoint saved to ${result.checkpoint}. Continue with the same command and --resume.\n`);
    return;
  }
  const f = result.final;
  io.stdout(
    `${result.config.model} / ${result.config.recipe.name} on ${result.config.data}: ` +
      (f ? `${f.metric} ${(100 * f.value).toFixed(2)}%${f.top5 !== undefined ? `, top-5 ${(100 * f.top5).toFixed(2)}%` : ''}` : 'no evaluation') +
      ` after ${result.steps} steps in ${result.seconds.toFixed(1)} s. Checkpoint: ${result.checkpoint}; metrics: ${join(out, 'metrics.jsonl')}\n`,
  );
  if (result.sparsity?.length) {
    const layers = result.sparsity;
    const weights = layers.reduce((s, l) => s + l.rows * l.cols, 0);
    const zeros = layers.reduce((s, l) => s + l.zeros * l.rows * l.cols, 0);
    const blocks = layers.reduce((s, l) => s + l.blocks, 0);
    const dropped = layers.reduce((s, l) => s + l.sparsity * l.blocks, 0);
    io.stdout(
      `Pruned ${layers.length} layers in ${layers[0].block} blocks: ${(100 * dropped / blocks).toFixed(1)}% of their blocks, ` +
        `${(100 * zeros / weights).toFixed(1)}% of their weights zero (per layer: result.json's sparsity)\n`,
    );
  }
}

export async function trainCommand(options: TrainOptions, io: CliIo): Promise<number> {
  const config = trainConfig(options, options.recipe ?? 'fp32');
  const dataset = await loadData(options.data, options.imageSize);
  const { hooks, done } = runHooks(io, config.recipe.name, options.progress !== false);
  try {
    const result = await train(config, dataset, options.out, { resume: options.resume, overwrite: options.overwrite, hooks, stats: statsRunOptions(options) });
    reportRun(result, options.out, io);
    return result.completed ? 0 : 130;
  } finally {
    done();
  }
}

export async function evalCommand(
  options: { checkpoint: string; data?: string; maxTest?: string; batchSize?: string; imageSize?: string; conv?: ConvAlgorithm; recipe?: string; dense?: boolean },
  io: CliIo,
): Promise<void> {
  const loaded = readCheckpointRecord<TrainConfig>(options.checkpoint);
  const config = loaded.record.config;
  const dataset = await loadData(options.data ?? config.data, options.imageSize);
  const evalOptions = {
    recipe: options.recipe === undefined ? undefined : loadRecipe(options.recipe),
    conv: options.conv,
    maxTest: number(options.maxTest, '--max-test', { integer: true, min: 1 }),
    batchSize: number(options.batchSize, '--batch-size', { integer: true, min: 1 }),
  };
  const masks = checkpointMasks(options.checkpoint, loaded.tensors);
  if (config.prune && masks.size && !options.dense && config.prune.kernels !== 'dense') {
    // A pruned model: its convolutions' forward on the block-sparse kernel where the rule chooses
    // it, as its training ran them.
    const { model, recipe, conv } = checkpointModel(options.checkpoint, dataset, evalOptions, loaded);
    const layers = attachSparsePatterns(model, masks, config.prune.block);
    const maxTest = evalOptions.maxTest ?? config.maxTest;
    const batchSize = evalOptions.batchSize ?? evalBatchSize(config);
    const seen = savedCriterion(config, dataset);
    const result = evaluate(model, seen.dataset, maxTest, batchSize, seen.criterion);
    io.stdout(JSON.stringify({
      checkpoint: options.checkpoint, model: config.model, data: dataset.name, step: loaded.record.step, recipe: recipe.name, conv, batchSize, maxTest: maxTest ?? null,
      ...result, sparse: { block: config.prune.block, layers },
    }) + '\n');
    return;
  }
  const result = evaluateCheckpoint(options.checkpoint, dataset, evalOptions, loaded);
  io.stdout(JSON.stringify({ checkpoint: options.checkpoint, model: config.model, data: dataset.name, ...result }) + '\n');
}

export async function compareCommand(options: TrainOptions & { recipes: string }, io: CliIo): Promise<number> {
  const names = options.recipes.split(',').map((r) => r.trim()).filter(Boolean);
  if (!names.length) throw new InvalidArgumentError('--recipes is empty; give a comma-separated list such as fp32,sfp8,fp8');
  const configs = names.map((n) => trainConfig(options, n));
  const stats = statsRunOptions(options);
  const dataset = await loadData(options.data, options.imageSize);
  const entries: CompareEntry[] = [];
  for (const config of configs) {
    const out = join(options.out, config.recipe.name);
    const { hooks, done } = runHooks(io, config.recipe.name, options.progress !== false);
    let result: TrainResult;
    try {
      result = await train(config, dataset, out, { resume: options.resume, overwrite: options.overwrite, hooks, stats });
    } finally {
      done();
    }
    reportRun(result, out, io);
    if (!result.completed) return 130;
    entries.push({ recipe: config.recipe.name, out, result });
  }
  const summary = summarizeComparison(options.model, options.data, entries);
  writeFileAtomic(join(options.out, 'summary.json'), new TextEncoder().encode(JSON.stringify(summary, null, 2) + '\n'));
  const report = await writeReport(options.out, summary, entries);
  const base = baselineOf(summary);
  io.stdout('\n' + renderTable(
    [
      'recipe', summary.results[0].metric, `vs ${base.recipe}`, ...(summary.results[0].top5 !== undefined ? ['top-5'] : []),
      ...(summary.results[0].pixel_accuracy !== undefined ? ['pixel acc'] : []), 'epochs', 'seconds', 'images/s',
    ],
    summary.results.map((r) => [
      r.recipe, `${(100 * r.value).toFixed(2)}%`, r === base ? '' : pointsText(r.value - base.value), ...(r.top5 !== undefined ? [`${(100 * r.top5).toFixed(2)}%`] : []),
      ...(r.pixel_accuracy !== undefined ? [`${(100 * r.pixel_accuracy).toFixed(2)}%`] : []), String(r.epochs), r.seconds.toFixed(1), r.images_per_s.toFixed(1),
    ]),
  ));
  const width = Math.max(...entries.map((e) => e.recipe.length));
  io.stdout('\n' + entries.map((e) => `${e.recipe.padEnd(width)}  ${recipeLine(e.result.config.recipe)}`).join('\n') + '\n');
  io.stdout(`\nReport: ${report}\nSummary: ${join(options.out, 'summary.json')}\n`);
  return 0;
}
