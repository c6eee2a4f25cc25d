import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeQTensor, resolveFormat } from '../../src/formats/index.js';

describe('QTensor', () => {
  test('codes of a format (record, name or alias) with a scale; the format travels as its record', () => {
    const q = makeQTensor(new Uint8Array(4), 'e5m2', 8);
    assert.equal(q.format, resolveFormat('float8_e5m2'));
    assert.equal(q.scale, 8);
    assert.equal(makeQTensor(new Uint16Array(2), resolveFormat('e6m9')).scale, 1);
  });

  test('a scale that is not finite and positive, or codes of the wrong width, are refused', () => {
    for (const scale of [0, -1, Infinity, NaN]) assert.throws(() => makeQTensor(new Uint8Array(1), 'e5m2', scale), /scale is .*; expected a finite positive number/);
    assert.throws(() => makeQTensor(new Uint8Array(1), 'fp16'), /float16 codes take 2 byte\(s\) each; got a Uint8Array/);
    assert.throws(() => makeQTensor(new Uint8Array(1), 'e9m9'), /eXmY/);
  });
});
