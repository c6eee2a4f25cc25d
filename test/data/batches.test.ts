import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IGNORE_LABEL, epochOrder, makeBatch, trainingSubset, type Split } from '../../src/data/index.js';

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
