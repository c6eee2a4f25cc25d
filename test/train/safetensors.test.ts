import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { codeDtype, decodeSafetensors, encodeSafetensors, packCodes, readSafetensors, unpackCodes, writeSafetensors, type StoredTensor } from '../../src/train/index.js';

const tensors = new Map<string, StoredTensor>([
  ['w', { dtype: 'F32', shape: [2, 2], bytes: new Uint8Array(Float32Array.of(1, -2, 3.5, 0).buffer) }],
  ['codes', { dtype: 'F8_E5M2', shape: [3], bytes: Uint8Array.of(0x3c, 0x40, 0x80) }],
]);

describe('safetensors', () => {
  test('layout: u64 header length, JSON header with offsets and metadata, then the data in order', () => {
    const bytes = encodeSafetensors(tensors, { note: 'hi' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + n) % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    assert.deepEqual(header.w, { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] });
    assert.deepEqual(header.codes, { dtype: 'F8_E5M2', shape: [3], data_offsets: [16, 19] });
    assert.deepEqual(header.__metadata__, { note: 'hi' });
    assert.deepEqual(Array.from(bytes.subarray(8 + n + 16)), [0x3c, 0x40, 0x80]);
    const back = decodeSafetensors(bytes, 'x');
    assert.deepEqual(new Float32Array(back.tensors.get('w')!.bytes.slice().buffer), Float32Array.of(1, -2, 3.5, 0));
    assert.equal(back.metadata.note, 'hi');
  });

  test('F4 packs two codes a byte (whole bytes only, as the specification wants) and F8_E8M0 one a byte', () => {
    const packed = new Map<string, StoredTensor>([
      ['fp4', { dtype: 'F4', shape: [4], bytes: Uint8Array.of(0x21, 0x07) }],
      ['scale', { dtype: 'F8_E8M0', shape: [1], bytes: Uint8Array.of(127) }],
    ]);
    const back = decodeSafetensors(encodeSafetensors(packed), 'x');
    assert.deepEqual(Array.from(back.tensors.get('fp4')!.bytes), [0x21, 0x07]);
    assert.equal(back.tensors.get('scale')!.dtype, 'F8_E8M0');
    assert.throws(() => encodeSafetensors(new Map([['fp4', { dtype: 'F4', shape: [4], bytes: Uint8Array.of(1) }]])), /needs 2/);
    assert.throws(() => encodeSafetensors(new Map([['fp4', { dtype: 'F4', shape: [3], bytes: Uint8Array.of(1, 2) }]])), /3 elements of F4; a sub-byte dtype needs a multiple of 2/);
  });

  test('F6 packs four codes in three bytes, little-endian bit stream; counts must be multiples of 4', () => {
    // Codes 1, 2, 3, 63: bits 000001 | 000010 << 6 | 000011 << 12 | 111111 << 18 = 0xfc3081.
    const codes = Uint8Array.of(1, 2, 3, 63);
    const packed = packCodes('F6_E2M3', codes);
    assert.deepEqual(Array.from(packed), [0x81, 0x30, 0xfc]);
    const random = Uint8Array.from({ length: 4096 }, (_, i) => (i * 37 + (i >> 3)) & 0x3f);
    for (const dtype of ['F6_E2M3', 'F6_E3M2'] as const) {
      const bytes = packCodes(dtype, random);
      assert.equal(bytes.length, 3072);
      assert.deepEqual(unpackCodes(dtype, bytes, random.length), random);
      const back = decodeSafetensors(encodeSafetensors(new Map([['w', { dtype, shape: [64, 64], bytes }]])), 'x');
      assert.equal(back.tensors.get('w')!.dtype, dtype);
      assert.deepEqual(unpackCodes(dtype, back.tensors.get('w')!.bytes, 4096), random);
    }
    assert.throws(() => packCodes('F6_E3M2', Uint8Array.of(1, 2, 3)), /3 codes is not a multiple of 4/);
    assert.throws(() => encodeSafetensors(new Map([['w', { dtype: 'F6_E2M3', shape: [6], bytes: new Uint8Array(5) }]])), /6 elements of F6_E2M3; a sub-byte dtype needs a multiple of 4/);
    // A file that claims 6 six-bit codes is refused when read.
    const good = encodeSafetensors(new Map([['w', { dtype: 'F6_E2M3', shape: [8], bytes: new Uint8Array(6) }]]));
    const text = new TextDecoder().decode(good).replace('[8]', '[6]');
    assert.throws(() => decodeSafetensors(new TextEncoder().encode(text), 'bad.safetensors'), /holds 6 elements of F6_E2M3; a sub-byte dtype needs a multiple of 4/);
    // F4 through the same functions; 8-bit dtypes pass through.
    assert.deepEqual(Array.from(packCodes('F4', Uint8Array.of(1, 2, 7, 0))), [0x21, 0x07]);
    assert.deepEqual(Array.from(unpackCodes('F4', Uint8Array.of(0x21, 0x07), 4)), [1, 2, 7, 0]);
    assert.throws(() => packCodes('F4', Uint8Array.of(1, 2, 7)), /3 codes is not a multiple of 2/);
    assert.deepEqual(Array.from(packCodes('F8_E4M3FNUZ', Uint8Array.of(0x80, 1))), [0x80, 1]);
  });

  test('the code dtypes of the formats', () => {
    assert.equal(codeDtype('float8_e5m2'), 'F8_E5M2');
    assert.equal(codeDtype('float8_e4m3fn'), 'F8_E4M3');
    assert.equal(codeDtype('float8_e4m3fnuz'), 'F8_E4M3FNUZ');
    assert.equal(codeDtype('float8_e5m2fnuz'), 'F8_E5M2FNUZ');
    assert.equal(codeDtype('float6_e2m3fn'), 'F6_E2M3');
    assert.equal(codeDtype('float6_e3m2fn'), 'F6_E3M2');
    assert.equal(codeDtype('float4_e2m1fn'), 'F4');
    assert.equal(codeDtype('float16'), null);
  });

  test('written atomically: no temporary file is left, and the file reads back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-st-'));
    writeSafetensors(join(dir, 'a.safetensors'), tensors);
    writeSafetensors(join(dir, 'a.safetensors'), tensors, { v: '2' });
    assert.deepEqual(readdirSync(dir), ['a.safetensors']);
    assert.equal(readSafetensors(join(dir, 'a.safetensors')).metadata.v, '2');
  });

  test('truncated or corrupt files are refused with the file name and the reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-st-'));
    const bytes = encodeSafetensors(tensors);
    writeFileSync(join(dir, 'cut.safetensors'), bytes.subarray(0, bytes.length - 2));
    assert.throws(() => readSafetensors(join(dir, 'cut.safetensors')), /cut\.safetensors: is not a valid safetensors file: tensor codes occupies bytes 16-19 of 17/);
    writeFileSync(join(dir, 'junk.safetensors'), Buffer.from('hello world, not a tensor file'));
    assert.throws(() => readSafetensors(join(dir, 'junk.safetensors')), /junk\.safetensors: is not a valid safetensors file: header length/);
    assert.throws(() => readSafetensors(join(dir, 'none.safetensors')), /cannot be read \(ENOENT\)/);
    // A header that is JSON but not an object, and metadata that is not an object of strings.
    const withHeader = (json: string) => {
      const header = new TextEncoder().encode(json);
      const out = new Uint8Array(8 + header.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
      out.set(header, 8);
      return out;
    };
    for (const [json, why] of [['null', /header is null; expected a JSON object/], ['[1, 2]', /header is \[1,2\]; expected a JSON object/], ['{"__metadata__": {"a": 1}}', /__metadata__ is not an object of strings/]] as const) {
      writeFileSync(join(dir, 'odd.safetensors'), withHeader(json));
      assert.throws(() => readSafetensors(join(dir, 'odd.safetensors')), why);
    }
  });
});
