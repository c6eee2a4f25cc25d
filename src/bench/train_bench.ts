/**
 * Training speed (`octet bench train`): ResNet-18, CIFAR variant, 100 classes, 32x32 input,
 * batch 64, one full step (forward, backward, AdamW) for fp32, fp32 with its 3x3 convolutions on
 * the direct product instead of Winograd (the products the low-precision recipes compute), fp8
 * with fp32 accumulation, fp8 with e6m9 accumulation, and fp8 with fp32 accumulation but batch
 * norm's saved input in float32, each in its own process for an honest peak RSS; then fp32 and
 * fp8 at batch 256 once, for memory where activations dominate. The batch-64 configurations run in turn for several rounds
 * (the machine is shared, and interference drifts over minutes: alternating exposes every
 * configuration to the same drift); the best step of all rounds is reported, and the peak RSS is
 * the largest seen. PyTorch is the peer where torch and torchvision import (`python3`, or Debian's
 * /usr/bin/python3 with python3-torch and python3-torchvision), in every round.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeCore } from '../kernels/index.js';
import { isFloat32Accumulation, presetRecipe, type Recipe } from '../quant/index.js';
import { runPython } from './peers.js';

export interface TrainBenchRow {
  bench: 'train';
  model: string;
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
}

type Conv = TrainBenchRow['conv'];

function measure(model: string, recipe: Recipe, batch: number, steps: number, conv: Conv): OctetMeasurement {
  const worker = new URL(`./train_worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(worker), model, JSON.stringify(recipe), String(batch), String(steps), '32', '100'], {
    encoding: 'utf8',
    timeout: 1_800_000,
    env: { ...process.env, OCTET_CONV: conv === 'direct' ? 'direct' : '' },
  });
  if (r.status !== 0) throw new Error(`train bench worker failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
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

interface Measurement {
  images_per_s: number;
  peak_rss_mb: number;
}

interface OctetMeasurement extends Measurement {
  saved_mb: number;
  state_mb: number;
}

/** The same step in PyTorch (CIFAR ResNet-18 built from torchvision's, AdamW), in its own process. */
function torchStep(python: string, batch: number, steps: number, threads: number): Measurement | null {
  const result = runPython(`
import json, resource, time, torch, torchvision
torch.set_num_threads(${threads})
m = torchvision.models.resnet18(num_classes=100)
m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False); m.maxpool = torch.nn.Identity()
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
x = torch.randn(${batch}, 3, 32, 32); y = torch.randint(0, 100, (${batch},))
def step():
    opt.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward(); opt.step()
step(); best = 1e9
for _ in range(${steps}):
    t = time.perf_counter(); step(); best = min(best, time.perf_counter() - t)
print(json.dumps({"images_per_s": ${batch} / best, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`, python);
  return result as Measurement | null;
}

export function trainBench(threads: number, steps = 3, rounds = 3): TrainBenchRow[] {
  const model = 'resnet18-cifar';
  const batch = nativeCore() ? 64 : 4;
  const fp8 = presetRecipe('fp8');
  const fp32Accumulation = { format: 'fp32', chunk: 0, rounding: 'nearest' as const, outer: 'fp32', promote: 0 };
  const configs: [string, Recipe, number, Conv][] = [
    ['fp32', presetRecipe('fp32'), batch, 'winograd'],
    // The same products as the low-precision recipes (which cannot use Winograd's transforms).
    ['fp32', presetRecipe('fp32'), batch, 'direct'],
    ['fp8', { ...fp8, accumulation: fp32Accumulation }, batch, 'winograd'],
    ['fp8', fp8, batch, 'winograd'],
    // For comparison: batch norm's saved input in float32 (the only activation the fp8 preset
    // would otherwise keep in 32 bits).
    ['fp8', { ...fp8, accumulation: fp32Accumulation, savedActivations: null }, batch, 'winograd'],
  ];
  // Where activations outweigh the weights and optimizer state: four times the batch, one round.
  const large: [string, Recipe, number, Conv][] = nativeCore()
    ? [['fp32', presetRecipe('fp32'), 4 * batch, 'winograd'], ['fp8', { ...fp8, accumulation: fp32Accumulation }, 4 * batch, 'winograd']]
    : [];
  const python = torchPython();
  const best: OctetMeasurement[] = [...configs, ...large].map(() => ({ images_per_s: 0, peak_rss_mb: 0, saved_mb: 0, state_mb: 0 }));
  let torch = null as Measurement | null;
  const keep = (i: number, m: OctetMeasurement) => {
    best[i] = { ...m, images_per_s: Math.max(best[i].images_per_s, m.images_per_s), peak_rss_mb: Math.max(best[i].peak_rss_mb, m.peak_rss_mb) };
  };
  for (let round = 0; round < rounds; round++) {
    configs.forEach(([, recipe, b, conv], i) => keep(i, measure(model, recipe, b, steps, conv)));
    // PyTorch takes its turn in every round too, so that it sees the same drift.
    const t = python ? torchStep(python, batch, steps, threads) : null;
    if (t) torch = { images_per_s: Math.max(torch?.images_per_s ?? 0, t.images_per_s), peak_rss_mb: Math.max(torch?.peak_rss_mb ?? 0, t.peak_rss_mb) };
  }
  large.forEach(([, recipe, b, conv], i) => keep(configs.length + i, measure(model, recipe, b, 1, conv)));
  return [...configs, ...large].map(([name, recipe, b, conv], i) => {
    const m = best[i];
    const reference = best[i < configs.length ? 0 : configs.length];
    const direct = i < configs.length ? best[1] : null;
    const acc = isFloat32Accumulation(recipe.accumulation.format) ? 'fp32' : `${recipe.accumulation.format}${recipe.accumulation.chunk ? `/${recipe.accumulation.chunk}` : ''}`;
    const peer = b === batch ? torch : null;
    return {
      bench: 'train', model, recipe: name, acc, saved: recipe.savedActivations ?? 'float32', conv, batch: b, threads, images_per_s: m.images_per_s,
      peak_rss_mb: m.peak_rss_mb, ratio_fp32: m.images_per_s / reference.images_per_s, memory_fp32: m.peak_rss_mb / reference.peak_rss_mb,
      saved_mb: m.saved_mb, saved_fp32: m.saved_mb / reference.saved_mb, state_mb: m.state_mb,
      ratio_fp32_direct: direct ? m.images_per_s / direct.images_per_s : null,
      torch_images_per_s: peer?.images_per_s ?? null, torch_peak_rss_mb: peer?.peak_rss_mb ?? null,
      ratio_torch: peer ? m.images_per_s / peer.images_per_s : null, memory_torch: peer ? m.peak_rss_mb / peer.peak_rss_mb : null,
    };
  });
}
