/**
 * The training loop. Everything a step depends on is a function of the step number and the
 * checkpointed state (data order and augmentation from the seed, learning rate from the schedule,
 * stochastic rounding keyed by step), so `resume` continues to bit-identical weights.
 *
 * Writes to `out`: checkpoint.safetensors (every `checkpointEvery` steps, at each epoch end, at the
 * end and when stopped), metrics.jsonl (one JSON object per line: train, numerics, scale_event
 * and eval records) and result.json.
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backward, withActivationRelease } from '../autograd/index.js';
import { NonFiniteError, SettingError } from '../errors.js';
import { absMax, defaultConvAlgorithm, type ConvAlgorithm } from '../kernels/index.js';
import { checkLabels, epochOrder, makeBatch, trainingSubset, type Dataset } from '../data/index.js';
import type { Module } from '../nn/index.js';
import { softmaxCrossEntropy } from '../ops/index.js';
import { AdamW, SGD, cosineWithWarmup, type Optimizer } from '../optim/index.js';
import { NumericsLab, applyRecipe, type Recipe, type StatsRecord } from '../quant/index.js';
import type { FormatLike } from '../formats/index.js';
import { Pruner, attachSparsePatterns, type LayerSparsity, type PruneConfig } from '../sparse/index.js';
import { checkpointMasks, readCheckpointRecord, restoreCheckpoint, saveCheckpoint } from './checkpoint.js';
import { buildTrainModel } from './build.js';
import { evalBatchSize, evaluate } from './evaluation.js';
import { runCriterion, withIgnoreIndex, type ClassWeightSpec } from './criterion.js';
import { ConfusionMatrix, topKCorrect } from './metrics.js';
import {
  CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RESULT_FILE, checkFreshFolder, checkResumable, clearRun, metricsUpTo, prepareOutputFolder, removeStaleTemporaries,
  writeLines,
} from './run_folder.js';
import { writeFileAtomic } from './safetensors.js';
import { STATS_FILE, readStats, statsDocument, writeStats, writeStatsPage } from './stats_report.js';

export type { ConvAlgorithm };

export interface TrainConfig {
  model: string;
  modelOptions: { width?: number; depth?: number };
  data: string;
  recipe: Recipe;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** Linear warmup steps (default: 5% of all steps). */
  warmupSteps?: number;
  optimizer: 'adamw' | 'sgd';
  seed: number;
  /** Train on the first N examples of the seeded shuffle. */
  maxTrain?: number;
  /** Evaluate on the first N test examples. */
  maxTest?: number;
  /** Checkpoint every N steps (0: at epoch ends only). */
  checkpointEvery: number;
  /** Train and numerics records every N steps. */
  logEvery: number;
  /**
   * How float32 3x3 stride-1 convolutions run: Winograd or the direct product (their results
   * differ in rounding, so a resumed run must use the same to end bit for bit). Default: the
   * default (defaultConvAlgorithm(): OCTET_CONV, Winograd unless "direct"). Recorded in
   * config.json and the checkpoint; checkpoints from before Winograd, which lack it, are "direct".
   */
  conv?: ConvAlgorithm;
  /** Block pruning during training (src/sparse/pruner.ts); recorded, and a resume must match it. */
  prune?: PruneConfig;
  /**
   * Start from the model weights (parameters and buffers) of this checkpoint instead of a fresh
   * initialization (fine-tuning, e.g. after `octet prune`); the optimizer and recipe state start
   * fresh. The checkpoint must be of the same model.
   */
  init?: string;
  /** The label the loss and the metrics skip (segmentation); default the data set's (255). */
  ignoreIndex?: number;
  /** Class weights of the loss, a list or a rule over the training labels (src/train/criterion.ts). */
  classWeights?: ClassWeightSpec;
}

export interface StepProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
  etaSeconds: number;
}

export interface EvalResult {
  epoch: number;
  step: number;
  metric: 'top1' | 'miou';
  value: number;
  loss: number;
  top5?: number;
  iou?: number[];
  pixelAccuracy?: number;
}

export interface TrainResult {
  config: TrainConfig;
  steps: number;
  completed: boolean;
  evals: EvalResult[];
  final: EvalResult | null;
  seconds: number;
  checkpoint: string;
  /** Peak resident set size of the process, MB. */
  peakRssMb: number;
  /** Per pruned layer: its block shape, dropped blocks and zero weights at the end. */
  sparsity?: LayerSparsity[];
}

