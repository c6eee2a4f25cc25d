import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { readImageFolder, readSegmentationFolder, vocPalette } from '../../src/data/index.js';

async function writeImage(file: string, width: number, height: number, channels: 1 | 3, pixel: (x: number, y: number, c: number) => number, format: 'png' | 'jpeg' = 'png') {
  const raw = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < channels; c++) raw[(y * width + x) * channels + c] = pixel(x, y, c);
  const img = channels === 1 ? sharp(raw, { raw: { width, height, channels } }).toColourspace('b-w') : sharp(raw, { raw: { width, height, channels } });
  await (format === 'png' ? img.png() : img.jpeg({ quality: 100 })).toFile(file);
}

describe('image folders (sharp)', () => {
  test('classes from sorted folder names; PNG and JPEG decoded to planar RGB; resized to one size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-images-'));
    for (const cls of ['dog', 'cat']) mkdirSync(join(dir, cls));
    await writeImage(join(dir, 'cat', 'a.png'), 4, 2, 3, (_x, _y, c) => [200, 100, 50][c]);
    await writeImage(join(dir, 'dog', 'b.jpg'), 8, 4, 3, () => 128, 'jpeg');
    await writeImage(join(dir, 'dog', 'c.png'), 4, 2, 1, (x) => x * 60);
    writeFileSync(join(dir, 'dog', 'notes.txt'), 'not an image');
    const set = await readImageFolder(dir);
    assert.deepEqual(set.classNames, ['cat', 'dog']);
    assert.deepEqual(Array.from(set.labels), [0, 1, 1]);
    assert.deepEqual([set.count, set.channels, set.height, set.width], [3, 3, 2, 4]);
    assert.deepEqual([set.images[0], set.images[8], set.images[16]], [200, 100, 50]);
    assert.ok(Math.abs(set.images[24] - 128) <= 2);
    assert.equal(set.images[48 + 1], 60); // grayscale PNG gives equal R, G, B
  });

  test('more than 256 classes: every label is its class index (16-bit labels), none wraps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-images-'));
    const names = Array.from({ length: 300 }, (_, i) => `c${String(i).padStart(3, '0')}`);
    const png = await sharp(Buffer.alloc(4 * 3, 7), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer();
    for (const name of names) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'x.png'), png);
    }
    const set = await readImageFolder(dir);
    assert.ok(set.labels instanceof Uint16Array);
    assert.deepEqual(Array.from(set.labels), names.map((_, i) => i));
    assert.equal(set.labels[299], 299);
  });

  test('a corrupt image and a folder without classes are named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-images-'));
    await assert.rejects(readImageFolder(dir), /has no class sub-folders/);
    mkdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'a', 'broken.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
    await assert.rejects(readImageFolder(dir), /broken\.png: cannot be decoded as PNG or JPEG/);
  });
});

describe('segmentation folders', () => {
  test('grayscale masks are class indices; VOC colour masks map back through the palette; 255 is ignore', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-seg-'));
    mkdirSync(join(dir, 'images'));
    mkdirSync(join(dir, 'masks'));
    await writeImage(join(dir, 'images', 'one.png'), 4, 4, 3, (x) => x * 10);
    await writeImage(join(dir, 'masks', 'one.png'), 4, 4, 1, (x, y) => (y === 0 ? 255 : x));
    await writeImage(join(dir, 'images', 'two.jpg'), 4, 4, 3, () => 90, 'jpeg');
    const palette = vocPalette();
    await writeImage(join(dir, 'masks', 'two.png'), 4, 4, 3, (x, _y, c) => palette[(x === 3 ? 255 : x + 12) * 3 + c]);
    const set = await readSegmentationFolder(dir);
    assert.equal(set.count, 2);
    assert.deepEqual(Array.from(set.masks.subarray(0, 8)), [255, 255, 255, 255, 0, 1, 2, 3]);
    assert.deepEqual(Array.from(set.masks.subarray(16, 20)), [12, 13, 14, 255]);
    assert.deepEqual(Array.from(palette.subarray(3, 6)), [128, 0, 0]);
  });

  test('an image without a mask is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-seg-'));
    mkdirSync(join(dir, 'images'));
    mkdirSync(join(dir, 'masks'));
    await writeImage(join(dir, 'images', 'lonely.png'), 2, 2, 3, () => 0);
    await assert.rejects(readSegmentationFolder(dir), /masks\/lonely\.png: is missing: every image in images\/ needs a mask/);
  });
});
