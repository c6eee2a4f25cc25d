/** Data set readers, augmentation and batching. */
export { DataFileError } from './errors.js';
export { encodeIdx, parseIdx, readIdx } from './idx.js';
export type { IdxArray } from './idx.js';
export { mnistDirectory, readImageSet, readMnist } from './mnist.js';
export type { ImageSet } from './mnist.js';
export { encodeCifarBatch, parseCifarBatch, readCifar } from './cifar.js';
export type { CifarVariant } from './cifar.js';
export { IMAGE_EXTENSIONS, decodeImage, listImages, readImageFolder } from './image_folder.js';
export type { DecodeOptions, ImageFolderSet } from './image_folder.js';
export { IGNORE_LABEL, readSegmentationFolder, vocPalette } from './segmentation.js';
export type { SegmentationSet } from './segmentation.js';
export { MNIST_SEG_CLASSES, MNIST_SEG_LARGE_LAYOUT, MNIST_SEG_LAYOUT, MNIST_SEG_SIZE, buildMnistSeg, enlargeDigit, type MnistSegLayout } from './mnist_seg.js';
export { NO_AUGMENTATION, checkLabels, epochOrder, makeBatch, trainingSubset } from './batches.js';
export type { Augmentation, Batch, Normalization, Split } from './batches.js';
export { DATA_SPECS, FASHION_MNIST_DIR, loadDataset } from './registry.js';
export type { Dataset, LoadOptions } from './registry.js';
