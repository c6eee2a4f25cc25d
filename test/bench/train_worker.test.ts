/** The train bench's worker, run as the bench runs it (its own process), on small models. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { WorkerJob, WorkerResult } from '../../src/bench/train_profile.js';
import { buildModel } from '../../src/nn/index.js';
import { presetRecipe } from '../../src/quant/index.js';

const worker = fileURLToPath(new URL('../../src/bench/train_worker.ts', import.meta.url));

function run(recipe: string, job: Partial<WorkerJob> = {}): WorkerResult {
  const full: WorkerJob = { model: 'resnet20', recipe: presetRecipe(recipe), batch: 4, steps: 1, input: [3, 16, 16], classes: 10, profileSteps: 0, ...job };
  const r = spawnSync(process.execPath, ['--import', 'tsx', worker, JSON.stringify(full)], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as WorkerResult;
}

describe('train bench worker', () => {
  test('prints speed, peak memory, saved bytes and state bytes; fp8 saves a fraction of fp32', () => {
    const fp32 = run('fp32');
    const fp8 = run('fp8');
    for (const r of [fp32, fp8]) {
      assert.ok(r.seconds_per_step > 0 && r.images_per_s > 0 && r.peak_rss_mb > 0);
      assert.ok(r.saved_mb > 0);
      assert.equal(r.profile, null);
    }
    // The weights and AdamW's two float32 moments: three float32 copies of every parameter.
    const params = buildModel('resnet20', { classes: 10, inChannels: 3, seed: 1 }).parameters().reduce((n, p) => n + p.size, 0);
    for (const r of [fp32, fp8]) {
      assert.equal(r.params, params);
      assert.equal(r.state_mb, (params * 4 * 3) / 2 ** 20);
    }
    // One-byte codes instead of four-byte floats (plus the weights' codes, which weigh most at batch 4).
    assert.ok(fp8.saved_mb < 0.5 * fp32.saved_mb, `fp8 saved ${fp8.saved_mb} MB, fp32 ${fp32.saved_mb} MB`);
  });

  test('the profile covers the step: phases, op kinds and layers add up, every conv layer is named', () => {
    const r = run('fp8', { input: [1, 28, 28], profileSteps: 2 });
    const p = r.profile!;
    assert.equal(p.steps, 2);
    const kinds = (phase: string) => p.by_kind.filter((k) => k.phase === phase);
    const sum = (xs: { ms: number }[]) => xs.reduce((s, x) => s + x.ms, 0);
    // Per-kind entries add up to their phase's figure (rounding aside).
    assert.ok(Math.abs(sum(kinds('forward')) - p.forward_ms) < 0.05, `${sum(kinds('forward'))} vs ${p.forward_ms}`);
    assert.ok(Math.abs(sum(kinds('backward')) - p.backward_ms) < 0.05);
    assert.ok(Math.abs(sum(kinds('step')) - p.update_ms) < 0.05);
    // Nothing counted twice: the parts never exceed the wall time of the step.
    assert.ok(p.forward_ms + p.backward_ms + p.update_ms <= p.step_ms + 0.01);
    assert.ok(p.outside_ops_ms >= p.update_ms && p.outside_ops_ms < p.step_ms);
    // The ops of ResNet-20 (its convolutions and classifier as fp8 GEMMs), forward and backward, and the optimizer.
    for (const op of ['quantizedGemm', 'batchNorm2d', 'relu', 'add', 'subsamplePadChannels', 'softmaxCrossEntropy']) {
      assert.ok(kinds('forward').some((k) => k.kind === op), `forward ${op} in ${kinds('forward').map((k) => k.kind)}`);
    }
    assert.ok(kinds('backward').some((k) => k.kind === 'quantizedGemm'));
    assert.ok(kinds('step').some((k) => k.kind === 'optimizer'));
    // 19 convolutions and the classifier, each with forward and backward time under its path.
    const layers = new Map(p.by_layer.map((l) => [l.layer, l]));
    for (const path of ['conv1', 'layer1.0.conv1', 'layer3.2.conv2', 'fc']) {
      const l = layers.get(path);
      assert.ok(l && l.forward_ms > 0 && l.backward_ms > 0, `layer ${path}: ${JSON.stringify(l)}`);
    }
    assert.equal(r.params, buildModel('resnet20', { classes: 10, inChannels: 1, seed: 1 }).numParameters());
  });

  test('segmentation models train on one label per pixel', () => {
    const r = run('fp32', { model: 'fastscnn', input: [1, 32, 32], classes: 11, batch: 2, profileSteps: 1 });
    assert.ok(r.images_per_s > 0);
    assert.ok(r.profile!.by_kind.some((k) => k.phase === 'forward' && k.kind === 'upsample2d'), JSON.stringify(r.profile!.by_kind.map((k) => k.kind)));
  });
});
