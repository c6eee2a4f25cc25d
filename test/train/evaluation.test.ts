import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { presetRecipe } from '../../src/quant/index.js';
import { CHECKPOINT_FILE, evaluateCheckpoint, train, type TrainConfig } from '../../src/train/index.js';
import { mnistData, smallRun } from '../helpers/runs.js';

const base = (recipe: string, overrides: Partial<TrainConfig> = {}) => smallRun(recipe, { epochs: 1, maxTrain: 128, maxTest: 150, ...overrides });
const data = mnistData;

describe('evaluating a checkpoint', () => {
  for (const recipe of ['fp8', 'hybrid', 'fp32']) {
    test(`${recipe}: reproduces the run's last evaluation bit for bit, under the checkpoint's recipe`, async () => {
      const dataset = await data();
      const out = mkdtempSync(join(tmpdir(), 'octet-eval-'));
      // Two epochs: the second trains after the first's evaluation, which must not have moved any scale.
      const run = await train(base(recipe, { epochs: 2 }), dataset, out);
      const final = run.final!;
      const again = evaluateCheckpoint(join(out, CHECKPOINT_FILE), dataset);
      assert.equal(again.recipe, recipe);
      assert.deepEqual([again.value, again.top5, again.loss], [final.value, final.top5, final.loss]);
      assert.equal(again.batchSize, 64);
      assert.equal(again.maxTest, 150);
    });
  }

  test('another recipe overrides the checkpoint\'s, and the result names what ran', async () => {
    const dataset = await data();
    const out = mkdtempSync(join(tmpdir(), 'octet-eval-'));
    const run = await train(base('fp8'), dataset, out);
    const plain = evaluateCheckpoint(join(out, CHECKPOINT_FILE), dataset, { recipe: presetRecipe('fp32') });
    assert.equal(plain.recipe, 'fp32');
    assert.notEqual(plain.loss, run.final!.loss, 'float32 evaluation is another computation than fp8\'s');
  });
});
