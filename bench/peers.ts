/**
 * Peers measured in the same run as Octet, so ratios stay meaningful on a shared machine:
 * numpy (through python3) and ONNX Runtime (a dev dependency), each only where it is present.
 */
import { spawnSync } from 'node:child_process';

/** Run a python3 snippet that prints one JSON value; null when python3 or numpy is missing. */
export function runPython(code: string): unknown | null {
  const r = spawnSync('python3', ['-c', code], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) return null;
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null');
  } catch {
    return null;
  }
}

/** numpy's float32 -> float16 -> float32 round trip on n elements: elements per second. */
export function numpyFloat16RoundTrip(n: number): { encode: number; quantize: number } | null {
  const result = runPython(`
import json, time, numpy as np
x = (np.random.default_rng(1).standard_normal(${n}) * 100).astype(np.float32)
def best(f):
    f(); ts = []
    for _ in range(15):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    ts.sort(); return ts[len(ts)//2]
enc = best(lambda: x.astype(np.float16))
q = best(lambda: x.astype(np.float16).astype(np.float32))
print(json.dumps({"encode": ${n} / enc, "quantize": ${n} / q}))
`);
  return result as { encode: number; quantize: number } | null;
}

export async function loadOnnxRuntime(): Promise<typeof import('onnxruntime-node') | null> {
  try {
    const loaded = (await import('onnxruntime-node')) as typeof import('onnxruntime-node') & {
      default?: typeof import('onnxruntime-node');
    };
    // Under some loaders the CommonJS exports arrive as the default export only.
    return typeof loaded.InferenceSession === 'function' ? loaded : (loaded.default ?? null);
  } catch {
    return null;
  }
}
