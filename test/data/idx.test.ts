import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { encodeIdx, parseIdx, readIdx } from '../../src/data/index.js';

describe('IDX reader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'octet-idx-'));
  const pixels = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);
  const bytes = encodeIdx([2, 3, 4], pixels);

  test('reads raw and gzipped files with their shape', () => {
    writeFileSync(join(dir, 'raw'), bytes);
    writeFileSync(join(dir, 'raw.gz'), gzipSync(bytes));
    for (const f of ['raw', 'raw.gz']) {
      const idx = readIdx(join(dir, f));
      assert.deepEqual(idx.shape, [2, 3, 4]);
      assert.deepEqual(idx.data, pixels);
    }
  });

  test('reads big-endian int32 and float32 payloads', () => {
    const header = [0, 0, 0x0c, 1, 0, 0, 0, 2];
    const ints = parseIdx(Uint8Array.from([...header, 0xff, 0xff, 0xff, 0xfe, 0, 0, 1, 0]), 'ints');
    assert.deepEqual(Array.from(ints.data), [-2, 256]);
    const floats = parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0, 0]), 'floats');
    assert.deepEqual(Array.from(floats.data), [1.5]);
  });

  const corrupt: Array<[string, Uint8Array, RegExp]> = [
    ['truncated', bytes.subarray(0, bytes.length - 3), /is 37 bytes; its header \[2 x 3 x 4\] of uint8 needs exactly 40 \(the file is truncated\)/],
    ['trailing data', Uint8Array.from([...bytes, 1]), /there is trailing data/],
    ['bad magic', Uint8Array.from([1, 2, 3, 4, 5]), /is not an IDX file/],
    ['bad type', Uint8Array.from([0, 0, 0x07, 1, 0, 0, 0, 0]), /type byte 0x7/],
    ['short header', Uint8Array.from([0, 0, 8, 3, 0, 0]), /header of 3 dimensions but only 6 bytes/],
    ['broken gzip', gzipSync(bytes).subarray(0, 20), /is gzipped but does not decompress/],
  ];
  for (const [name, data, message] of corrupt) {
    test(`a ${name} file gets an error naming the file`, () => {
      const file = join(dir, name.replace(' ', '_'));
      writeFileSync(file, data);
      assert.throws(() => readIdx(file), (e: Error) => message.test(e.message) && e.message.startsWith(file));
    });
  }

  test('a missing file says it cannot be read', () => {
    assert.throws(() => readIdx(join(dir, 'nope')), /nope: cannot be read \(ENOENT\)/);
  });
});
