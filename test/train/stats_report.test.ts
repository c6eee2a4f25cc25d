import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadDataset } from '../../src/data/index.js';
import { presetRecipe, statFormats, tensorRecord, type StatsRecord } from '../../src/quant/index.js';
import {
  CHECKPOINT_FILE, STATS_FILE, STATS_PAGE, narrowestFormats, readStats, statsDocument, train,
} from '../../src/train/index.js';
import { mnistData, smallRun } from '../helpers/runs.js';

const tmp = (name: string) => mkdtempSync(join(tmpdir(), `octet-${name}-`));

describe('stats files and page', () => {
  test('narrowest format: fewest bits, then most mantissa bits, holding the tensor at every step', () => {
    const formats = statFormats(['e3m4']);
    // Step 0 fits in E4M3 (and in E3M4, which has the more mantissa bits): 8 binades, nothing tiny.
    const narrow = Float32Array.from({ length: 8 }, (_, i) => 2 ** -i);
    // Step 1 spans 40 binades: beyond any 8-bit candidate's range at the tolerance, within FP16's.
    const wide = Float32Array.from({ length: 40 }, (_, i) => 2 ** -i);
    const records: StatsRecord[] = [
      tensorRecord(0, 'a', 'weights', narrow, narrow, formats),
      tensorRecord(0, 'b', 'weights', narrow, narrow, formats),
      tensorRecord(1, 'b', 'weights', wide, wide, formats),
      tensorRecord(0, 'c', 'weights', Float32Array.from([1, 2 ** -126]), Float32Array.from([1, 2 ** -126]), formats),
    ];
    const doc = statsDocument('m', 'd', presetRecipe('fp32'), formats, records);
    const table = narrowestFormats(doc, 0.001);
    assert.equal(table.get('a')!.get('weights')!.key, 'e3m4');
    assert.equal(table.get('b')!.get('weights')!.key, 'fp16');
    // 2^-126 next to 1 fits only bf16's range.
    assert.equal(table.get('c')!.get('weights')!.key, 'bf16');
    // A looser tolerance lets E5M2 lose its 7 smallest values of 40 (E4M3 would lose 21).
    assert.equal(narrowestFormats(doc, 0.3).get('b')!.get('weights')!.key, 'e5m2');
    assert.equal(narrowestFormats(doc, 0.3).get('b')!.get('weights')!.loss, 7 / 40);
    assert.deepEqual(doc.steps, [0, 1]);
  });

  test('readStats refuses what is not a stats file, naming it', () => {
    const dir = tmp('stats');
    writeFileSync(join(dir, 'bad.json'), '{"records": [');
    assert.throws(() => readStats(join(dir, 'bad.json')), /bad\.json is not valid JSON/);
    writeFileSync(join(dir, 'other.json'), '{"records": []}');
    assert.throws(() => readStats(join(dir, 'other.json')), /not an Octet stats file/);
    assert.throws(() => readStats(join(dir, 'missing.json')), /no stats file/);
  });

  test('a training run with stats: the same bits as without, the steps asked for, a page with every chart', async () => {
    const dataset = await mnistData();
    for (const recipe of ['fp8', 'hybrid']) {
      const config = smallRun(recipe, { epochs: 1, maxTrain: 128 });
      const off = tmp('off');
      const on = tmp('on');
      await train(config, dataset, off);
      await train(config, dataset, on, { stats: { steps: [0, 3], every: 0, formats: ['e3m4'] } });
      assert.deepEqual(readFileSync(join(on, CHECKPOINT_FILE)), readFileSync(join(off, CHECKPOINT_FILE)), `${recipe}: stats changed the training`);
      const doc = readStats(join(on, STATS_FILE));
      assert.deepEqual(doc.steps, [0, 3]);
      assert.equal(doc.records.length, 2 * 20 * 4);
      assert.deepEqual(doc.formats.map((f) => f.key), ['e5m2', 'e4m3', 'e6m9', 'fp16', 'bf16', 'e3m4']);
      const page = readFileSync(join(on, STATS_PAGE), 'utf8');
      // A heatmap per tensor class and step, and the SNR chart.
      assert.equal(page.match(/<svg/g)!.length, 4 * 2 + 1);
      assert.match(page, /Narrowest format per layer and tensor/);
    }
  });

  test('UNet (transposed convolutions) with stats: the same bits, every layer looked at', async () => {
    const seg = await loadDataset('mnist-seg', { mnistSegCount: [32, 8] });
    const config = { ...smallRun('fp8'), model: 'unet', modelOptions: { width: 4, depth: 2 }, data: 'mnist-seg', epochs: 1, batchSize: 8, maxTrain: 16, maxTest: 8 };
    const off = tmp('off');
    const on = tmp('on');
    await train(config, seg, off);
    await train(config, seg, on, { stats: { steps: [1] } });
    assert.deepEqual(readFileSync(join(on, CHECKPOINT_FILE)), readFileSync(join(off, CHECKPOINT_FILE)));
    const doc = readStats(join(on, STATS_FILE));
    assert.ok(doc.records.some((r) => r.layer.startsWith('up') && r.snr_db?.forward !== undefined), 'transposed convolutions have product errors');
  });

  test('resumed with stats: the records equal an uninterrupted run\'s', async () => {
    const dataset = await mnistData();
    const config = smallRun('fp8', { epochs: 1, maxTrain: 192 });
    const whole = tmp('whole');
    await train(config, dataset, whole, { stats: { every: 2 } });
    const parts = tmp('parts');
    let steps = 0;
    await train(config, dataset, parts, { stats: { every: 2 }, hooks: { onStep: () => void steps++, shouldStop: () => steps >= 3 } });
    assert.deepEqual(readStats(join(parts, STATS_FILE)).steps, [0, 2]);
    await train(config, dataset, parts, { resume: true, stats: { every: 2 } });
    assert.deepEqual(readStats(join(parts, STATS_FILE)).records, readStats(join(whole, STATS_FILE)).records);
  });

  test('a step beyond the run, or no step at all, is refused before anything is written', async () => {
    const dataset = await mnistData();
    const out = tmp('beyond');
    await assert.rejects(train(smallRun('fp8', { epochs: 1, maxTrain: 64 }), dataset, out, { stats: { steps: [0, 2] } }), /stats step 2 is beyond the run: it has 2 steps/);
    await assert.rejects(train(smallRun('fp8', { epochs: 1, maxTrain: 64 }), dataset, out, { stats: {} }), /no step to look at/);
    assert.throws(() => readStats(join(out, STATS_FILE)), /no stats file/);
  });
});
