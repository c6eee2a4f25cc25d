/** Data set readers. */
export { DataFileError } from './errors.js';
export { encodeIdx, parseIdx, readIdx } from './idx.js';
export type { IdxArray } from './idx.js';
export { mnistDirectory, readImageSet, readMnist } from './mnist.js';
export type { ImageSet } from './mnist.js';
