/**
 * Training speed (`octet bench train`): ResNet-18, CIFAR variant, 100 classes, 32x32 input,
 * batch 64, one full step (forward, backward, AdamW) for fp32, fp8 with fp32 accumulation, fp8
 * with e6m9 accumulation, and fp8 with fp32 accumulation and batch norm's saved input in E4M3, each in its own process for an honest peak RSS. The configurations
 * run in turn for several rounds (the machine is shared, and interference drifts over minutes:
 * alternating exposes every configuration to the same drift); the best step of all rounds is
 * reported, and the peak RSS is the largest seen. PyTorch is the peer where
 * `python3 -c 'import torch'` works.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeCore } from '../kernels/index.js';
import { presetRecipe, type Recipe } from '../quant/index.js';
import { runPython } from './peers.js';

export interface TrainBenchRow {
  bench: 'train';
  model: string;
  recipe: string;
  acc: string;
  /** Format of batch norm's saved input (the recipe's savedActivations), float32 when none. */
  saved: string;
  batch: number;
  threads: number;
  images_per_s: number;
  peak_rss_mb: number;
  /** images/s of fp32 measured in the same run. */
  ratio_fp32: number;
  torch_images_per_s: number | null;
  ratio_torch: number | null;
}

function measure(model: string, recipe: Recipe, batch: number, steps: number): { images_per_s: number; peak_rss_mb: number } {
  const worker = new URL(`./train_worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(worker), model, JSON.stringify(recipe), String(batch), String(steps), '32', '100'], {
    encoding: 'utf8',
    timeout: 1_800_000,
  });
  if (r.status !== 0) throw new Error(`train bench worker failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** The same step in PyTorch (CIFAR ResNet-18 built from torchvision's), or null without torch. */
function torchImagesPerSecond(batch: number, steps: number): number | null {
  const result = runPython(`
import json, time, torch, torchvision
m = torchvision.models.resnet18(num_classes=100)
m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False); m.maxpool = torch.nn.Identity()
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
x = torch.randn(${batch}, 3, 32, 32); y = torch.randint(0, 100, (${batch},))
def step():
    opt.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward(); opt.step()
step(); best = 1e9
for _ in range(${steps}):
    t = time.perf_counter(); step(); best = min(best, time.perf_counter() - t)
print(json.dumps(${batch} / best))
`);
  return typeof result === 'number' ? result : null;
}

export function trainBench(threads: number, steps = 3, rounds = 3): TrainBenchRow[] {
  const model = 'resnet18-cifar';
  const batch = nativeCore() ? 64 : 4;
  const fp8 = presetRecipe('fp8');
  const fp32Accumulation = { format: 'fp32', chunk: 0, rounding: 'nearest' as const };
  const configs: [string, Recipe][] = [
    ['fp32', presetRecipe('fp32')],
    ['fp8', { ...fp8, accumulation: fp32Accumulation }],
    ['fp8', fp8],
    // Batch norm's saved input in E4M3 too: every activation kept for backward is 8-bit.
    ['fp8', { ...fp8, accumulation: fp32Accumulation, savedActivations: 'e4m3' }],
  ];
  const torch = torchImagesPerSecond(batch, steps);
  const best = configs.map(() => ({ images_per_s: 0, peak_rss_mb: 0 }));
  for (let round = 0; round < rounds; round++) {
    configs.forEach(([, recipe], i) => {
      const m = measure(model, recipe, batch, steps);
      best[i] = { images_per_s: Math.max(best[i].images_per_s, m.images_per_s), peak_rss_mb: Math.max(best[i].peak_rss_mb, m.peak_rss_mb) };
    });
  }
  const fp32 = best[0].images_per_s;
  const rows: TrainBenchRow[] = configs.map(([name, recipe], i) => {
    const m = best[i];
    const acc = recipe.accumulation.format === 'fp32' ? 'fp32' : `${recipe.accumulation.format}${recipe.accumulation.chunk ? `/${recipe.accumulation.chunk}` : ''}`;
    return {
      bench: 'train', model, recipe: name, acc, saved: recipe.savedActivations ?? 'float32', batch, threads, images_per_s: m.images_per_s, peak_rss_mb: m.peak_rss_mb,
      ratio_fp32: m.images_per_s / fp32, torch_images_per_s: torch, ratio_torch: torch ? m.images_per_s / torch : null,
    };
  });
  return rows;
}
