/**
 * Peers measured in the same run as Octet, so ratios stay meaningful on a shared machine:
 * numpy (through python3) and ONNX Runtime (a dev dependency), each only where it is present.
 */
import { spawnSync } from 'node:child_process';

/**
 * Run a Python snippet that prints one JSON value (last line); null when the interpreter or a
 * module it imports is missing.
 */
export function runPython(code: string, interpreter = 'python3'): unknown | null {
  const r = spawnSync(interpreter, ['-c', code], { encoding: 'utf8', timeout: 600_000 });
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

/**
 * numpy (OpenBLAS) float32 matmul of an m x k by a k x n matrix on `threads` threads, best of
 * repeated runs lasting at least 0.4 s: GFLOP/s, or null without python3 and numpy.
 * OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for this run only, so current OpenBLAS picks
 * its kernel for this CPU.
 */
export function numpyGemm(m: number, n: number, k: number, threads: number): number | null {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const code = `
import json, time, numpy as np
rng = np.random.default_rng(1)
a = rng.random((${m}, ${k}), dtype=np.float32) - 0.5
b = rng.random((${k}, ${n}), dtype=np.float32) - 0.5
c = np.empty((${m}, ${n}), dtype=np.float32)
np.matmul(a, b, out=c)
best = 1e9; start = time.perf_counter(); r = 0
while r < 3 or (time.perf_counter() - start < 0.4 and r < 200):
    t = time.perf_counter(); np.matmul(a, b, out=c); best = min(best, time.perf_counter() - t); r += 1
print(json.dumps(${2 * m * n * k} / best / 1e9))
`;
  const r = spawnSync('python3', ['-c', code], { encoding: 'utf8', env, timeout: 600_000 });
  if (r.status !== 0) return null;
  const value = Number(r.stdout.trim().split('\n').pop());
  return Number.isFinite(value) ? value : null;
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
