/**
 * Training speed (`octet bench train`). By default ResNet-18, CIFAR variant, 100 classes, 32x32 input,
 * batch 64, one full step (forward, backward, AdamW) for fp32, fp32 with its 3x3 convolutions on
 * the direct product instead of Winograd (the products the low-precision recipes compute), fp8
 * with fp32 accumulation, fp8 with e6m9 accumulation, and fp8 with fp32 accumulation but batch
 * norm's saved input in float32, each in its own process for an honest peak RSS; then fp32 and
 * fp8 at batch 256 once, for memory where activations dominate. The batch-64 configurations run in turn for several rounds
 * (the machine is shared, and interference drifts over minutes: alternating exposes every
 * configuration to the same drift); the best step of all rounds is reported, and the peak RSS is
 * the largest seen. PyTorch is the peer where torch and torchvision import (`python3`, or Debian's
 * /usr/bin/python3 with python3-torch and python3-torchvision), in every round.
 *
 * With a model named (`--model`, any zoo model, with `--batch` and `--input CxHxW`): fp32, fp8
 * with float32 accumulation and fp8 with e6m9 accumulation (chunks of 64), and PyTorch's fp32 on
 * the same architecture (torch_train.ts). Every row carries a step profile (per op kind and per
 * layer, forward and backward, and the time outside ops; train_profile.ts), taken on extra steps
 * after the timed ones in the last round, so the profiler never touches the timed figures.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '../errors.js';
import { nativeCore } from '../kernels/index.js';
import { modelInfo } from '../nn/index.js';
import { isFloat32Accumulation, presetRecipe, type Recipe } from '../quant/index.js';
import { runPython } from './peers.js';
import { torchTrainStep, type TorchMeasurement } from './torch_train.js';
import type { StepProfile, WorkerJob, WorkerResult } from './train_profile.js';

export interface TrainBenchRow {
  bench: 'train';
  model: string;
  /** Input [C, H, W] and classes of the measured model. */
  input: string;
  classes: number;
  recipe: string;
  acc: string;
  /** Format of batch norm's saved input (the recipe's savedActivations), float32 when none. */
  saved: string;
  /**
   * How float32 3x3 stride-1 convolutions ran: 'winograd' (the default) or 'direct'
   * (OCTET_CONV=direct). The low-precision recipes' convolutions are direct products either way.
   */
  conv: 'winograd' | 'direct';
  batch: number;
  threads: number;
  images_per_s: number;
  peak_rss_mb: number;
  /** images/s over fp32's at the same batch size, measured in the same run. */
  ratio_fp32: number;
  /** Peak RSS over fp32's at the same batch size, measured in the same run. */
  memory_fp32: number;
  /**
   * What the graph keeps for backward at the end of the forward pass (activations, their codes,
   * masks; parameters excluded), in MB, and its ratio to fp32's at the same batch size.
   */
  saved_mb: number;
  saved_fp32: number;
  /** The weights and the optimizer's moments, in MB: the same in every recipe that keeps them in float32. */
  state_mb: number;
  /** images/s over fp32's with direct convolutions at the same batch size (null where not measured). */
  ratio_fp32_direct: number | null;
  /** PyTorch's same step (fp32, same batch and threads), where torch is installed; null elsewhere. */
  torch_images_per_s: number | null;
  torch_peak_rss_mb: number | null;
  ratio_torch: number | null;
  memory_torch: number | null;
  /** Trainable parameters of Octet's model and of the PyTorch peer's (null without a peer): equal when the architectures match. */
  params: number;
  torch_params: number | null;
  /** Where a step's time goes (null at batch sizes measured for memory only). */
  profile: StepProfile | null;
}

type Conv = TrainBenchRow['conv'];

export interface TrainBenchOptions {
  /** A zoo model: the three recipes of a model run (the default: the ResNet-18 suite). */
  model?: string;
  batch?: number;
  /** [C, H, W]; the model's bench default when absent. */
  input?: [number, number, number];
  /** Timed steps per round (best kept) and rounds. */
  steps?: number;
  rounds?: number;
  /** Steps under the profiler, in the last round (0: no profile). */
  profileSteps?: number;
}

