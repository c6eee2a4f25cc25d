/**
 * Pruning during training: the layers chosen (first and last kept dense, exclusions by path), the
 * schedule, masks with the requested sparsity per layer, pruned weights and their AdamW moments
 * exactly zero after every step, masks in the checkpoint, and a resume with pruning on that ends
 * bit for bit where an uninterrupted run does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Pruner, parsePruneSpec, prunableLayers } from '../../src/sparse/index.js';
import {
  CHECKPOINT_FILE, buildTrainModel, pruneCheckpoint, readCheckpointRecord, readSafetensors, restoreCheckpoint, train, type TrainConfig,
} from '../../src/train/index.js';
import { mnistData, smallRun } from '../helpers/runs.js';

describe('pruning during training', () => {
  test('--prune specs parse; bad ones say what is expected', () => {
    assert.deepEqual(parsePruneSpec('8x8:0.75'), { block: '8x8', sparsity: 0.75 });
    assert.deepEqual(parsePruneSpec('filter:0.5'), { block: 'filter', sparsity: 0.5 });
    assert.throws(() => parsePruneSpec('8x8'), /expected BLOCK:SPARSITY, e.g. 8x8:0.75/);
    assert.throws(() => parsePruneSpec('8x8:1.2'), /sparsity "1.2" is 1.2; expected a fraction in \[0, 1\)/);
    assert.throws(() => parsePruneSpec('9:0.5'), /block shape "9" is not RxC/);
  });

  test('prunable layers: GEMM weights, first and last dense by default, exclusions by path; unknown paths refused', async () => {
    const model = buildTrainModel(smallRun('fp32'), await mnistData());
    const params = model.namedParameters();
    const all = prunableLayers(params, { pruneFirstLast: true }).map((l) => l.name);
    assert.equal(all[0], 'conv1.weight');
    assert.equal(all.at(-1), 'fc.weight');
    const inner = prunableLayers(params, {}).map((l) => l.name);
    assert.deepEqual(inner, all.slice(1, -1));
    const without = prunableLayers(params, { exclude: ['layer1.0.conv1', 'layer2'] }).map((l) => l.name);
    assert.ok(!without.includes('layer1.0.conv1.weight') && !without.some((n) => n.startsWith('layer2.')));
    assert.ok(without.includes('layer1.0.conv2.weight'));
    assert.throws(() => prunableLayers(params, { exclude: ['layer9'] }), /no GEMM layer at "layer9"; layer paths are conv1, layer1.0.conv1/);
  });

  test('the schedule: one-shot at start, or cubic from start to end every N steps', async () => {
    const model = buildTrainModel(smallRun('fp32'), await mnistData());
    const oneShot = new Pruner(model.namedParameters(), { block: '4x4', sparsity: 0.5, start: 3 });
    assert.deepEqual([0, 2, 3, 4, 9].map((s) => oneShot.due(s)), [false, false, true, false, false]);
    assert.equal(oneShot.sparsityAt(2), 0);
    assert.equal(oneShot.sparsityAt(3), 0.5);
    const gradual = new Pruner(model.namedParameters(), { block: '4x4', sparsity: 0.8, start: 2, end: 12, every: 4 });
    assert.deepEqual([1, 2, 4, 6, 10, 12, 14].map((s) => gradual.due(s)), [false, true, false, true, true, true, false]);
    assert.ok(Math.abs(gradual.sparsityAt(7) - 0.8 * (1 - 0.125)) < 1e-12);
    assert.throws(() => new Pruner(model.namedParameters(), { block: '4x4', sparsity: 0.5, start: 5, end: 2 }), /prune end 2 is before start 5/);
  });

  test('masks have the requested sparsity per layer; pruned weights and their moments stay zero; masks are checkpointed', async () => {
    const dataset = await mnistData();
    const config: TrainConfig = smallRun('fp8', { epochs: 1, maxTrain: 160, prune: { block: '4x4', sparsity: 0.5, start: 1, end: 3, every: 1 } });
    const out = mkdtempSync(join(tmpdir(), 'octet-prune-'));
    const result = await train(config, dataset, out);
    assert.ok(result.completed && result.sparsity!.length > 10);
    for (const layer of result.sparsity!) {
      assert.equal(Math.round(layer.sparsity * layer.blocks), Math.round(0.5 * layer.blocks), layer.name);
      assert.ok(layer.zeros >= layer.sparsity * 0.9, `${layer.name}: ${layer.zeros} zeros for block sparsity ${layer.sparsity}`);
    }
    const file = join(out, CHECKPOINT_FILE);
    const { tensors } = readSafetensors(file);
    const mask = tensors.get('prune.layer1.0.conv1.weight')!;
    assert.equal(mask.dtype, 'U8');
    const model = buildTrainModel(config, dataset);
    restoreCheckpoint(file, readCheckpointRecord(file), model, null, null);
    const weight = model.namedParameters().find(([n]) => n === 'layer1.0.conv1.weight')![1];
    const cols = weight.size / weight.shape[0];
    const [, blockCols] = mask.shape;
    const moments = new Float32Array(tensors.get('optimizer.layer1.0.conv1.weight.exp_avg')!.bytes.slice().buffer);
    for (let i = 0; i < weight.size; i++) {
      const kept = mask.bytes[Math.floor(Math.floor(i / cols) / 4) * blockCols + Math.floor((i % cols) / 4)];
      if (!kept) {
        assert.equal(weight.data[i], 0, `weight ${i}`);
        assert.equal(moments[i], 0, `exp_avg ${i}`);
      }
    }
    const lines = (await import('node:fs')).readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.filter((l) => l.type === 'prune').map((l) => l.step), [1, 2, 3]);
  });

  test('stopped and resumed with pruning on: bit-identical to an uninterrupted run', async () => {
    const dataset = await mnistData();
    const config: TrainConfig = smallRun('fp8', { epochs: 1, maxTrain: 192, prune: { block: '8x8', sparsity: 0.6, start: 1, end: 5, every: 2 } });
    const whole = mkdtempSync(join(tmpdir(), 'octet-prune-whole-'));
    await train(config, dataset, whole);
    const parts = mkdtempSync(join(tmpdir(), 'octet-prune-parts-'));
    let steps = 0;
    const first = await train(config, dataset, parts, { hooks: { onStep: () => void steps++, shouldStop: () => steps >= 3 } });
    assert.equal(first.completed, false);
    await train(config, dataset, parts, { resume: true });
    const a = readSafetensors(join(whole, CHECKPOINT_FILE)).tensors, b = readSafetensors(join(parts, CHECKPOINT_FILE)).tensors;
    for (const [name, t] of a) assert.deepEqual(b.get(name)!.bytes, t.bytes, name);
    // A resume with other pruning settings is refused.
    await assert.rejects(train({ ...config, prune: { ...config.prune!, sparsity: 0.7 } }, dataset, parts, { resume: true }), /resume: .* was made with prune/);
  });
  test('one-shot pruning of a trained checkpoint, then fine-tuning from it (--init) with the same masks', async () => {
    const dataset = await mnistData();
    const config: TrainConfig = smallRun('fp32', { epochs: 1, maxTrain: 64 });
    const trained = mkdtempSync(join(tmpdir(), 'octet-dense-'));
    await train(config, dataset, trained);
    const out = join(mkdtempSync(join(tmpdir(), 'octet-pruned-')), CHECKPOINT_FILE);
    const layers = pruneCheckpoint(join(trained, CHECKPOINT_FILE), { block: '4x4', sparsity: 0.75 }, dataset, out);
    for (const l of layers) assert.equal(Math.round(l.sparsity * l.blocks), Math.round(0.75 * l.blocks), l.name);
    const { record } = readCheckpointRecord<TrainConfig>(out);
    assert.deepEqual(record.config.prune, { block: '4x4', sparsity: 0.75, start: 2, end: 2 });
    const { tensors } = readSafetensors(out);
    const w = new Float32Array(tensors.get('model.layer2.1.conv2.weight')!.bytes.slice().buffer);
    const m = new Float32Array(tensors.get('optimizer.layer2.1.conv2.weight.exp_avg_sq')!.bytes.slice().buffer);
    let zeros = 0;
    w.forEach((v, i) => {
      if (v === 0) {
        zeros++;
        assert.equal(m[i], 0);
      }
    });
    assert.ok(zeros >= 0.75 * w.length);
    // Fine-tuning from it at lr 0: the parameters start (and stay) as the pruned checkpoint holds them.
    const tuned = mkdtempSync(join(tmpdir(), 'octet-tuned-'));
    const tune: TrainConfig = { ...config, init: out, lr: 0, prune: { block: '4x4', sparsity: 0.75 } };
    await train(tune, dataset, tuned);
    const model = buildTrainModel(tune, dataset), start = buildTrainModel(tune, dataset);
    restoreCheckpoint(join(tuned, CHECKPOINT_FILE), readCheckpointRecord(join(tuned, CHECKPOINT_FILE)), model, null, null);
    restoreCheckpoint(out, readCheckpointRecord(out), start, null, null);
    const after = new Map(model.namedParameters().map(([n, p]) => [n, p.data]));
    for (const [n, p] of start.namedParameters()) assert.deepEqual(after.get(n), p.data, n);
    await assert.rejects(train({ ...tune, modelOptions: { width: 8 } }, dataset, mkdtempSync(join(tmpdir(), 'octet-bad-'))), /init: .* holds resnet20 \{"width":4\}; this run builds resnet20 \{"width":8\}/);
  });
});
