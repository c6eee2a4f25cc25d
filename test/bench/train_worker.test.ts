/** The train bench's worker, run as the bench runs it (its own process), on a small model. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildModel } from '../../src/nn/index.js';
import { presetRecipe } from '../../src/quant/index.js';

const worker = fileURLToPath(new URL('../../src/bench/train_worker.ts', import.meta.url));

interface WorkerResult {
  seconds_per_step: number;
  images_per_s: number;
  peak_rss_mb: number;
  saved_mb: number;
  state_mb: number;
}

function run(recipe: string): WorkerResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', worker, 'resnet20', JSON.stringify(presetRecipe(recipe)), '4', '1', '16', '10'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
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
    }
    // The weights and AdamW's two float32 moments: three float32 copies of every parameter.
    const params = buildModel('resnet20', { classes: 10, inChannels: 3, seed: 1 }).parameters().reduce((n, p) => n + p.size, 0);
    for (const r of [fp32, fp8]) assert.equal(r.state_mb, (params * 4 * 3) / 2 ** 20);
    // One-byte codes instead of four-byte floats (plus the weights' codes, which weigh most at batch 4).
    assert.ok(fp8.saved_mb < 0.5 * fp32.saved_mb, `fp8 saved ${fp8.saved_mb} MB, fp32 ${fp32.saved_mb} MB`);
  });
});