/** What `octet bench train --model M` measures by default: the data each model trains on here. */
export const TRAIN_BENCH_MODELS: Record<string, { input: [number, number, number]; classes: number; batch: number }> = {
  resnet20: { input: [1, 28, 28], classes: 10, batch: 64 },
  'resnet18-cifar': { input: [3, 32, 32], classes: 100, batch: 64 },
  'resnet101-cifar': { input: [3, 32, 32], classes: 100, batch: 64 },
  squeezenet1_0: { input: [3, 64, 64], classes: 10, batch: 64 },
  squeezenet1_1: { input: [3, 64, 64], classes: 10, batch: 64 },
  // mnist-seg's 64x64 canvases, 11 classes.
  unet: { input: [1, 64, 64], classes: 11, batch: 16 },
  fastscnn: { input: [1, 64, 64], classes: 11, batch: 16 },
  resnet18: { input: [3, 224, 224], classes: 1000, batch: 16 },
  resnet101: { input: [3, 224, 224], classes: 1000, batch: 8 },
};

/** Parse `CxHxW` (e.g. `1x28x28`). */
export function parseInputShape(text: string): [number, number, number] {
  const parts = text.split('x').map((p) => Number(p));
  if (parts.length !== 3 || !parts.every((p) => Number.isInteger(p) && p >= 1)) {
    throw new InvalidArgumentError(`--input ${JSON.stringify(text)}; expected CxHxW with positive integers, e.g. 1x28x28 or 3x32x32`);
  }
  return parts as [number, number, number];
}

