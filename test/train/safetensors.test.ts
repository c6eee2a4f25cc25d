import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors, type StoredTensor } from '../../src/train/index.js';

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

  test('F4 packs two codes a byte (an odd count ends half used) and F8_E8M0 one a byte', () => {
    const packed = new Map<string, StoredTensor>([
      ['fp4', { dtype: 'F4', shape: [3], bytes: Uint8Array.of(0x21, 0x07) }],
      ['scale', { dtype: 'F8_E8M0', shape: [1], bytes: Uint8Array.of(127) }],
    ]);
    const back = decodeSafetensors(encodeSafetensors(packed), 'x');
    assert.deepEqual(Array.from(back.tensors.get('fp4')!.bytes), [0x21, 0x07]);
    assert.equal(back.tensors.get('scale')!.dtype, 'F8_E8M0');
    assert.throws(() => encodeSafetensors(new Map([['fp4', { dtype: 'F4', shape: [3], bytes: Uint8Array.of(1) }]])), /needs 2/);
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
