import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defineFormat, layoutOf, resolveFormat, type FormatSpec } from '../../src/formats/index.js';

describe('derived limits', () => {
  // The numbers, written out independently of the records.
  const expected: Array<[string, string, number, number, number, number, string]> = [
    // name, layout, bias, max finite, min normal, min subnormal, specials
    ['float8_e5m2', '1-5-2', 15, 57344, 2 ** -14, 2 ** -16, 'ieee'],
    ['float8_e4m3fn', '1-4-3', 7, 448, 2 ** -6, 2 ** -9, 'fn'],
    ['float16_e6m9', '1-6-9', 31, (2 - 2 ** -9) * 2 ** 31, 2 ** -30, 2 ** -39, 'ieee'],
    ['float16', '1-5-10', 15, 65504, 2 ** -14, 2 ** -24, 'ieee'],
    ['bfloat16', '1-8-7', 127, 3.3895313892515355e38, 2 ** -126, 2 ** -133, 'ieee'],
    ['float32', '1-8-23', 127, 3.4028234663852886e38, 2 ** -126, 2 ** -149, 'ieee'],
    ['e3m4', '1-3-4', 3, 15.5, 2 ** -2, 2 ** -6, 'ieee'],
    ['e2m2', '1-2-2', 1, 3.5, 1, 0.25, 'ieee'],
    // The OCP MX v1.0 element formats and the FNUZ FP8 formats of ONNX (their tables of limits).
    ['float6_e3m2fn', '1-3-2', 3, 28, 0.25, 0.0625, 'finite'],
    ['float6_e2m3fn', '1-2-3', 1, 7.5, 1, 0.125, 'finite'],
    ['e2m1', '1-2-1', 1, 6, 1, 0.5, 'finite'],
    ['float8_e4m3fnuz', '1-4-3', 8, 240, 2 ** -7, 2 ** -10, 'fnuz'],
    ['float8_e5m2fnuz', '1-5-2', 16, 57344, 2 ** -15, 2 ** -17, 'fnuz'],
  ];
  for (const [name, layout, bias, max, minNormal, minSub, specials] of expected) {
    test(name, () => {
      const f = resolveFormat(name);
      assert.equal(layoutOf(f), layout);
      assert.equal(f.bias, bias);
      assert.equal(f.maxFinite, max);
      assert.equal(f.minNormal, minNormal);
      assert.equal(f.minSubnormal, minSub);
      assert.equal(f.specials, specials);
      assert.equal(f.epsilon, 2 ** -f.mantissaBits);
      assert.equal(Math.fround(f.maxFinite), f.maxFinite, 'max is a float32');
    });
  }

  test('code patterns of the FP8 formats', () => {
    const e5m2 = resolveFormat('e5m2');
    assert.deepEqual([e5m2.maxCode, e5m2.infCode, e5m2.nanCode, e5m2.storageBytes], [0x7b, 0x7c, 0x7e, 1]);
    const e4m3 = resolveFormat('e4m3');
    assert.deepEqual([e4m3.maxCode, e4m3.infCode, e4m3.nanCode, e4m3.storageBytes], [0x7e, null, 0x7f, 1]);
    const fnuz = resolveFormat('e4m3fnuz');
    assert.deepEqual([fnuz.maxCode, fnuz.infCode, fnuz.nanCode, fnuz.hasNaN, fnuz.signedZero], [0x7f, null, 0x80, true, false]);
    const fp4 = resolveFormat('fp4');
    assert.deepEqual([fp4.maxCode, fp4.infCode, fp4.nanCode, fp4.hasNaN, fp4.signedZero, fp4.storageBytes], [0x7, null, 0x7, false, true, 1]);
    assert.equal(resolveFormat('e6m9').storageBytes, 2);
    assert.equal(resolveFormat('fp32').storageBytes, 4);
  });
});

describe('defineFormat checks the record', () => {
  const base: FormatSpec = {
    name: 'custom',
    aliases: [],
    exponentBits: 4,
    mantissaBits: 3,
    bias: 7,
    specials: 'ieee',
    subnormals: true,
    description: 'test',
  };
  const bad: Array<[Partial<FormatSpec>, RegExp]> = [
    [{ exponentBits: 1 }, /exponentBits is 1; expected an integer from 2 to 8/],
    [{ exponentBits: 9 }, /exponentBits is 9/],
    [{ mantissaBits: 0 }, /mantissaBits is 0; expected an integer from 1 to 23/],
    [{ mantissaBits: 2.5 }, /mantissaBits is 2.5/],
    [{ bias: 1.5 }, /bias is 1.5; expected an integer/],
    [{ specials: 'fnz' as never }, /specials is "fnz"; expected "ieee", "fn", "fnuz", "finite"/],
    [{ exponentBits: 8, bias: 127, specials: 'finite' }, /needs specials "ieee"/],
    [{ exponentBits: 8, bias: 200 }, /below float32's 2\^-126; use a bias of at most 127/],
    [{ exponentBits: 8, bias: 100 }, /above float32's range; use a bias of at least 127/],
    [{ exponentBits: 8, bias: 127, specials: 'fn' }, /needs specials "ieee"/],
  ];
  for (const [change, message] of bad) {
    test(JSON.stringify(change), () => {
      assert.throws(() => defineFormat({ ...base, ...change }), message);
    });
  }

  test('a custom bias moves the range', () => {
    const f = defineFormat({ ...base, bias: 11 });
    assert.equal(f.maxFinite, 15 * 2 ** (14 - 11 - 3));
    assert.equal(f.minNormal, 2 ** -10);
  });
});
