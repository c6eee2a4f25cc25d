/**
 * Segmentation folders: `images/` with PNG or JPEG images and `masks/` with a PNG mask of the same
 * name stem per image. A mask is either grayscale (each value a class index, as Cityscapes'
 * *_labelIds.png; also when stored as RGB with R = G = B) or colour-coded with the PASCAL VOC
 * palette (mapped back to indices). The ignore
 * label is 255 (VOC's border colour maps to it).
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { DataFileError } from './errors.js';
import { decodeImage, listImages } from './image_folder.js';

export const IGNORE_LABEL = 255;

export interface SegmentationSet {
  /** [count, channels, height, width] bytes. */
  images: Uint8Array;
  /** [count, height, width] class indices; IGNORE_LABEL where unlabelled. */
  masks: Uint8Array;
  count: number;
  channels: number;
  height: number;
  width: number;
}

/** The PASCAL VOC colour map: class i's colour from the bits of i, spread over R, G and B. */
export function vocPalette(): Uint8Array {
  const palette = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    let c = i;
    let r = 0;
    let g = 0;
    let b = 0;
    for (let j = 0; j < 8; j++) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    palette.set([r, g, b], i * 3);
  }
  return palette;
}

let paletteIndex: Map<number, number> | null = null;

function colourToLabel(r: number, g: number, b: number, file: string): number {
  if (!paletteIndex) {
    const p = vocPalette();
    paletteIndex = new Map();
    for (let i = 255; i >= 0; i--) paletteIndex.set((p[i * 3] << 16) | (p[i * 3 + 1] << 8) | p[i * 3 + 2], i);
  }
  const label = paletteIndex.get((r << 16) | (g << 8) | b);
  if (label === undefined) throw new DataFileError(file, `has colour (${r}, ${g}, ${b}), which is not in the VOC palette; masks must be class indices or VOC colours`);
  return label;
}

async function decodeMask(file: string, size: [number, number]): Promise<Uint8Array> {
  let raw: { data: Buffer; info: OutputInfo };
  try {
    const gray = ((await sharp(file).metadata()).channels ?? 3) <= 2;
    let pipeline = sharp(file, { failOn: 'error' }).resize(size[1], size[0], { fit: 'fill', kernel: 'nearest' });
    pipeline = gray ? pipeline.extractChannel(0) : pipeline.removeAlpha();
    raw = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new DataFileError(file, `cannot be decoded as a PNG mask (${(error as Error).message})`);
  }
  const pixels = size[0] * size[1];
  const mask = new Uint8Array(pixels);
  const ch = raw.info.channels;
  // A mask saved as RGB with R = G = B everywhere is a grayscale mask of indices.
  let gray = ch === 1;
  if (!gray) {
    gray = true;
    for (let p = 0; p < pixels && gray; p++) gray = raw.data[p * ch] === raw.data[p * ch + 1] && raw.data[p * ch] === raw.data[p * ch + 2];
  }
  for (let p = 0; p < pixels; p++) {
    mask[p] = gray ? raw.data[p * ch] : colourToLabel(raw.data[p * ch], raw.data[p * ch + 1], raw.data[p * ch + 2], file);
  }
  return mask;
}

export async function readSegmentationFolder(directory: string, options: { size?: [number, number]; channels?: 1 | 3 } = {}): Promise<SegmentationSet> {
  const imageDir = join(directory, 'images');
  const maskDir = join(directory, 'masks');
  for (const d of [imageDir, maskDir]) {
    if (!existsSync(d)) throw new DataFileError(d, 'is missing; a segmentation folder holds images/ (PNG or JPEG) and masks/ (PNG, same names)');
  }
  const images = listImages(imageDir);
  if (images.length === 0) throw new DataFileError(imageDir, 'holds no .png, .jpg or .jpeg files');
  const masks = new Map(readdirSync(maskDir).filter((f) => extname(f).toLowerCase() === '.png').map((f) => [basename(f, extname(f)), f]));
  const channels = options.channels ?? 3;
  const first = await decodeImage(join(imageDir, images[0]), channels, options.size);
  const size: [number, number] = options.size ?? [first.height, first.width];
  const plane = size[0] * size[1];
  const out: SegmentationSet = {
    images: new Uint8Array(images.length * channels * plane),
    masks: new Uint8Array(images.length * plane),
    count: images.length,
    channels,
    height: size[0],
    width: size[1],
  };
  for (let i = 0; i < images.length; i++) {
    const stem = basename(images[i], extname(images[i]));
    const maskName = masks.get(stem);
    if (!maskName) throw new DataFileError(join(maskDir, `${stem}.png`), `is missing: every image in images/ needs a mask with the same name`);
    const decoded = i === 0 ? first : await decodeImage(join(imageDir, images[i]), channels, size);
    out.images.set(decoded.data, i * channels * plane);
    out.masks.set(await decodeMask(join(maskDir, maskName), size), i * plane);
  }
  return out;
}
