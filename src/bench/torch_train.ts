/**
 * The PyTorch peer of `octet bench train`: the same architecture, batch, input and optimizer
 * (AdamW), fp32, on the same number of threads, in its own process. torchvision's models where
 * they exist (ResNet-18/101, the CIFAR ResNet-18 as torchvision's with a 3x3 stem and no max pool,
 * SqueezeNet); ResNet-20, U-Net and Fast-SCNN defined in scripts/torch_models.py to Octet's layer
 * lists and parameter paths (the parameter count is reported on both sides, so a mismatch shows).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runPython } from './peers.js';

export interface TorchJob {
  model: string;
  batch: number;
  input: [number, number, number];
  classes: number;
  width?: number;
  steps: number;
  threads: number;
  segmentation: boolean;
}

export interface TorchMeasurement {
  images_per_s: number;
  peak_rss_mb: number;
  params: number;
}

/** Python source of the model definitions (scripts/torch_models.py, shipped with the package). */
export function torchModelsSource(): string {
  return readFileSync(fileURLToPath(new URL('../../scripts/torch_models.py', import.meta.url)), 'utf8');
}

/** PyTorch's training step on `job`, best of `job.steps`, or null where torch does not import. */
export function torchTrainStep(python: string, job: TorchJob): TorchMeasurement | null {
  const [c, h, w] = job.input;
  const labels = job.segmentation ? `(${job.batch}, ${h}, ${w})` : `(${job.batch},)`;
  const result = runPython(
    `${torchModelsSource()}
import json, resource, time
torch.set_num_threads(${job.threads})
torch.manual_seed(1)
m = build(${JSON.stringify(job.model)}, ${c}, ${job.classes}, ${job.width ?? 0})
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
x = torch.randn(${job.batch}, ${c}, ${h}, ${w}); y = torch.randint(0, ${job.classes}, ${labels})
def step():
    opt.zero_grad(); F.cross_entropy(m(x), y).backward(); opt.step()
step(); best = 1e9
for _ in range(${job.steps}):
    t = time.perf_counter(); step(); best = min(best, time.perf_counter() - t)
print(json.dumps({"images_per_s": ${job.batch} / best, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "params": sum(p.numel() for p in m.parameters())}))
`,
    python,
  );
  return result as TorchMeasurement | null;
}
