/**
 * CIFAR-10 and CIFAR-100 in their binary distributions (cifar-10-binary.tar.gz,
 * cifar-100-binary.tar.gz, unpacked). Each record is the label byte(s) then 3072 pixel bytes:
 * 1024 red, 1024 green, 1024 blue, each 32x32 row-major (so records are already CHW).
 * - CIFAR-10: data_batch_1.bin ... data_batch_5.bin (train), test_batch.bin; 1 label byte (0-9).
 * - CIFAR-100: train.bin, test.bin; a coarse label byte (0-19) then a fine label byte (0-99).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataFileError } from './errors.js';
import type { ImageSet } from './mnist.js';

export type CifarVariant = 'cifar10' | 'cifar100';

const PIXELS = 3 * 32 * 32;

function files(variant: CifarVariant, split: 'train' | 'test'): string[] {
  if (variant === 'cifar100') return [split === 'train' ? 'train.bin' : 'test.bin'];
  return split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
}

/** Parse one binary batch file's bytes. `fine` picks CIFAR-100's fine labels (else coarse). */
export function parseCifarBatch(bytes: Uint8Array, file: string, variant: CifarVariant, fine = true): ImageSet {
  const labelBytes = variant === 'cifar100' ? 2 : 1;
  const record = labelBytes + PIXELS;
  if (bytes.length === 0 || bytes.length % record !== 0) {
    throw new DataFileError(
      file,
      `is ${bytes.length} bytes; expected a multiple of ${record} (${labelBytes} label byte${labelBytes > 1 ? 's' : ''} + ${PIXELS} pixels). ` +
        `The file is truncated or is not the ${variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} binary version; download "${variant === 'cifar10' ? 'cifar-10-binary.tar.gz' : 'cifar-100-binary.tar.gz'}" again`,
    );
  }
  const count = bytes.length / record;
  const images = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  const classes = variant === 'cifar10' ? 10 : fine ? 100 : 20;
  for (let i = 0; i < count; i++) {
    const label = bytes[i * record + (variant === 'cifar100' && fine ? 1 : 0)];
    if (label >= classes) throw new DataFileError(file, `record ${i} has label ${label}; expected 0-${classes - 1}. Is this a ${variant} file?`);
    labels[i] = label;
    images.set(bytes.subarray(i * record + labelBytes, (i + 1) * record), i * PIXELS);
  }
  return { images, labels, count, channels: 3, height: 32, width: 32 };
}

/** Read the train or test split from the unpacked folder (e.g. cifar-10-batches-bin). */
export function readCifar(directory: string, variant: CifarVariant, split: 'train' | 'test'): ImageSet {
  const parts = files(variant, split).map((name) => {
    const file = join(directory, name);
    if (!existsSync(file)) {
      throw new DataFileError(
        file,
        `is missing; point --data at the folder unpacked from ${variant === 'cifar10' ? 'cifar-10-binary.tar.gz (cifar-10-batches-bin)' : 'cifar-100-binary.tar.gz (cifar-100-binary)'}`,
      );
    }
    return parseCifarBatch(new Uint8Array(readFileSync(file)), file, variant);
  });
  const count = parts.reduce((n, p) => n + p.count, 0);
  const images = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * PIXELS);
    labels.set(p.labels, at);
    at += p.count;
  }
  return { images, labels, count, channels: 3, height: 32, width: 32 };
}

/** Bytes of a batch file in the real format, for tests and tools: one record per image. */
export function encodeCifarBatch(set: ImageSet, variant: CifarVariant, coarse?: Uint8Array): Uint8Array {
  const labelBytes = variant === 'cifar100' ? 2 : 1;
  const record = labelBytes + PIXELS;
  const out = new Uint8Array(set.count * record);
  for (let i = 0; i < set.count; i++) {
    if (variant === 'cifar100') {
      out[i * record] = coarse?.[i] ?? 0;
      out[i * record + 1] = set.labels[i];
    } else {
      out[i * record] = set.labels[i];
    }
    out.set(set.images.subarray(i * PIXELS, (i + 1) * PIXELS), i * record + labelBytes);
  }
  return out;
}
