import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PRESETS, formatNames, resolveFormat } from '../../src/formats/index.js';

describe('resolveFormat', () => {
  const aliases: Array<[string, string]> = [
    ['e5m2', 'float8_e5m2'],
    ['E5M2', 'float8_e5m2'],
    ['e4m3', 'float8_e4m3fn'],
    ['e4m3fn', 'float8_e4m3fn'],
    ['e6m9', 'float16_e6m9'],
    ['fp16', 'float16'],
    ['bf16', 'bfloat16'],
    ['fp32', 'float32'],
    [' float16 ', 'float16'],
  ];
  for (const [alias, name] of aliases) {
    test(`${JSON.stringify(alias)} is ${name}`, () => assert.equal(resolveFormat(alias).name, name));
  }

  test('every name and alias is unique', () => {
    const names = formatNames().map((n) => n.toLowerCase());
    assert.equal(new Set(names).size, names.length);
    assert.equal(PRESETS.length, 11);
  });

  test('eXmY builds an IEEE-like format with the standard bias, and caches it', () => {
    const f = resolveFormat('e3m4');
    assert.deepEqual([f.exponentBits, f.mantissaBits, f.bias, f.specials, f.bits], [3, 4, 3, 'ieee', 8]);
    assert.equal(resolveFormat('e3m4'), f);
    assert.equal(resolveFormat('e2m13').bits, 16);
  });

  test('a format record passes through', () => {
    const f = resolveFormat('e5m2');
    assert.equal(resolveFormat(f), f);
  });

  const unknown: Array<[string, RegExp]> = [
    ['e9m1', /X from 2 to 8, Y from 1 to 23 and X \+ Y <= 15 \(got X=9, Y=1\)/],
    ['e1m3', /got X=1, Y=3/],
    ['e5m0', /got X=5, Y=0/],
    ['e8m8', /got X=8, Y=8/],
    ['fp8', /unknown format "fp8"; valid formats are float8_e5m2, e5m2, .*float32.*or eXmY/],
    ['', /unknown format ""/],
  ];
  for (const [name, message] of unknown) {
    test(`${JSON.stringify(name)} is refused with the valid choices`, () => {
      assert.throws(() => resolveFormat(name), message);
    });
  }
});
