/** The sparse bench: one row per convolution, product, block shape, sparsity and operand type, with both speedups. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sparseBench, sparseStepBench } from '../../src/bench/sparse_bench.js';
import { nativeCore } from '../../src/kernels/native.js';

test('rows per block shape, sparsity and operands, speedup = dense / sparse time', { skip: !nativeCore() }, () => {
  const convs = [{ label: 'small', c: 8, o: 16, size: 8, stride: 1 }, { label: 'strided', c: 8, o: 16, size: 8, stride: 2 }];
  const rows = sparseBench(1, 2, convs, ['8x8', 'filter'], [0.5, 0.9]);
  // E5M2 input gradients where the sparse kernel runs (AVX-512 or AVX2 tiles).
  const codesInput = ['avx512', 'avx2'].includes(nativeCore()!.info().gemmKernel);
  assert.equal(rows.length, 2 * 2 * 2 * 5 + (codesInput ? 2 * 2 * 2 : 0));
  const inputCodes = (sparsity: number) => (codesInput ? [['input_gradient', '8x8', sparsity, 'e5m2']] : []);
  assert.deepEqual(rows.slice(0, codesInput ? 12 : 10).map((r) => [r.product, r.block, r.sparsity, r.operands]), [
    ['forward', '8x8', 0.5, 'fp32'], ['forward', '8x8', 0.5, 'e5m2'], ['input_gradient', '8x8', 0.5, 'fp32'], ...inputCodes(0.5), ['weight_gradient', '8x8', 0.5, 'fp32'], ['weight_gradient', '8x8', 0.5, 'e5m2'],
    ['forward', '8x8', 0.9, 'fp32'], ['forward', '8x8', 0.9, 'e5m2'], ['input_gradient', '8x8', 0.9, 'fp32'], ...inputCodes(0.9), ['weight_gradient', '8x8', 0.9, 'fp32'], ['weight_gradient', '8x8', 0.9, 'e5m2'],
  ]);
  for (const r of rows) {
    assert.equal(r.bench, 'sparse');
    assert.equal(r.k, 72);
    assert.equal(r.m, 16);
    assert.equal(r.n, r.shape === 'small' ? 2 * 64 : 2 * 16);
    assert.ok(Math.abs(r.speedup - r.dense_ms / r.sparse_ms) < 1e-9);
    assert.ok(r.speedup_default > 0);
  }
});

test('whole steps: a training step and an inference forward per operand type, pruned against dense', { skip: !nativeCore() }, () => {
  const rows = sparseStepBench(1, { rounds: 1, batch: 4, model: 'resnet20', size: 16, modelOptions: { width: 8 } });
  assert.deepEqual(rows.map((r) => [r.step, r.operands]), [['train_step', 'fp32'], ['inference', 'fp32'], ['train_step', 'e5m2'], ['inference', 'e5m2']]);
  for (const r of rows) {
    assert.equal(r.bench, 'sparse');
    assert.equal(r.block, '8x8');
    assert.equal(r.sparsity, 0.9);
    // Every convolution but the classifier: resnet20 has 19 plus 2 projection shortcuts at most.
    assert.ok(r.pruned_layers >= 19, String(r.pruned_layers));
    assert.ok(Math.abs(r.speedup - r.dense_ms / r.sparse_ms) < 1e-9);
  }
});
