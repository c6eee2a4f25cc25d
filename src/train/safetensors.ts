/**
 * The safetensors file format (huggingface/safetensors): an 8-byte little-endian header length N,
 * N bytes of JSON mapping each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets
 * into the data that follows, in order, without gaps) plus an optional "__metadata__" object of
 * strings, then the data. Low-precision codes use the specification's dtype names (F8_E5M2,
 * F8_E4M3, the FNUZ variants, F8_E8M0, F6_E2M3, F6_E3M2, F4) that other tools read. Files are written atomically: to a temporary file in the same folder, flushed, then
 * renamed over the target, so a crash leaves either the old file or the new one.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DataFileError } from '../data/index.js';

/**
 * The dtype names of the safetensors specification that Octet reads and writes. F4 is OCP FP4
 * E2M1, two codes a byte, the first in the low nibble; F6_E2M3 and F6_E3M2 are OCP FP6, four codes
 * in three bytes as one little-endian bit stream (code i in bits 6i to 6i+5, counting from the
 * first byte's lowest bit). The specification wants sub-byte tensors to fill whole bytes: an even
 * count of F4 codes, a multiple of 4 of F6 codes;
 * F8_E4M3FNUZ and F8_E5M2FNUZ are the FNUZ FP8 variants.
 */
export type SafetensorsDtype =
  | 'F32' | 'F16' | 'BF16' | 'F8_E5M2' | 'F8_E4M3' | 'F8_E4M3FNUZ' | 'F8_E5M2FNUZ' | 'F8_E8M0' | 'F6_E2M3' | 'F6_E3M2' | 'F4' | 'U8' | 'I32' | 'U16';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F32: 4, F16: 2, BF16: 2, F8_E5M2: 1, F8_E4M3: 1, F8_E4M3FNUZ: 1, F8_E5M2FNUZ: 1, F8_E8M0: 1, F6_E2M3: 0.75, F6_E3M2: 0.75, F4: 0.5, U8: 1, I32: 4, U16: 2,
};

/** Elements that fill whole bytes: 2 for F4, 4 for the F6 dtypes, 1 otherwise. */
function wholeBytes(dtype: SafetensorsDtype): number {
  return DTYPE_BYTES[dtype] === 0.5 ? 2 : DTYPE_BYTES[dtype] === 0.75 ? 4 : 1;
}

/** Whether `count` codes of `dtype` fill whole bytes, as the specification wants. */
export function fillsBytes(dtype: SafetensorsDtype, count: number): boolean {
  return count % wholeBytes(dtype) === 0;
}

/** The dtype a format's codes are stored as, where the specification names one (null otherwise). */
export function codeDtype(formatName: string): SafetensorsDtype | null {
  const names: Record<string, SafetensorsDtype> = {
    float8_e5m2: 'F8_E5M2', float8_e4m3fn: 'F8_E4M3', float8_e4m3fnuz: 'F8_E4M3FNUZ', float8_e5m2fnuz: 'F8_E5M2FNUZ',
    float6_e2m3fn: 'F6_E2M3', float6_e3m2fn: 'F6_E3M2', float4_e2m1fn: 'F4',
  };
  return names[formatName] ?? null;
}

/** Codes (one a byte) as the bytes of `dtype`: packed for F4 and the F6 dtypes, as they are otherwise. */
export function packCodes(dtype: SafetensorsDtype, codes: Uint8Array): Uint8Array {
  if (codes.length % wholeBytes(dtype) !== 0) throw new Error(`safetensors: ${dtype} fills whole bytes with ${wholeBytes(dtype)} codes; ${codes.length} codes is not a multiple of ${wholeBytes(dtype)}`);
  if (dtype === 'F4') return Uint8Array.from({ length: codes.length / 2 }, (_, i) => (codes[2 * i] & 0xf) | ((codes[2 * i + 1] & 0xf) << 4));
  if (dtype === 'F6_E2M3' || dtype === 'F6_E3M2') {
    const out = new Uint8Array((codes.length / 4) * 3);
    for (let g = 0; g < codes.length / 4; g++) {
      const v = (codes[4 * g] & 0x3f) | ((codes[4 * g + 1] & 0x3f) << 6) | ((codes[4 * g + 2] & 0x3f) << 12) | ((codes[4 * g + 3] & 0x3f) << 18);
      out[3 * g] = v & 0xff;
      out[3 * g + 1] = (v >> 8) & 0xff;
      out[3 * g + 2] = (v >> 16) & 0xff;
    }
    return out;
  }
  return codes;
}

