/**
 * Image folders for classification: one sub-folder per class (sorted names give class indices),
 * PNG and JPEG files decoded by sharp (libvips) to RGB or grayscale bytes and resized to one size.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { DataFileError } from './errors.js';
import type { ImageSet } from './mnist.js';

export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

export interface DecodeOptions {
  /** Output height and width; default: the first image's size. */
  size?: [number, number];
  /** 3 for RGB (default), 1 for grayscale. */
  channels?: 1 | 3;
}

/** Decode one image to planar bytes [channels, height, width]. */
export async function decodeImage(file: string, channels: 1 | 3, size?: [number, number]): Promise<{ data: Uint8Array; height: number; width: number }> {
  let pipeline = sharp(file, { failOn: 'error' }).removeAlpha();
  pipeline = channels === 1 ? pipeline.grayscale() : pipeline.toColourspace('srgb');
  if (size) pipeline = pipeline.resize(size[1], size[0], { fit: 'fill' });
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new DataFileError(file, `cannot be decoded as PNG or JPEG (${(error as Error).message}); the file is corrupt or not an image`);
  }
  const { width, height, channels: got } = raw.info;
  const data = new Uint8Array(channels * height * width);
  // sharp gives interleaved HWC; keep the first `channels` of each pixel, planar CHW.
  for (let p = 0; p < height * width; p++) for (let c = 0; c < channels; c++) data[c * height * width + p] = raw.data[p * got + Math.min(c, got - 1)];
  return { data, height, width };
}

export function listImages(directory: string): string[] {
  return readdirSync(directory)
    .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
    .sort();
}

export interface ImageFolderSet extends ImageSet {
  classNames: string[];
}

export async function readImageFolder(directory: string, options: DecodeOptions = {}): Promise<ImageFolderSet> {
  if (!existsSync(directory) || !statSync(directory).isDirectory()) {
    throw new DataFileError(directory, 'is not a folder; expected one sub-folder per class holding PNG or JPEG images');
  }
  const classNames = readdirSync(directory).filter((d) => statSync(join(directory, d)).isDirectory()).sort();
  if (classNames.length === 0) throw new DataFileError(directory, 'has no class sub-folders; expected one sub-folder per class (e.g. cat/, dog/)');
  const files: [string, number][] = [];
  classNames.forEach((name, label) => {
    for (const f of listImages(join(directory, name))) files.push([join(directory, name, f), label]);
  });
  if (files.length === 0) throw new DataFileError(directory, 'holds no .png, .jpg or .jpeg files in its class folders');
  const channels = options.channels ?? 3;
  const first = await decodeImage(files[0][0], channels, options.size);
  const size: [number, number] = options.size ?? [first.height, first.width];
  const plane = channels * size[0] * size[1];
  const images = new Uint8Array(files.length * plane);
  // Labels hold every class index: bytes up to 256 classes, 16 bits up to 65536 (beyond, refused).
  if (classNames.length > 65536) throw new DataFileError(directory, `has ${classNames.length} class folders; at most 65536 are supported`);
  const labels = classNames.length > 256 ? new Uint16Array(files.length) : new Uint8Array(files.length);
  for (let i = 0; i < files.length; i++) {
    const decoded = i === 0 ? first : await decodeImage(files[i][0], channels, size);
    images.set(decoded.data, i * plane);
    labels[i] = files[i][1];
  }
  return { images, labels, count: files.length, channels, height: size[0], width: size[1], classNames };
}
