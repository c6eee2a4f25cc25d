import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { SettingError } from '../../src/errors.js';
import { CHECKPOINT_FILE, classCounts, evaluateCheckpoint, runCriterion, savedCriterion, train, weightsFromCounts, withIgnoreIndex } from '../../src/train/index.js';
import { smallRun } from '../helpers/runs.js';

/** A 2-example, 2x2 segmentation set with 3 classes and the 255 ignore label. */
function tinySeg(): Dataset {
  const masks = Uint8Array.from([0, 0, 0, 1, /* */ 0, 2, 255, 1]);
  const split = { count: 2, channels: 1, height: 2, width: 2, images: new Uint8Array(8), masks };
  return { name: 'tiny', task: 'segmentation', classes: 3, train: split, test: split, normalization: { mean: [0], std: [1] }, augmentation: { cropPadding: 0, horizontalFlip: false }, ignoreIndex: 255 };
}

describe('criterion: class weights and the ignore label', () => {
  test('class counts leave ignored labels out and cover only the given examples', () => {
    assert.deepEqual(Array.from(classCounts(tinySeg(), [0, 1])), [4, 2, 1]);
    assert.deepEqual(Array.from(classCounts(tinySeg(), [1])), [1, 1, 1]);
  });

  test('balanced: total / (classes * count); median: median(freq) / freq; an absent class weighs 0', () => {
    assert.deepEqual(Array.from(weightsFromCounts('balanced', [4, 2, 1])), [7 / 12, 7 / 6, 7 / 3].map(Math.fround));
    assert.deepEqual(Array.from(weightsFromCounts('median', [4, 2, 1])), [0.5, 1, 2]);
    // Even count of present classes: the mean of the two middle frequencies.
    assert.deepEqual(Array.from(weightsFromCounts('median', [6, 0, 2, 1, 1])), [0.25, 0, 0.75, 1.5, 1.5].map(Math.fround));
    assert.deepEqual(Array.from(weightsFromCounts('balanced', [0, 0])), [0, 0]);
  });

  test('a list is checked: one finite weight >= 0 per class, not all 0; a rule must be known', () => {
    const seg = tinySeg();
    assert.deepEqual(Array.from(runCriterion(seg, [0.5, 1, 2], [0]).weights!), [0.5, 1, 2]);
    assert.equal(runCriterion(seg, undefined, [0]).weights, undefined);
    assert.equal(runCriterion(seg, undefined, [0]).ignoreIndex, 255);
    assert.throws(() => runCriterion(seg, [1, 1], [0]), (e: Error) => e instanceof SettingError && /2 given; this data set has 3 classes/.test(e.message));
    assert.throws(() => runCriterion(seg, [1, -1, 1], [0]), /class weight 1 is -1; expected a finite number >= 0/);
    assert.throws(() => runCriterion(seg, [1, NaN, 1], [0]), /class weight 1 is NaN/);
    assert.throws(() => runCriterion(seg, [0, 0, 0], [0]), /all 0/);
    assert.throws(() => runCriterion(seg, 'inverse' as never, [0]), /"inverse": expected balanced or median/);
  });

  test('an ignore index replaces the data set\'s, for segmentation only, within 0-255', () => {
    assert.equal(withIgnoreIndex(tinySeg(), 0).ignoreIndex, 0);
    assert.equal(withIgnoreIndex(tinySeg(), undefined).ignoreIndex, 255);
    assert.deepEqual(Array.from(classCounts(withIgnoreIndex(tinySeg(), 0), [0, 1])), [0, 2, 1]);
    assert.throws(() => withIgnoreIndex(tinySeg(), 256), /ignore index is 256; expected an integer label from 0 to 255/);
    const classification = { ...tinySeg(), task: 'classification' as const };
    assert.throws(() => withIgnoreIndex(classification, 3), /applies to segmentation labels; tiny is a classification set/);
  });

  test('mnist-seg, the finding of docs/segmentation.md: background owns over 90% of the labelled pixels; median weights give it under 0.02', async () => {
    const seg = await loadDataset('mnist-seg', { mnistSegCount: [300, 1] });
    const counts = classCounts(seg, Array.from({ length: 300 }, (_, i) => i));
    const total = counts.reduce((a, b) => a + b, 0);
    assert.ok(counts[0] / total > 0.9, `background share ${counts[0] / total}`);
    const weights = weightsFromCounts('median', counts);
    assert.ok(weights[0] < 0.02, `background weight ${weights[0]}`);
    for (let c = 1; c < 11; c++) assert.ok(weights[c] > 0.5 && weights[c] < 2, `digit ${c - 1} weight ${weights[c]}`);
  });

  test('a weighted run: recorded, its checkpoint evaluates to the run\'s last evaluation, a resume must match', async () => {
    const seg = await loadDataset('mnist-seg', { mnistSegCount: [48, 16] });
    const config = { ...smallRun('fp32'), model: 'unet', modelOptions: { width: 4, depth: 2 }, data: 'mnist-seg', epochs: 1, batchSize: 16, maxTrain: undefined, maxTest: 16 };
    const plain = await train(config, seg, mkdtempSync(join(tmpdir(), 'octet-crit-')));
    const out = mkdtempSync(join(tmpdir(), 'octet-crit-'));
    const weighted = await train({ ...config, classWeights: 'median' }, seg, out);
    assert.equal(weighted.config.classWeights, 'median');
    // Median-frequency weights change the training (and the test loss, which is the same criterion).
    assert.notEqual(weighted.final!.loss, plain.final!.loss);
    const again = evaluateCheckpoint(join(out, CHECKPOINT_FILE), seg);
    assert.equal(again.loss, weighted.final!.loss);
    assert.equal(again.value, weighted.final!.value);
    assert.ok(savedCriterion(weighted.config, seg).criterion.weights!.every((w) => w > 0));
    await assert.rejects(train({ ...config, classWeights: 'balanced' }, seg, out, { resume: true }), /classWeights "median", this run asks for "balanced"/);
  });

  test('an ignore index that leaves the data set\'s ignore label as a label out of range is refused, naming it', async () => {
    const seg = await loadDataset('mnist-seg', { mnistSegCount: [16, 16] });
    const config = { ...smallRun('fp32'), model: 'unet', modelOptions: { width: 4, depth: 2 }, data: 'mnist-seg', epochs: 1, batchSize: 16, maxTrain: undefined, maxTest: 16 };
    await assert.rejects(train({ ...config, ignoreIndex: 0 }, seg, mkdtempSync(join(tmpdir(), 'octet-crit-'))), /has label 255; expected 0 to 10 or 0 \(ignored\)/);
  });
});
