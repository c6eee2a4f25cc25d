import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IGNORE_LABEL, checkLabels, epochOrder, makeBatch, trainingSubset, type Split } from '../../src/data/index.js';

const split: Split = {
  count: 3, channels: 1, height: 2, width: 3,
  images: Uint8Array.from({ length: 18 }, (_, i) => i * 10),
  labels: Uint8Array.of(2, 0, 1),
};

describe('batching', () => {
  test('normalization: (pixel / 255 - mean) / std, labels in batch order', () => {
    const b = makeBatch(split, [2, 0], { mean: [0.5], std: [0.25] }, null);
    assert.deepEqual(b.x.shape, [2, 1, 2, 3]);
    assert.ok(Math.abs(b.x.data[0] - (120 / 255 - 0.5) / 0.25) < 1e-6);
    assert.deepEqual(Array.from(b.labels), [1, 2]);
  });

  test('a normalization with a zero, negative or non-finite std, or a non-finite mean, is refused before it makes inputs infinite', () => {
    for (const norm of [{ mean: [0.5], std: [0] }, { mean: [0.5], std: [-1] }, { mean: [NaN], std: [0.3] }, { mean: [0.5], std: [Infinity] }, { mean: [], std: [] }]) {
      assert.throws(() => makeBatch(split, [0], norm, null), /normalization of channel 0: mean .*, std .*; expected a finite mean and a finite std above 0/);
    }
  });

  test('an image holding NaN or Inf is named by its example index', () => {
    const images = new Float32Array(18).fill(1);
    images[2 * 6 + 4] = NaN;
    const odd = { ...split, images } as unknown as Split;
    assert.throws(() => makeBatch(odd, [0, 2], { mean: [0], std: [1] }, null), /example 2 of the data holds a non-finite value \(NaN at channel 0\)/);
  });

  test('labels out of range are found with the split, the example and the range', () => {
    assert.doesNotThrow(() => checkLabels(split, { name: 'toy', classes: 3 }, [0, 1, 2], 'train'));
    assert.throws(() => checkLabels(split, { name: 'toy', classes: 2 }, [0, 1, 2], 'test'), /toy \(test split\): example 0 has label 2; expected 0 to 1/);
    const seg: Split = { count: 1, channels: 1, height: 1, width: 3, images: new Uint8Array(3), masks: Uint8Array.of(0, 255, 4) };
    assert.throws(() => checkLabels(seg, { name: 'seg', classes: 4, ignoreIndex: 255 }, [0], 'train'), /seg \(train split\): pixel 2 of example 0 has label 4; expected 0 to 3 or 255 \(ignored\)/);
  });

  test('augmentation is a pure function of (seed, epoch, index); crops pad with zeros, masks with ignore', () => {
    const aug = { cropPadding: 1, horizontalFlip: true };
    const norm = { mean: [0], std: [1 / 255] };
    const a = makeBatch(split, [0, 1, 2], norm, aug, 5, 2);
    assert.deepEqual(makeBatch(split, [0, 1, 2], norm, aug, 5, 2).x.data, a.x.data);
    const variants = new Set(Array.from({ length: 12 }, (_, e) => makeBatch(split, [1], norm, aug, 5, e).x.data.join()));
    assert.ok(variants.size > 3);
    const seg: Split = { ...split, labels: undefined, masks: Uint8Array.of(1, 2, 3, 4, 5, 6, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0) };
    for (let e = 0; e < 8; e++) {
      const s = makeBatch(seg, [0], norm, aug, 1, e);
      for (let p = 0; p < 6; p++) if (s.x.data[p] === 0 && s.labels[p] !== 1) assert.equal(s.labels[p], IGNORE_LABEL);
    }
  });

  test('the training subset is the first N of a seeded shuffle; epochs reorder it reproducibly', () => {
    const subset = trainingSubset(100, 3, 10);
    assert.equal(new Set(subset).size, 10);
    assert.deepEqual(trainingSubset(100, 3, 10), subset);
    const e0 = epochOrder(subset, 3, 0);
    assert.deepEqual([...e0].sort(), [...subset].sort());
    assert.notDeepEqual(e0, epochOrder(subset, 3, 1));
    assert.deepEqual(epochOrder(subset, 3, 1), epochOrder(subset, 3, 1));
    assert.deepEqual(Array.from(trainingSubset(4, 3)), [0, 1, 2, 3]);
  });
});
