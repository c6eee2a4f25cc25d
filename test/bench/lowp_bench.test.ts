/** The low-precision bench's block-scaled rows: one per mode and thread count, with both ratios. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockBench } from '../../src/bench/lowp_bench.js';
import { nativeCore } from '../../src/kernels/native.js';

test('block-scaled rows: mx, promote-128 and deepseek-v3, ratios to float32 and to the per-tensor E4M3 GEMM', { skip: !nativeCore() }, () => {
  const rows = blockBench([1], [{ m: 64, n: 48, k: 160, label: 'small' }]);
  assert.deepEqual(rows.map((r) => [r.acc, r.scaling, r.a, r.threads]), [['mx', 'mx', 'e4m3', 1], ['promote-128', 'tile', 'e4m3', 1], ['deepseek-v3', 'tile', 'e4m3', 1]]);
  for (const r of rows) {
    assert.ok(r.gflops > 0 && r.fp32_gflops > 0);
    assert.ok(Math.abs(r.ratio_fp32 - r.gflops / r.fp32_gflops) < 1e-12);
    assert.ok(r.ratio_tensor! > 0);
  }
});