export interface TrainHooks {
  onStep?(progress: StepProgress): void;
  onEval?(result: EvalResult): void;
  /** Checked after every step: true saves a checkpoint and returns early (Ctrl-C). */
  shouldStop?(): boolean;
}


export function makeOptimizer(config: TrainConfig, model: Module): Optimizer {
  const params = model.namedParameters();
  const common = {
    lr: config.lr,
    weightDecay: config.weightDecay,
    masterWeights: config.recipe.masterWeights,
    moments: config.recipe.moments,
    seed: config.seed,
  };
  return config.optimizer === 'sgd' ? new SGD(params, { ...common, momentum: 0.9 }) : new AdamW(params, common);
}


/** Top-1 accuracy of a batch, or pixel accuracy for segmentation. */
function batchAccuracy(logits: Float32Array, labels: Int32Array, batchSize: number, dataset: Dataset): number {
  const classes = dataset.classes;
  if (dataset.task === 'classification') return topKCorrect(logits, classes, labels, 1) / labels.length;
  const confusion = new ConfusionMatrix(classes);
  confusion.addSegmentation(logits, labels, batchSize, dataset.ignoreIndex ?? -1);
  return confusion.pixelAccuracy();
}

/**
 * Steps in a row whose loss is not finite before a run stops as diverged. Parameters that turn
 * NaN or Inf show in the next step's loss; they are checked (a pass over every weight) only where
 * a checkpoint is written, which they must never reach.
 */
export const DIVERGED_STEPS = 3;

function parametersFinite(model: Module): boolean {
  return model.namedParameters().every(([, p]) => Number.isFinite(absMax(p.data)));
}

export interface TrainRunOptions {
  /** Continue the run in `out` from its checkpoint. */
  resume?: boolean;
  /** Replace a run that `out` already holds (its files go once the new run's first step has run). */
  overwrite?: boolean;
  hooks?: TrainHooks;
  /** Collect numerics statistics (the numerics lab): stats.json and stats.html in `out`. */
  stats?: StatsRunOptions;
}

export interface StatsRunOptions {
  /** Steps to look at (the steps taken before it: 0 is the first), each below the run's total. */
  steps?: readonly number[];
  /** Also look at every N-th step from 0. */
  every?: number;
  /** Candidate formats besides the defaults (e5m2, e4m3, e6m9, fp16, bf16). */
  formats?: readonly FormatLike[];
  /** The page's narrowest-format tolerance (default 0.001). */
  tolerance?: number;
}

/** Which steps a stats option looks at, checked against the run's length. */
function statsSteps(stats: StatsRunOptions, totalSteps: number): (step: number) => boolean {
  const every = stats.every ?? 0;
  if (!(Number.isInteger(every) && every >= 0)) throw new SettingError('statsEvery', `stats every ${every} steps: expected a positive integer (0: off)`);
  const steps = new Set(stats.steps ?? []);
  for (const s of steps) {
    if (!(Number.isInteger(s) && s >= 0)) throw new SettingError('statsSteps', `stats step ${s}: expected an integer >= 0`);
    if (s >= totalSteps) {
      throw new SettingError('statsSteps', `stats step ${s} is beyond the run: it has ${totalSteps} steps (0 to ${totalSteps - 1}); give steps below ${totalSteps} or train longer`);
    }
  }
  if (!steps.size && !every) throw new SettingError('statsSteps', 'stats: no step to look at; give steps or every');
  return (step) => steps.has(step) || (every > 0 && step % every === 0);
}

/**
 * Train (or, with `resume`, continue). Asynchronous only so that it yields to the event loop
 * after every step: Ctrl-C handlers and the progress bar's timers run between steps.
 *
 * Nothing in `out` changes before the first step has run: a run that fails at once leaves the
 * folder as it was. A new run refuses a folder that holds a run unless `overwrite`. A run whose
 * loss is NaN or Inf for DIVERGED_STEPS steps in a row stops with a NonFiniteError,
 * and no checkpoint is ever written with non-finite parameters: the last good one stays.
 */
