import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PRESETS,
  decodeReference,
  decodeCode,
  defineFormat,
  encodeReference,
  encodeValue,
  quantizeReference,
  resolveFormat,
  type Format,
} from '../../src/formats/index.js';
import {
  bitsFromFloat32,
  buildTable,
  float32FromBits,
  float32Neighbours,
  oracleEncode,
  valueFromBits,
  type ValueTable,
} from '../helpers/format_oracle.js';
import { xorshift } from '../helpers/random.js';

/** Every preset of at most 16 bits, plus generic splits at the edges of what eXmY allows. */
const TABLE_FORMATS: Format[] = [
  ...PRESETS.filter((f) => f.bits <= 16),
  ...['e2m2', 'e3m3', 'e3m4', 'e4m1', 'e8m1', 'e2m13', 'e7m8', 'e6m5'].map((n) => resolveFormat(n)),
];

function sameBits(actual: number, expected: number): boolean {
  return Object.is(actual, expected) || (Number.isNaN(actual) && Number.isNaN(expected));
}


/** Inputs for the encode comparison: every value of the format, every midpoint between
 *  neighbours (the ties), the float32 neighbours of both, the boundaries, the specials, and
 *  random float32 patterns, half of them near the format's range. */
function encodeInputs(format: Format, table: ValueTable, randomCount: number, seed: number): Float32Array {
  const inputs: number[] = [0, -0, NaN, Infinity, -Infinity, float32FromBits(0xffc00000), 3.4028234663852886e38, 2 ** -149];
  const { values } = table;
  const points: number[] = [];
  for (let i = 0; i < values.length; i++) {
    points.push(values[i]);
    const next = i + 1 < values.length ? values[i + 1] : table.beyondMax;
    const mid = (values[i] + next) / 2;
    if (Math.fround(mid) === mid) points.push(mid);
  }
  points.push(table.beyondMax, format.maxFinite, format.minNormal, format.minSubnormal);
  for (const p of points) {
    const f = Math.fround(p);
    if (!Number.isFinite(f)) continue;
    for (const v of [f, ...float32Neighbours(f)]) inputs.push(v, -v);
  }
  const next = xorshift(seed);
  const lowExponent = Math.max(1, format.emin - format.mantissaBits - 4 + 127);
  const highExponent = Math.min(254, format.emax + 3 + 127);
  for (let i = 0; i < randomCount; i++) {
    let bits = next();
    if (i % 2 === 1) {
      const exponent = lowExponent + (next() % (highExponent - lowExponent + 1));
      bits = (bits & 0x807fffff) | (exponent << 23);
    }
    inputs.push(float32FromBits(bits >>> 0));
  }
  return Float32Array.from(inputs);
}

describe('decode', () => {
  for (const format of TABLE_FORMATS) {
    test(`${format.name}: every one of the ${2 ** format.bits} codes matches its bit layout`, () => {
      const codes = Array.from({ length: 2 ** format.bits }, (_, c) => c);
      const decoded = decodeReference(codes, format);
      for (const code of codes) {
        const expected = Math.fround(valueFromBits(code, format));
        if (!sameBits(decoded[code], expected)) {
          assert.fail(`${format.name} code 0x${code.toString(16)} decodes to ${decoded[code]}, expected ${expected}`);
        }
        assert.ok(sameBits(decodeCode(code, format), expected));
      }
    });
  }

  test('float32: decoding a code reinterprets its bits, on a million patterns', () => {
    const next = xorshift(7);
    const codes = Uint32Array.from({ length: 1_000_000 }, () => next());
    const decoded = decodeReference(codes, 'fp32');
    const bits = new Uint32Array(decoded.buffer);
    assert.deepEqual(bits, codes);
    for (let i = 0; i < 2000; i++) {
      assert.ok(sameBits(decoded[i], valueFromBits(codes[i], resolveFormat('fp32'))));
    }
  });

  test('stated limits decode from their codes', () => {
    const cases: Array<[string, number, number]> = [
      ['e5m2', 0x7b, 57344],
      ['e5m2', 0x01, 2 ** -16],
      ['e5m2', 0x7c, Infinity],
      ['e5m2', 0xfc, -Infinity],
      ['e4m3', 0x7e, 448],
      ['e4m3', 0x01, 2 ** -9],
      ['e4m3', 0x78, 256],
      ['e6m9', 0x7dff, (2 - 2 ** -9) * 2 ** 31],
      ['e6m9', 0x0001, 2 ** -39],
      ['fp16', 0x7bff, 65504],
      ['bf16', 0x3f80, 1],
    ];
    for (const [name, code, value] of cases) assert.equal(decodeCode(code, name), value, `${name} 0x${code.toString(16)}`);
    assert.ok(Number.isNaN(decodeCode(0x7f, 'e4m3')));
    assert.ok(Number.isNaN(decodeCode(0xff, 'e4m3')));
    for (const code of [0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff]) assert.ok(Number.isNaN(decodeCode(code, 'e5m2')));
  });

  test('rejects codes outside the format', () => {
    assert.throws(() => decodeReference([16], 'e2m1'), /code 16 at index 0 is not a float4_e2m1fn code; expected an integer from 0 to 15/);
    assert.throws(() => decodeReference([1.5], 'e5m2'), /code 1.5 at index 0/);
    assert.throws(() => decodeReference(Uint8Array.of(0, 0xff, 0x10), 'e3m2'), /code 255 at index 1/);
  });
});