/** The `count` codes of a tensor's bytes, one a byte (packCodes undone). */
export function unpackCodes(dtype: SafetensorsDtype, bytes: Uint8Array, count: number): Uint8Array {
  if (dtype === 'F4') return Uint8Array.from({ length: count }, (_, i) => (bytes[i >> 1] >> (4 * (i & 1))) & 0xf);
  if (dtype === 'F6_E2M3' || dtype === 'F6_E3M2') {
    return Uint8Array.from({ length: count }, (_, i) => {
      const g = 3 * (i >> 2);
      const v = bytes[g] | (bytes[g + 1] << 8) | (bytes[g + 2] << 16);
      return (v >> (6 * (i & 3))) & 0x3f;
    });
  }
  return bytes.slice(0, count);
}

export interface StoredTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Little-endian bytes. */
  bytes: Uint8Array;
}

export function f32Tensor(data: Float32Array, shape: readonly number[]): StoredTensor {
  return { dtype: 'F32', shape: [...shape], bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function asFloat32(t: StoredTensor, name: string, file: string): Float32Array {
  if (t.dtype !== 'F32') throw new DataFileError(file, `tensor ${name} is ${t.dtype}; expected F32`);
  return new Float32Array(t.bytes.slice().buffer);
}

/** Serialize tensors (in the given order) and string metadata to safetensors bytes. */
export function encodeSafetensors(tensors: ReadonlyMap<string, StoredTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    const group = wholeBytes(t.dtype);
    if (count % group !== 0) throw new Error(`safetensors: ${name} has ${count} elements of ${t.dtype}; a sub-byte dtype needs a multiple of ${group} (whole bytes)`);
    const expected = Math.ceil(count * DTYPE_BYTES[t.dtype]);
    if (t.bytes.length !== expected) throw new Error(`safetensors: ${name} has ${t.bytes.length} bytes; shape [${t.shape}] of ${t.dtype} needs ${expected}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces to a multiple of 8, as the reference writer does.
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array, file: string): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } {
  const corrupt = (why: string) => new DataFileError(file, `is not a valid safetensors file: ${why}. The file is truncated or was not written by a safetensors writer`);
  if (bytes.length < 8) throw corrupt(`only ${bytes.length} bytes`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n <= 0 || 8 + n > bytes.length) throw corrupt(`header length ${n} does not fit in ${bytes.length} bytes`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  } catch (error) {
    throw corrupt(`header is not JSON (${(error as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw corrupt(`header is ${JSON.stringify(header)}; expected a JSON object`);
  const data = bytes.subarray(8 + n);
  const tensors = new Map<string, StoredTensor>();
  let metadata: Record<string, string> = {};
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__');
  entries.sort((a, b) => ((a[1] as { data_offsets: number[] }).data_offsets?.[0] ?? 0) - ((b[1] as { data_offsets: number[] }).data_offsets?.[0] ?? 0));
  let expectedStart = 0;
  for (const [name, value] of entries) {
    const info = value as { dtype?: string; shape?: number[]; data_offsets?: number[] };
    if (!info.dtype || !(info.dtype in DTYPE_BYTES) || !Array.isArray(info.shape) || !Array.isArray(info.data_offsets)) {
      throw corrupt(`tensor ${name} has dtype ${String(info.dtype)}; expected one of ${Object.keys(DTYPE_BYTES).join(', ')} with shape and data_offsets`);
    }
    const [begin, end] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    const group = wholeBytes(info.dtype as SafetensorsDtype);
    if (count % group !== 0) throw corrupt(`tensor ${name} holds ${count} elements of ${info.dtype}; a sub-byte dtype needs a multiple of ${group} (whole bytes)`);
    const size = Math.ceil(count * DTYPE_BYTES[info.dtype as SafetensorsDtype]);
    if (begin !== expectedStart || end - begin !== size || end > data.length) throw corrupt(`tensor ${name} occupies bytes ${begin}-${end} of ${data.length}; expected ${size} bytes from ${expectedStart}`);
    expectedStart = end;
    tensors.set(name, { dtype: info.dtype as SafetensorsDtype, shape: info.shape, bytes: data.subarray(begin, end) });
  }
  if (expectedStart !== data.length) throw corrupt(`${data.length - expectedStart} bytes after the last tensor`);
  if (header.__metadata__ !== undefined) {
    const m = header.__metadata__;
    if (m === null || typeof m !== 'object' || Array.isArray(m) || !Object.values(m).every((v) => typeof v === 'string')) {
      throw corrupt('__metadata__ is not an object of strings');
    }
    metadata = m as Record<string, string>;
  }
  return { tensors, metadata };
}

/** Write bytes to `file` atomically (temporary file, fsync, rename). */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    let at = 0;
    while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, file);
  try {
    const dirFd = openSync(dirname(file), 'r');
    fsyncSync(dirFd);
    closeSync(dirFd);
  } catch {
    // Directories cannot be fsynced on every platform; the rename is still atomic.
  }
}

export function writeSafetensors(file: string, tensors: ReadonlyMap<string, StoredTensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

export function readSafetensors(file: string): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (error) {
    throw new DataFileError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); check the path`);
  }
  return decodeSafetensors(bytes, file);
}
