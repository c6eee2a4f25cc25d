/**
 * Pruned convolutions on the block-sparse kernel at inference: the same evaluation, bit for bit,
 * as the dense direct products of the same checkpoint; a choice recorded per layer and shape; the
 * dense compute kept where gradients are recorded.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { useSparseInference } from '../../src/sparse/index.js';
import { CHECKPOINT_FILE, checkpointMasks, checkpointModel, evaluate, readCheckpointRecord, train, type TrainConfig } from '../../src/train/index.js';
import { mnistData, smallRun } from '../helpers/runs.js';

test('a pruned checkpoint evaluates to the same bits on the sparse kernel as on the dense direct products', async () => {
  const dataset = await mnistData();
  const out = mkdtempSync(join(tmpdir(), 'octet-sparse-eval-'));
  await train(smallRun('fp32', { epochs: 1, maxTrain: 96, conv: 'direct', prune: { block: '4x4', sparsity: 0.75, start: 1 } }), dataset, out);
  const file = join(out, CHECKPOINT_FILE);
  const loaded = readCheckpointRecord<TrainConfig>(file);
  const dense = evaluate(checkpointModel(file, dataset, {}, loaded).model, dataset, 150, 64);
  const { model } = checkpointModel(file, dataset, {}, loaded);
  const choices = useSparseInference(model, checkpointMasks(file, loaded.tensors), '4x4', { always: true });
  const sparse = evaluate(model, dataset, 150, 64);
  assert.equal(sparse.loss, dense.loss);
  assert.equal(sparse.value, dense.value);
  // 18 pruned convolutions (first and last layers dense), each recorded at its first input shape.
  assert.equal(new Set(choices.map((c) => c.layer)).size, 18);
  assert.ok(choices.every((c) => c.sparse && c.input.length === 4));
  // Measured: a choice per layer either way, with both times.
  const measured = checkpointModel(file, dataset, {}, loaded).model;
  const timed = useSparseInference(measured, checkpointMasks(file, loaded.tensors), '4x4');
  assert.equal(evaluate(measured, dataset, 150, 64).loss, dense.loss);
  assert.equal(new Set(timed.map((c) => c.layer)).size, 18);
  assert.ok(timed.every((c) => c.denseMs > 0 && c.sparseMs > 0));
});
