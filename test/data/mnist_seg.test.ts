import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IGNORE_LABEL, MNIST_SEG_LARGE_LAYOUT, buildMnistSeg, enlargeDigit, loadDataset, readMnist } from '../../src/data/index.js';

// FNV-1a over bytes: pins the canvases users' runs and published figures were made with.
function fnv(a: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const v of a) h = Math.imul(h ^ v, 0x01000193) >>> 0;
  return h.toString(16);
}

describe('mnist-seg layouts', () => {
  test('mnist-seg keeps the canvases it had before layouts existed (the figures in docs/segmentation.md)', () => {
    const test = buildMnistSeg(readMnist('test'), 6000, 2);
    assert.deepEqual([fnv(test.images), fnv(test.masks)], ['b6af20b6', '6da163c4']);
  });

  test('enlargeDigit: scale 1 is the digit; scale 2 interpolates between half-pixel centres and keeps the edges', () => {
    const digit = Uint8Array.from([0, 200, 100, 50]);
    assert.equal(enlargeDigit(digit, 2, 2, 1), digit);
    const big = enlargeDigit(digit, 2, 2, 2);
    // Sample centres at -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1) of the source grid:
    // row 1 = 0.75 x row 0 + 0.25 x row 3, e.g. 0.75 x 150 + 0.25 x 62.5 = 128.1; halves round up.
    assert.deepEqual(Array.from(big), [
      0, 50, 150, 200,
      25, 59, 128, 163,
      75, 78, 84, 88,
      100, 88, 63, 50,
    ]);
  });

  test('mnist-seg-large: one digit enlarged 4x per 128x128 canvas, its class on its strokes, the rim ignored', async () => {
    const source = readMnist('test');
    const a = buildMnistSeg(source, 3, 2, MNIST_SEG_LARGE_LAYOUT);
    assert.deepEqual([a.height, a.width, a.count], [128, 128, 3]);
    for (let k = 0; k < 3; k++) {
      const mask = a.masks.subarray(k * 128 * 128, (k + 1) * 128 * 128);
      const classes = new Set([...mask].filter((v) => v !== 0 && v !== IGNORE_LABEL));
      assert.deepEqual([...classes], [source.labels[k] + 1]);
      // Strokes 4x as wide: at least 10x the stroke pixels of the digit itself.
      const strokes = mask.filter((v) => v === source.labels[k] + 1).length;
      const original = source.images.subarray(k * 784, (k + 1) * 784).filter((v) => v >= 128).length;
      assert.ok(strokes >= 10 * original, `${strokes} stroke pixels for ${original} in the digit`);
    }
    const ds = await loadDataset('mnist-seg-large', { mnistSegCount: [2, 2] });
    assert.deepEqual([ds.task, ds.classes, ds.train.height, ds.test.width, ds.ignoreIndex], ['segmentation', 11, 128, 128, IGNORE_LABEL]);
    assert.deepEqual(ds.normalization, { mean: [0.1], std: [0.26] });
  });

  test('a layout whose enlarged digit does not fit the canvas is refused, naming the sizes', () => {
    assert.throws(() => buildMnistSeg(readMnist('test'), 1, 1, { size: 64, digits: 1, scale: 3 }), /a 28x28 digit enlarged 3x does not fit a 64x64 canvas/);
  });
});