describe('encode against the independent reference', () => {
  for (const format of TABLE_FORMATS) {
    const table = buildTable(format);
    // 8 formats x ~130k random + all ties and neighbours: well over a million inputs in all.
    const inputs = encodeInputs(format, table, 130_000, format.bits * 131 + format.mantissaBits);
    for (const rounding of ['nearest', 'toward-zero'] as const) {
      for (const saturate of [false, true]) {
        test(`${format.name} ${rounding}${saturate ? ' saturating' : ''}: ${inputs.length} inputs`, () => {
          const codes = encodeReference(inputs, format, { rounding, saturate });
          let failures = 0;
          for (let i = 0; i < inputs.length; i++) {
            const expected = oracleEncode(inputs[i], table, rounding, saturate);
            const got = codes[i];
            const ok = expected === 'nan' ? Number.isNaN(decodeCode(got, format)) : got === expected;
            if (!ok && failures++ < 5) {
              assert.fail(
                `${format.name} ${rounding}: ${inputs[i]} (0x${bitsFromFloat32(inputs[i]).toString(16)}) ` +
                  `-> 0x${got.toString(16)}, expected ${expected === 'nan' ? 'NaN' : '0x' + expected.toString(16)}`,
              );
            }
          }
        });
      }
    }
  }

  test('float32 is the identity on every non-NaN value', () => {
    const next = xorshift(99);
    const inputs = new Float32Array(new Uint32Array(Array.from({ length: 200_000 }, () => next())).buffer);
    for (const rounding of ['nearest', 'toward-zero', 'stochastic'] as const) {
      const codes = encodeReference(inputs, 'fp32', { rounding, seed: 5 });
      const out = quantizeReference(inputs, 'fp32', { rounding, seed: 5 });
      for (let i = 0; i < inputs.length; i++) {
        if (Number.isNaN(inputs[i])) {
          assert.ok(Number.isNaN(out[i]));
          assert.equal(codes[i] & 0x7fffffff, 0x7fc00000);
        } else {
          assert.equal(codes[i], bitsFromFloat32(inputs[i]));
          assert.ok(Object.is(out[i], inputs[i]));
        }
      }
    }
  });
});

describe('round trip', () => {
  for (const format of TABLE_FORMATS) {
    test(`${format.name}: encodeReference(decodeReference(c)) = c for every finite code, in every rounding mode`, () => {
      const codes = Array.from({ length: 2 ** format.bits }, (_, c) => c).filter((c) =>
        Number.isFinite(decodeCode(c, format)),
      );
      const values = decodeReference(codes, format);
      for (const rounding of ['nearest', 'toward-zero', 'stochastic'] as const) {
        const back = encodeReference(values, format, { rounding, seed: 11 });
        assert.deepEqual(Array.from(back), codes, `${rounding}`);
      }
    });
  }
});

