/** The sparse bench: one row per convolution, block shape, sparsity and operand type, with both speedups. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sparseBench } from '../../src/bench/sparse_bench.js';
import { nativeCore } from '../../src/kernels/native.js';

test('rows per block shape, sparsity and operands, speedup = dense / sparse time', { skip: !nativeCore() }, () => {
  const convs = [{ label: 'small', c: 8, o: 16, size: 8, stride: 1 }, { label: 'strided', c: 8, o: 16, size: 8, stride: 2 }];
  const rows = sparseBench(1, 2, convs, ['8x8', 'filter'], [0.5, 0.9]);
  assert.equal(rows.length, 2 * 2 * 2 * 2);
  assert.deepEqual(rows.slice(0, 4).map((r) => [r.block, r.sparsity, r.operands]), [['8x8', 0.5, 'fp32'], ['8x8', 0.5, 'e5m2'], ['8x8', 0.9, 'fp32'], ['8x8', 0.9, 'e5m2']]);
  for (const r of rows) {
    assert.equal(r.bench, 'sparse');
    assert.equal(r.k, 72);
    assert.equal(r.m, 16);
    assert.equal(r.n, r.shape === 'small' ? 2 * 64 : 2 * 16);
    assert.ok(Math.abs(r.speedup - r.dense_ms / r.sparse_ms) < 1e-9);
    assert.ok(r.speedup_default > 0);
  }
});
