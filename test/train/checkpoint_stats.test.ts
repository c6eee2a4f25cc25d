import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { presetRecipe } from '../../src/quant/index.js';
import { CHECKPOINT_FILE, STATS_FILE, checkpointStats, readStats, train, writeStats, writeStatsPage } from '../../src/train/index.js';
import { mnistData, smallRun } from '../helpers/runs.js';

const tmp = (name: string) => mkdtempSync(join(tmpdir(), `octet-${name}-`));

describe('statistics of a checkpoint', () => {
  test('a checkpoint: one batch through its weights, under its recipe or another; another model is refused', async () => {
    const dataset = await mnistData();
    const out = tmp('ckpt');
    await train(smallRun('fp32', { epochs: 1, maxTrain: 64 }), dataset, out);
    const file = join(out, CHECKPOINT_FILE);
    const own = checkpointStats(file, dataset);
    assert.deepEqual(own.steps, [0]);
    assert.ok(own.records.every((r) => r.format === 'float32' && r.snr_db === undefined));
    const fp8 = checkpointStats(file, dataset, { recipe: presetRecipe('fp8') });
    assert.ok(fp8.records.some((r) => r.format === 'float8_e5m2' && r.snr_db?.forward !== undefined));
    assert.throws(() => checkpointStats(file, dataset, { model: 'unet' }), /holds a resnet20 model, not unet/);
    const dir = tmp('page');
    writeStats(dir, fp8);
    await writeStatsPage(dir, fp8);
    assert.deepEqual(readStats(join(dir, STATS_FILE)), JSON.parse(JSON.stringify(fp8)));
  });
});
