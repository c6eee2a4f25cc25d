import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FASHION_MNIST_DIR, IGNORE_LABEL, MNIST_SEG_CLASSES, buildMnistSeg, encodeIdx, loadDataset, readMnist } from '../../src/data/index.js';

describe('data sets by name', () => {
  test('mnist: the default data, installed with the package', async () => {
    const ds = await loadDataset('mnist');
    assert.deepEqual([ds.task, ds.classes, ds.train.count, ds.test.count, ds.train.channels], ['classification', 10, 60000, 10000, 1]);
  });

  test('mnist-seg: deterministic canvases of real digits with background, digit classes and ignored rims', () => {
    const source = readMnist('test');
    const a = buildMnistSeg(source, 4, 1);
    assert.deepEqual(buildMnistSeg(source, 4, 1).masks, a.masks);
    assert.deepEqual([a.height, a.width, a.channels], [64, 64, 1]);
    const labels = new Set(a.masks);
    assert.ok(labels.has(0) && labels.has(IGNORE_LABEL));
    for (const l of labels) assert.ok(l === IGNORE_LABEL || l < MNIST_SEG_CLASSES);
    // Every stroke pixel (>= 128) carries a digit class; every blank pixel is background.
    for (let p = 0; p < a.images.length; p++) {
      if (a.images[p] === 0) assert.equal(a.masks[p], 0);
      if (a.masks[p] >= 1 && a.masks[p] <= 10) assert.ok(a.images[p] >= 128);
    }
    const digits = [0, 1, 2].map((d) => source.labels[d] + 1);
    assert.ok(digits.every((d) => a.masks.subarray(0, 4096).includes(d)));
  });

  test('fashion-mnist: found where Debian installs it (gzipped IDX)', { skip: existsSync(FASHION_MNIST_DIR) ? false : `${FASHION_MNIST_DIR} is not installed (apt install dataset-fashion-mnist)` }, async () => {
    const ds = await loadDataset('fashion-mnist');
    assert.deepEqual([ds.classes, ds.train.count, ds.test.count, ds.train.height, ds.train.width], [10, 60000, 10000, 28, 28]);
    assert.equal(new Set(ds.test.labels).size, 10);
  });

  test('unknown names, missing folders and Fashion-MNIST without its package say what to do', async () => {
    await assert.rejects(loadDataset('imagenet'), /unknown data set "imagenet"; use one of: mnist, fashion-mnist\[:DIR\]/);
    await assert.rejects(loadDataset('cifar10'), /--data cifar10 needs a folder: --data cifar10:DIR/);
    await assert.rejects(loadDataset('fashion-mnist:/nonexistent'), /apt install dataset-fashion-mnist\) or give the folder as --data fashion-mnist:DIR/);
    // A missing labels file is named as the labels file, not the images file.
    const half = mkdtempSync(join(tmpdir(), 'octet-fashion-'));
    writeFileSync(join(half, 'train-images-idx3-ubyte'), encodeIdx([1, 2, 2], new Uint8Array(4)));
    await assert.rejects(loadDataset(`fashion-mnist:${half}`), /train-labels-idx1-ubyte\.gz: is missing/);
  });
});
