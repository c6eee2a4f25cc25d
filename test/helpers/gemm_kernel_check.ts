/**
 * Run in a child process with OCTET_GEMM_KERNEL set: checks the selected micro-kernel against
 * the reference on edge-heavy shapes and prints the kernel name and the worst relative error.
 */
import { gemm, gemmReference } from '../../src/kernels/gemm.js';
import { nativeCore } from '../../src/kernels/native.js';
import { uniform } from './random.js';

const native = nativeCore();
if (!native) throw new Error('native core not loaded');
let worst = 0;
for (const [m, n, k, transA, transB] of [
  [1, 1, 1, false, false],
  [7, 17, 300, false, true],
  [13, 33, 5, true, false],
  [50, 40, 513, true, true],
  [300, 9, 64, false, false],
] as const) {
  const a = uniform(m * k, m + n);
  const b = uniform(k * n, k + 1);
  const c = new Float32Array(m * n);
  const ref = new Float32Array(m * n);
  gemm(m, n, k, a, b, c, { transA, transB });
  gemmReference({ transA, transB, m, n, k, alpha: 1, a, lda: transA ? m : k, b, ldb: transB ? k : n, beta: 0, c: ref, ldc: n });
  for (let i = 0; i < c.length; i++) worst = Math.max(worst, Math.abs(c[i] - ref[i]) / (Math.sqrt(k) + Math.abs(ref[i])));
}
process.stdout.write(`kernel ${native.info().gemmKernel}\n`);
process.stdout.write(`max relative error ${worst} ${worst < 1e-5 ? 'ok' : 'TOO LARGE'}\n`);