function measure(job: WorkerJob, conv: Conv): WorkerResult {
  const worker = new URL(`./train_worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(worker), JSON.stringify(job)], {
    encoding: 'utf8',
    timeout: 1_800_000,
    maxBuffer: 64 * 2 ** 20,
    env: { ...process.env, OCTET_CONV: conv === 'direct' ? 'direct' : '' },
  });
  if (r.status !== 0) throw new Error(`train bench worker failed (${job.model}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as WorkerResult;
}

/**
 * The Python that has torch and torchvision: `python3`, or else Debian's own interpreter, where
 * the python3-torch and python3-torchvision packages install (a pyenv `python3` does not see them).
 */
function torchPython(): string | null {
  for (const interpreter of ['python3', '/usr/bin/python3']) {
    if (runPython('import json, torch, torchvision; print(json.dumps(torch.__version__))', interpreter) !== null) return interpreter;
  }
  return null;
}

interface Config {
  recipeName: string;
  recipe: Recipe;
  batch: number;
  conv: Conv;
}

const FP32_ACCUMULATION = { format: 'fp32', chunk: 0, rounding: 'nearest' as const, outer: 'fp32', promote: 0 };

export function trainBench(threads: number, options: TrainBenchOptions = {}): TrainBenchRow[] {
  const named = options.model !== undefined;
  const model = options.model ?? 'resnet18-cifar';
  const info = modelInfo(model);
  const defaults = TRAIN_BENCH_MODELS[model] ?? { input: [info.inChannels, ...info.inputSize] as [number, number, number], classes: info.classes, batch: 16 };
  const input = options.input ?? defaults.input;
  const batch = options.batch ?? (nativeCore() ? defaults.batch : 4);
  if (!(Number.isInteger(batch) && batch >= 1)) throw new InvalidArgumentError(`--batch ${batch}; expected a positive integer`);
  const steps = options.steps ?? 3;
  const rounds = options.rounds ?? 3;
  const profileSteps = options.profileSteps ?? 2;
  const fp8 = presetRecipe('fp8');
  const configs: Config[] = named
    ? [
        { recipeName: 'fp32', recipe: presetRecipe('fp32'), batch, conv: 'winograd' },
        { recipeName: 'fp8', recipe: { ...fp8, accumulation: FP32_ACCUMULATION }, batch, conv: 'winograd' },
        { recipeName: 'fp8', recipe: fp8, batch, conv: 'winograd' },
      ]
    : [
        { recipeName: 'fp32', recipe: presetRecipe('fp32'), batch, conv: 'winograd' },
        // The same products as the low-precision recipes (which cannot use Winograd's transforms).
        { recipeName: 'fp32', recipe: presetRecipe('fp32'), batch, conv: 'direct' },
        { recipeName: 'fp8', recipe: { ...fp8, accumulation: FP32_ACCUMULATION }, batch, conv: 'winograd' },
        { recipeName: 'fp8', recipe: fp8, batch, conv: 'winograd' },
        // For comparison: batch norm's saved input in float32 (the only activation the fp8 preset
        // would otherwise keep in 32 bits).
        { recipeName: 'fp8', recipe: { ...fp8, accumulation: FP32_ACCUMULATION, savedActivations: null }, batch, conv: 'winograd' },
        // 16-bit master weights and moments as codes: the memory goal.
        { recipeName: 'fp8-m16', recipe: presetRecipe('fp8-m16'), batch, conv: 'winograd' },
      ];
  // Where activations outweigh the weights and optimizer state: four times the batch, one round.
  const large: Config[] =
    nativeCore() && !named
      ? [
          { recipeName: 'fp32', recipe: presetRecipe('fp32'), batch: 4 * batch, conv: 'winograd' },
          { recipeName: 'fp8', recipe: { ...fp8, accumulation: FP32_ACCUMULATION }, batch: 4 * batch, conv: 'winograd' },
        ]
      : [];
  const job = (c: Config, timedSteps: number, profile: number): WorkerJob => ({
    model, recipe: c.recipe, batch: c.batch, steps: timedSteps, input, classes: defaults.classes, profileSteps: profile,
  });
  const python = torchPython();
  const segmentation = info.task === 'segmentation';
  const best: (WorkerResult | null)[] = [...configs, ...large].map(() => null);
  let torch = null as TorchMeasurement | null;
  const keep = (i: number, m: WorkerResult) => {
    const b = best[i];
    best[i] = {
      ...m,
      images_per_s: Math.max(b?.images_per_s ?? 0, m.images_per_s),
      peak_rss_mb: Math.max(b?.peak_rss_mb ?? 0, m.peak_rss_mb),
      profile: m.profile ?? b?.profile ?? null,
    };
  };
  for (let round = 0; round < rounds; round++) {
    const last = round === rounds - 1;
    configs.forEach((c, i) => keep(i, measure(job(c, steps, last ? profileSteps : 0), c.conv)));
    // PyTorch takes its turn in every round too, so that it sees the same drift.
    const t = python ? torchTrainStep(python, { model, batch, input, classes: defaults.classes, steps, threads, segmentation }) : null;
    if (t) torch = { images_per_s: Math.max(torch?.images_per_s ?? 0, t.images_per_s), peak_rss_mb: Math.max(torch?.peak_rss_mb ?? 0, t.peak_rss_mb), params: t.params };
  }
  large.forEach((c, i) => keep(configs.length + i, measure(job(c, 1, 0), c.conv)));
  return [...configs, ...large].map((c, i) => {
    const m = best[i]!;
    const reference = best[i < configs.length ? 0 : configs.length]!;
    const direct = i < configs.length && !named ? best[1]! : null;
    const acc = isFloat32Accumulation(c.recipe.accumulation.format) ? 'fp32' : `${c.recipe.accumulation.format}${c.recipe.accumulation.chunk ? `/${c.recipe.accumulation.chunk}` : ''}`;
    const peer = c.batch === batch ? torch : null;
    return {
      bench: 'train', model, input: input.join('x'), classes: defaults.classes, recipe: c.recipeName, acc, saved: c.recipe.savedActivations ?? 'float32', conv: c.conv,
      batch: c.batch, threads, images_per_s: m.images_per_s,
      peak_rss_mb: m.peak_rss_mb, ratio_fp32: m.images_per_s / reference.images_per_s, memory_fp32: m.peak_rss_mb / reference.peak_rss_mb,
      saved_mb: m.saved_mb, saved_fp32: m.saved_mb / reference.saved_mb, state_mb: m.state_mb,
      ratio_fp32_direct: direct ? m.images_per_s / direct.images_per_s : null,
      torch_images_per_s: peer?.images_per_s ?? null, torch_peak_rss_mb: peer?.peak_rss_mb ?? null,
      ratio_torch: peer ? m.images_per_s / peer.images_per_s : null, memory_torch: peer ? m.peak_rss_mb / peer.peak_rss_mb : null,
      params: m.params, torch_params: peer?.params ?? null, profile: m.profile,
    };
  });
}