describe('specials and boundaries', () => {
  const cases: Array<[string, number, boolean, number]> = [
    // format, input, saturate, expected value
    ['e5m2', 61440, false, Infinity],
    ['e5m2', Math.fround(61440 - 0.004), false, 57344],
    ['e5m2', 61440, true, 57344],
    ['e5m2', -1e9, false, -Infinity],
    ['e5m2', -Infinity, true, -57344],
    ['e5m2', 2 ** -17, false, 0],
    ['e5m2', -(2 ** -17), false, -0],
    ['e5m2', Math.fround(2 ** -17 * 1.0001), false, 2 ** -16],
    ['e5m2', 3 * 2 ** -17, false, 2 ** -15],
    ['e4m3', 464, false, 448],
    ['e4m3', Math.fround(464.0001), false, NaN],
    ['e4m3', Math.fround(464.0001), true, 448],
    ['e4m3', Infinity, false, NaN],
    ['e4m3', -Infinity, true, -448],
    ['e4m3', -(2 ** -11), false, -0],
    ['e6m9', 2 ** 32, false, Infinity],
    ['e6m9', 2 ** -41, false, 0],
    ['fp16', 65520, false, Infinity],
    ['fp16', 65519.99, false, 65504],
    ['bf16', 3.4028234663852886e38, false, Infinity],
    ['bf16', 3.4028234663852886e38, true, 3.3895313892515355e38],
  ];
  for (const [name, input, saturate, expected] of cases) {
    test(`${name} ${input}${saturate ? ' saturating' : ''} -> ${Object.is(expected, -0) ? '-0' : expected}`, () => {
      const [got] = quantizeReference([input], name, { saturate });
      assert.ok(sameBits(got, expected), `got ${got}`);
    });
  }

  test('NaN keeps its sign and becomes the canonical quiet NaN', () => {
    const negativeNaN = float32FromBits(0xffc00001);
    for (const format of TABLE_FORMATS) {
      const [pos, neg] = encodeReference(Float32Array.of(NaN, negativeNaN), format, { saturate: true });
      assert.equal(pos, format.nanCode, format.name);
      // FNUZ formats have one NaN, with the sign bit; finite-only ones none (+max instead).
      const signed = format.specials === 'ieee' || format.specials === 'fn';
      assert.equal(neg, signed ? format.nanCode + format.signMask : format.nanCode, format.name);
    }
  });

  test('toward-zero never overflows a finite value', () => {
    assert.deepEqual(Array.from(quantizeReference([70000, -1e30, 500], 'e5m2', { rounding: 'toward-zero' })), [57344, -57344, 448]);
    assert.deepEqual(Array.from(quantizeReference([500, 479.9], 'e4m3', { rounding: 'toward-zero' })), [448, 448]);
    assert.ok(Number.isNaN(quantizeReference([Infinity], 'e4m3', { rounding: 'toward-zero' })[0]));
  });

  test('a format that flushes subnormals returns signed zeros and decodes subnormal codes as zero', () => {
    const flushed = defineFormat({ ...resolveFormat('e5m2'), name: 'e5m2_ftz', aliases: [], subnormals: false });
    assert.equal(flushed.minSubnormal, 2 ** -14);
    const out = quantizeReference([2 ** -15, -(2 ** -16), 2 ** -14, Math.fround(2 ** -14 * 0.9)], flushed);
    assert.ok(Object.is(out[0], 0));
    assert.ok(Object.is(out[1], -0));
    assert.equal(out[2], 2 ** -14);
    assert.equal(out[3], 2 ** -14, 'rounds up to the smallest normal');
    assert.ok(Object.is(decodeCode(0x81, flushed), -0));
  });
});