export async function train(settings: TrainConfig, dataset: Dataset, out: string, options: TrainRunOptions = {}): Promise<TrainResult> {
  const config: TrainConfig = { ...settings, conv: settings.conv ?? defaultConvAlgorithm() };
  dataset = withIgnoreIndex(dataset, config.ignoreIndex);
  const hooks = options.hooks ?? {};
  if (!(Number.isInteger(config.epochs) && config.epochs >= 1)) throw new SettingError('epochs', `epochs is ${config.epochs}; expected a positive integer`);
  if (!(Number.isInteger(config.batchSize) && config.batchSize >= 1)) throw new SettingError('batchSize', `batchSize is ${config.batchSize}; expected a positive integer`);
  prepareOutputFolder(out);
  const checkpointFile = join(out, CHECKPOINT_FILE);
  const metricsFile = join(out, METRICS_FILE);
  const model = buildTrainModel(config, dataset);
  if (config.init !== undefined && !options.resume) initFrom(config.init, config, model);
  const session = applyRecipe(model, config.recipe, { seed: config.seed, algorithm: config.conv });
  const optimizer = makeOptimizer(config, model);
  const pruner = config.prune ? new Pruner(model.namedParameters(), config.prune) : null;
  const zeroSlots = (name: string, keep: Uint8Array) => optimizer.zeroSlotsWhere(name, keep);
  // Pruned convolutions' products on the block-sparse kernel where their rules choose it, with the masks as they stand.
  const attachPatterns = () => {
    if (pruner) attachSparsePatterns(model, pruner.keepPatterns(), config.prune!.block, config.prune!.kernels === 'dense' ? 'dense' : 'auto');
  };
  const subset = trainingSubset(dataset.train.count, config.seed, config.maxTrain);
  const stepsPerEpoch = Math.max(1, Math.floor(subset.length / config.batchSize));
  const totalSteps = stepsPerEpoch * config.epochs;
  const warmupSteps = Math.min(totalSteps, config.warmupSteps ?? Math.round(totalSteps * 0.05));
  const criterion = runCriterion(dataset, config.classWeights, subset);
  // Labels out of range fail here, naming the split and the example, not at the end of an epoch.
  checkLabels(dataset.train, dataset, subset, 'train');
  checkLabels(dataset.test, dataset, Int32Array.from({ length: Math.min(dataset.test.count, config.maxTest ?? dataset.test.count) }, (_, i) => i), 'test');
  const lab = options.stats ? new NumericsLab(session, { formats: options.stats.formats }) : null;
  const looksAt = options.stats ? statsSteps(options.stats, totalSteps) : () => false;
  let statsRecords: StatsRecord[] = [];
  let step = 0;
  const evals: EvalResult[] = [];
  let window = { loss: 0, correct: 0, count: 0 };
  let keptMetrics: string[] = [];
  if (options.resume) {
    if (!existsSync(checkpointFile)) throw new SettingError('resume', `resume: no checkpoint at ${checkpointFile}; start without resume`);
    removeStaleTemporaries(out);
    const loaded = readCheckpointRecord<TrainConfig>(checkpointFile);
    checkResumable(loaded.record.config, config, checkpointFile);
    restoreCheckpoint(checkpointFile, loaded, model, optimizer, session);
    pruner?.load(checkpointMasks(checkpointFile, loaded.tensors));
    attachPatterns();
    step = loaded.record.step;
    if (loaded.record.window) window = { ...loaded.record.window };
    keptMetrics = metricsUpTo(metricsFile, step);
    // The statistics collected before the checkpoint carry over; later ones are collected again.
    if (lab && existsSync(join(out, STATS_FILE))) statsRecords = readStats(join(out, STATS_FILE)).records.filter((r) => r.step < step);
    evals.push(...keptMetrics.map((l) => JSON.parse(l) as EvalResult & { type: string }).filter((r) => r.type === 'eval').map(({ type: _type, ...r }) => r));
  } else {
    checkFreshFolder(out, options.overwrite ?? false);
  }
  let begun = false;
  // The run has started (its first step ran): from here on it writes into `out`.
  const begin = () => {
    if (begun) return;
    begun = true;
    if (options.resume) {
      writeLines(metricsFile, keptMetrics);
    } else {
      clearRun(out);
      writeFileSync(metricsFile, '');
    }
    writeFileAtomic(join(out, CONFIG_FILE), new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n'));
  };
  const log = (record: object) => appendFileSync(metricsFile, JSON.stringify(record) + '\n');
  // A checkpoint never holds non-finite parameters: the last good one stays.
  // The statistics are written with each checkpoint: a resume keeps the records of the steps before
  // its checkpoint and collects the later ones again, so nothing collected is lost.
  let statsWritten = 0;
  const save = () => {
    if (!parametersFinite(model)) return;
    saveCheckpoint(checkpointFile, model, optimizer, session, { config, step, window }, pruner?.patterns() ?? []);
    if (lab && statsRecords.length !== statsWritten) {
      writeStats(out, statsDocument(config.model, config.data, config.recipe, lab.formats, statsRecords));
      statsWritten = statsRecords.length;
    }
  };
  const start = Date.now();
  const firstStep = step;
  let peakRss = process.memoryUsage().rss;
  let order: Int32Array | null = null;
  let orderEpoch = -1;
  let completed = true;
  let badSteps = 0;
  const pruneLog: object[] = [];
  model.train();
  while (step < totalSteps) {
    const epoch = Math.floor(step / stepsPerEpoch);
    const inEpoch = step % stepsPerEpoch;
    if (orderEpoch !== epoch) {
      order = epochOrder(subset, config.seed, epoch);
      orderEpoch = epoch;
    }
    const size = Math.min(config.batchSize, subset.length);
    const batch = makeBatch(dataset.train, order!.subarray(inEpoch * size, (inEpoch + 1) * size), dataset.normalization, dataset.augmentation, config.seed, epoch);
    optimizer.lr = cosineWithWarmup(step, { baseLr: config.lr, totalSteps, warmupSteps });
    optimizer.zeroGrad({ release: true });
    if (pruner?.due(step)) {
      pruner.update(step, zeroSlots);
      attachPatterns();
      pruneLog.push({ type: 'prune', step, sparsity: pruner.sparsityAt(step) });
    }
    let lossValue = NaN;
    let accuracy = NaN;
    const looking = lab !== null && looksAt(step);
    let stepRecords: StatsRecord[] = [];
    if (looking) lab.begin(step);
    try {
      // Nothing computed inside the model but its logits is read: its dead intermediates go back
      // to the buffer pool as the forward pass goes, its saved activations once backward has
      // used them, and the next ones take them instead of fresh memory.
      withActivationRelease(() => {
        const logits = model.call(batch.x);
        const loss = softmaxCrossEntropy(logits, batch.labels, criterion);
        lossValue = loss.item();
        accuracy = batchAccuracy(logits.data, batch.labels, size, dataset);
        backward(session.scaleLoss(loss));
      });
    } catch (error) {
      if (!(error instanceof NonFiniteError)) throw error;
      throw new NonFiniteError(`training diverged at step ${step + 1}: ${error.message}. ${kept(step, checkpointFile, begun)}`);
    } finally {
      if (looking) stepRecords = lab.end();
    }
    const outcome = session.finishBackward();
    // Pruned weights: their kept entries updated, then every pruned entry set to 0.
    const report = optimizer.stepAll(outcome.skip, pruner ? { keep: pruner.elementMasks() } : {});
    pruner?.enforce(zeroSlots);
    step++;
    begin();
    for (const record of pruneLog.splice(0)) log(record);
    if (looking) statsRecords.push(...stepRecords);
    badSteps = Number.isFinite(lossValue) ? 0 : badSteps + 1;
    if (badSteps >= DIVERGED_STEPS) {
      throw new NonFiniteError(
        `training diverged: the loss has been NaN or Inf for ${badSteps} steps in a row (steps ${step - badSteps + 1} to ${step}, lr ${optimizer.lr}); ` +
          `${kept(step, checkpointFile, true)} Lower the learning rate, or check the data`,
      );
    }
    window.loss += lossValue * size;
    window.correct += accuracy * size;
    window.count += size;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const seconds = (Date.now() - start) / 1000;
    const imagesPerSecond = ((step - firstStep) * size) / Math.max(seconds, 1e-9);
    if (step % config.logEvery === 0 || step === totalSteps) {
      log({
        type: 'train', step, epoch, loss: window.loss / window.count, accuracy: window.correct / window.count, lr: optimizer.lr,
        loss_scale: outcome.lossScale, images_per_s: imagesPerSecond, skipped: report.skipped.length,
      });
      window = { loss: 0, correct: 0, count: 0 };
      const { records, events } = session.telemetry.flush(step);
      for (const r of records) log({ type: 'numerics', ...r });
      for (const e of events) log({ type: 'scale_event', ...e });
    }
    hooks.onStep?.({
      step, totalSteps, epoch, loss: lossValue, accuracy,
      imagesPerSecond, etaSeconds: ((totalSteps - step) * size) / Math.max(imagesPerSecond, 1e-9),
    });
    const epochEnd = step % stepsPerEpoch === 0;
    // The epoch's checkpoint is written before its evaluation, so a failing evaluation loses
    // nothing; and again after it (the evaluation moves the delayed scalers' history on).
    if (epochEnd || (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) || step === totalSteps) save();
    if (epochEnd) {
      const result: EvalResult = { epoch, step, ...evaluate(model, dataset, config.maxTest, evalBatchSize(config), criterion) };
      evals.push(result);
      log({ type: 'eval', ...result });
      hooks.onEval?.(result);
      save();
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (step < totalSteps && hooks.shouldStop?.()) {
      save();
      completed = false;
      break;
    }
  }
  if (lab) {
    lab.close();
    if (statsRecords.length) {
      const doc = statsDocument(config.model, config.data, config.recipe, lab.formats, statsRecords);
      writeStats(out, doc);
      await writeStatsPage(out, doc, options.stats?.tolerance);
    }
  }
  const result: TrainResult = {
    config,
    steps: step,
    completed,
    evals,
    final: evals.at(-1) ?? null,
    seconds: (Date.now() - start) / 1000,
    checkpoint: checkpointFile,
    peakRssMb: peakRss / 2 ** 20,
    ...(pruner ? { sparsity: pruner.summary() } : {}),
  };
  if (completed) writeFileAtomic(join(out, RESULT_FILE), new TextEncoder().encode(JSON.stringify(result, null, 2) + '\n'));
  return result;
}

/** Load a checkpoint's model weights into a freshly built model (TrainConfig.init). */
function initFrom(file: string, config: TrainConfig, model: Module): void {
  if (!existsSync(file)) throw new SettingError('init', `init: no checkpoint at ${file}`);
  const loaded = readCheckpointRecord<TrainConfig>(file);
  const saved = loaded.record.config;
  if (saved.model !== config.model || JSON.stringify(saved.modelOptions) !== JSON.stringify(config.modelOptions)) {
    throw new SettingError('init', `init: ${file} holds ${saved.model} ${JSON.stringify(saved.modelOptions)}; this run builds ${config.model} ${JSON.stringify(config.modelOptions)}`);
  }
  restoreCheckpoint(file, loaded, model, null, null);
}

/**
 * One-shot pruning of a trained checkpoint: its model, optimizer and recipe state restored, every
 * prunable layer's blocks pruned to `prune.sparsity` from the weights as they are (with their
 * optimizer slots), and the result written to `outFile` with the masks and the prune settings in
 * its config (one-shot at the checkpoint's step). Returns the pruned layers' sparsity.
 */
export function pruneCheckpoint(file: string, prune: PruneConfig, dataset: Dataset, outFile: string): LayerSparsity[] {
  const loaded = readCheckpointRecord<TrainConfig>(file);
  const { record } = loaded;
  const config: TrainConfig = { ...record.config, prune: { ...prune, start: record.step, end: record.step } };
  const model = buildTrainModel(config, dataset);
  const session = applyRecipe(model, config.recipe, { seed: config.seed, algorithm: config.conv ?? 'direct' });
  const optimizer = makeOptimizer(config, model);
  restoreCheckpoint(file, loaded, model, optimizer, session);
  const pruner = new Pruner(model.namedParameters(), config.prune!);
  pruner.update(record.step, (name, keep) => optimizer.zeroSlotsWhere(name, keep));
  saveCheckpoint(outFile, model, optimizer, session, { config, step: record.step, window: record.window }, pruner.patterns());
  return pruner.summary();
}

/** What a diverged run leaves: the last checkpoint with finite parameters, if any. */
function kept(step: number, checkpointFile: string, begun: boolean): string {
  return begun && existsSync(checkpointFile) ? `The last good checkpoint is kept at ${checkpointFile}.` : `No checkpoint was written (stopped before step ${step + 1} finished).`;
}
