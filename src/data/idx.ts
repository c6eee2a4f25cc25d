/**
 * IDX files (the MNIST / Fashion-MNIST container), raw or gzipped.
 *
 * Layout: two zero bytes, a type byte (0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
 * 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, each dimension as a
 * big-endian uint32, then the values, big-endian, row-major.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataFileError } from './errors.js';

export interface IdxArray {
  shape: number[];
  /** Values as stored: Uint8Array for unsigned bytes, otherwise converted to a typed array. */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const TYPES: Record<number, { name: string; bytes: number }> = {
  0x08: { name: 'uint8', bytes: 1 },
  0x09: { name: 'int8', bytes: 1 },
  0x0b: { name: 'int16', bytes: 2 },
  0x0c: { name: 'int32', bytes: 4 },
  0x0d: { name: 'float32', bytes: 4 },
  0x0e: { name: 'float64', bytes: 8 },
};

/** Parse IDX bytes (gunzipping them first when they start with the gzip magic). */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  let raw = bytes;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      raw = gunzipSync(raw);
    } catch (error) {
      throw new DataFileError(file, `is gzipped but does not decompress (${(error as Error).message}); the download is probably truncated, fetch it again`);
    }
  }
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) {
    throw new DataFileError(file, 'is not an IDX file (it should start with two zero bytes, a type byte and a dimension count)');
  }
  const type = TYPES[raw[2]];
  if (!type) throw new DataFileError(file, `has IDX type byte 0x${raw[2].toString(16)}; expected one of 08, 09, 0b, 0c, 0d, 0e`);
  const ndim = raw[3];
  const headerBytes = 4 + 4 * ndim;
  if (ndim === 0 || raw.length < headerBytes) {
    throw new DataFileError(file, `has a header of ${ndim} dimensions but only ${raw.length} bytes; the file is truncated`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const shape = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count * type.bytes;
  if (raw.length !== expected) {
    throw new DataFileError(
      file,
      `is ${raw.length} bytes; its header [${shape.join(' x ')}] of ${type.name} needs exactly ${expected} ` +
        `(${raw.length < expected ? 'the file is truncated' : 'there is trailing data'}); fetch it again`,
    );
  }
  const body = raw.subarray(headerBytes);
  let data: IdxArray['data'];
  switch (type.name) {
    case 'uint8':
      data = Uint8Array.from(body);
      break;
    case 'int8':
      data = Int8Array.from(body, (b) => (b << 24) >> 24);
      break;
    case 'int16':
      data = Int16Array.from({ length: count }, (_, i) => view.getInt16(headerBytes + 2 * i, false));
      break;
    case 'int32':
      data = Int32Array.from({ length: count }, (_, i) => view.getInt32(headerBytes + 4 * i, false));
      break;
    case 'float32':
      data = Float32Array.from({ length: count }, (_, i) => view.getFloat32(headerBytes + 4 * i, false));
      break;
    default:
      data = Float64Array.from({ length: count }, (_, i) => view.getFloat64(headerBytes + 8 * i, false));
  }
  return { shape, data };
}

export function readIdx(file: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new DataFileError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return parseIdx(bytes, file);
}

/** Encode an array as IDX bytes (for tests and for writing derived data sets). */
export function encodeIdx(shape: readonly number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * shape.length);
  return out;
}