describe('stochastic rounding', () => {
  test('returns only one of the two neighbours', () => {
    for (const format of TABLE_FORMATS) {
      const table = buildTable(format);
      const inputs = encodeInputs(format, table, 20_000, 3);
      const codes = encodeReference(inputs, format, { rounding: 'stochastic', saturate: true, seed: 42 });
      for (let i = 0; i < inputs.length; i++) {
        const x = inputs[i];
        if (Number.isNaN(x)) continue;
        const down = oracleEncode(x, table, 'toward-zero', true) as number;
        const downValue = decodeCode(down, format);
        const got = decodeCode(codes[i], format);
        if (got === downValue || Object.is(got, downValue)) continue;
        // The other neighbour: the next code away from zero (saturating at max).
        // (Toward zero from a negative input gives +0 in FNUZ formats: the next code is then -min.)
        const upCode = down === 0 && x < 0 ? format.signMask + 1 : down + 1;
        const up = Math.abs(downValue) === format.maxFinite ? downValue : decodeCode(upCode, format);
        assert.ok(sameBits(got, up), `${format.name}: ${x} -> ${got}, neighbours ${downValue} and ${up}`);
      }
    }
  });

  test('is unbiased: the mean of many draws is the input', () => {
    const draws = 40_000;
    for (const [name, x] of [
      ['e5m2', 1.1],
      ['e5m2', 3.3e-5],
      ['e4m3', -0.3],
      ['e6m9', 1000.123],
      ['e5m2', 2 ** -20],
      ['bf16', 1.00390625 + 2 ** -12],
    ] as const) {
      const format = resolveFormat(name);
      const xf = Math.fround(x);
      const out = quantizeReference(new Float32Array(draws).fill(xf), format, { rounding: 'stochastic', seed: 2024 });
      let sum = 0;
      for (const v of out) sum += v;
      const mean = sum / draws;
      const down = decodeCode(encodeValue(xf, format, { rounding: 'toward-zero' }), format);
      const up = out.find((v) => v !== down) ?? down;
      const p = (xf - down) / (up - down || 1);
      const sigma = Math.abs(up - down) * Math.sqrt((p * (1 - p)) / draws);
      assert.ok(Math.abs(mean - xf) <= 5 * sigma + 1e-12 * Math.abs(xf), `${name} ${xf}: mean ${mean}, 5 sigma ${5 * sigma}`);
    }
  });

  test('is reproducible from the seed and independent of how the tensor is split', () => {
    const next = xorshift(5);
    const x = Float32Array.from({ length: 10_000 }, () => (next() / 2 ** 32 - 0.5) * 100);
    const a = encodeReference(x, 'e5m2', { rounding: 'stochastic', seed: 77 });
    const b = encodeReference(x, 'e5m2', { rounding: 'stochastic', seed: 77 });
    const c = encodeReference(x, 'e5m2', { rounding: 'stochastic', seed: 78 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const first = encodeReference(x.subarray(0, 3333), 'e5m2', { rounding: 'stochastic', seed: 77 });
    const second = encodeReference(x.subarray(3333), 'e5m2', { rounding: 'stochastic', seed: 77, counterOffset: 3333 });
    assert.deepEqual(Array.from(a), [...first, ...second]);
  });
});

describe('quantize', () => {
  test('equals decodeReference(encodeReference(x)) in every mode and format', () => {
    const next = xorshift(17);
    const x = Float32Array.from({ length: 5000 }, () => float32FromBits(next()));
    for (const format of [...TABLE_FORMATS, resolveFormat('fp32')]) {
      for (const rounding of ['nearest', 'toward-zero', 'stochastic'] as const) {
        for (const saturate of [false, true]) {
          const options = { rounding, saturate, seed: 9 };
          const viaCodes = decodeReference(encodeReference(x, format, options), format);
          const direct = quantizeReference(x, format, options);
          for (let i = 0; i < x.length; i++) assert.ok(sameBits(direct[i], viaCodes[i]));
        }
      }
    }
  });

  test('writes into a given output and checks its length', () => {
    const out = new Float32Array(2);
    assert.equal(quantizeReference([1.1, 2.2], 'e5m2', {}, out), out);
    assert.deepEqual(Array.from(out), [1, 2]);
    assert.throws(() => quantizeReference([1, 2, 3], 'e5m2', {}, out), /output has 2 elements; expected 3/);
  });

  test('bad options get clear errors', () => {
    assert.throws(() => quantizeReference([1], 'e5m2', { rounding: 'up' as never }), /unknown rounding "up"; expected one of nearest, stochastic, toward-zero/);
    assert.throws(() => quantizeReference([1], 'e5m2', { rounding: 'stochastic', seed: -1 }), /seed is -1; expected a non-negative integer/);
    assert.throws(() => quantizeReference([1], 'e9m2'), /eXmY needs X from 2 to 8/);
    assert.throws(() => quantizeReference([1], 'float7'), /unknown format "float7"; valid formats are float8_e5m2/);
  });
});
