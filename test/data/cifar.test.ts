import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DataFileError, parseCifarBatch, readCifar } from '../../src/data/index.js';

/** A batch file written byte by byte as the CIFAR page describes it. */
function batchBytes(labels: number[][], pixel: (image: number, offset: number) => number): Uint8Array {
  const record = labels[0].length + 3072;
  const out = new Uint8Array(labels.length * record);
  labels.forEach((l, i) => {
    out.set(l, i * record);
    for (let p = 0; p < 3072; p++) out[i * record + l.length + p] = pixel(i, p);
  });
  return out;
}

describe('CIFAR binary batches', () => {
  test('CIFAR-10: five train batches and a test batch; labels and planar RGB pixels', () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-cifar10-'));
    for (let b = 1; b <= 5; b++) writeFileSync(join(dir, `data_batch_${b}.bin`), batchBytes([[b], [9 - b]], (i, p) => (p + i + b) % 256));
    writeFileSync(join(dir, 'test_batch.bin'), batchBytes([[3]], (_i, p) => (p < 1024 ? 255 : 0)));
    const train = readCifar(dir, 'cifar10', 'train');
    assert.equal(train.count, 10);
    assert.deepEqual(Array.from(train.labels), [1, 8, 2, 7, 3, 6, 4, 5, 5, 4]);
    assert.equal(train.images[1 * 3072 + 5], (5 + 1 + 1) % 256);
    const testSet = readCifar(dir, 'cifar10', 'test');
    assert.deepEqual([testSet.channels, testSet.height, testSet.width], [3, 32, 32]);
    assert.equal(testSet.images[1023], 255); // red plane
    assert.equal(testSet.images[1024], 0); // green plane
  });

  test('CIFAR-100: coarse then fine label bytes; the fine label is used', () => {
    const set = parseCifarBatch(batchBytes([[4, 87], [19, 0]], () => 7), 'train.bin', 'cifar100');
    assert.deepEqual(Array.from(set.labels), [87, 0]);
    assert.deepEqual(Array.from(parseCifarBatch(batchBytes([[4, 87]], () => 7), 'train.bin', 'cifar100', false).labels), [4]);
  });

  test('a truncated file, a wrong variant and a missing file say which file and what to do', () => {
    const bytes = batchBytes([[1], [2]], () => 0);
    assert.throws(() => parseCifarBatch(bytes.subarray(0, 5000), 'data_batch_1.bin', 'cifar10'), /data_batch_1\.bin: is 5000 bytes; expected a multiple of 3073 \(1 label byte \+ 3072 pixels\)/);
    assert.throws(() => parseCifarBatch(batchBytes([[120, 0]], () => 0).subarray(0, 3073 * 1), 'x.bin', 'cifar10'), /label 120; expected 0-9/);
    assert.throws(() => readCifar('/nonexistent', 'cifar100', 'test'), (e: unknown) => e instanceof DataFileError && /test\.bin: is missing; point --data at the folder unpacked from cifar-100-binary\.tar\.gz/.test(e.message));
  });
});
