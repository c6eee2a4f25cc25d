/**
 * The native codec returns the same bits as the TypeScript reference, for every format, rounding
 * mode, saturation and thread count, on inputs that cover every code, tie and special.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decode, encode, quantize } from '../../src/kernels/codec.js';
import { nativeCore } from '../../src/kernels/native.js';
import {
  PRESETS,
  decodeReference,
  encodeReference,
  quantizeReference,
  resolveFormat,
} from '../../src/formats/index.js';
import { float32FromBits } from '../helpers/format_oracle.js';
import { xorshift } from '../helpers/random.js';

const FORMATS = [...PRESETS, ...['e2m1', 'e3m4', 'e8m1', 'e2m13'].map((n) => resolveFormat(n))];

function inputs(seed: number): Float32Array {
  const next = xorshift(seed);
  const out: number[] = [0, -0, NaN, -NaN, Infinity, -Infinity, 61440, 464, 65520, 2 ** -149, 3.4028234663852886e38];
  // Every float32 whose top 16 bits take each value once (all exponents, signs and specials),
  // with random low bits, plus random patterns and values near 1.
  for (let hi = 0; hi < 65536; hi++) out.push(float32FromBits(((hi << 16) | (next() & 0xffff)) >>> 0));
  for (let hi = 0; hi < 65536; hi++) out.push(float32FromBits(((hi << 16) | 0x8000) >>> 0));
  for (let i = 0; i < 100_000; i++) out.push(float32FromBits(next()));
  for (let i = 0; i < 20_000; i++) out.push((next() / 2 ** 32 - 0.5) * 8);
  return Float32Array.from(out);
}

function sameBits(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

describe('native codec', () => {
  test('is loaded on this machine', () => assert.ok(nativeCore()));

  const x = inputs(31);
  for (const format of FORMATS) {
    test(`${format.name}: encode and quantize equal the reference in every mode, on 1 and 2 threads`, () => {
      for (const rounding of ['nearest', 'stochastic', 'toward-zero'] as const) {
        for (const saturate of [false, true]) {
          const options = { rounding, saturate, seed: 123456789012, counterOffset: 77 };
          const expected = encodeReference(x, format, options);
          for (const threads of [1, 2]) {
            const codes = encode(x, format, { ...options, threads });
            const at = codes.findIndex((c, i) => c !== expected[i]);
            assert.equal(at, -1, `${rounding} saturate=${saturate}: input ${x[at]} -> 0x${codes[at]?.toString(16)}, reference 0x${expected[at]?.toString(16)}`);
            const q = quantize(x, format, { ...options, threads });
            const qAt = sameBits(q, quantizeReference(x, format, options));
            assert.equal(qAt, -1, `quantize ${rounding}: input ${x[qAt]}`);
          }
        }
      }
    });

    test(`${format.name}: decode equals the reference`, () => {
      const codes = encodeReference(x, format, {});
      assert.equal(sameBits(decode(codes, format), decodeReference(codes, format)), -1);
    });
  }

  test('whole vectors near the edges of the normal range (the fast path and its fallback) equal the reference', () => {
    const next = xorshift(8);
    for (const format of FORMATS) {
      const edges = [format.maxFinite, format.minNormal, 1];
      const values: number[] = [];
      for (const edge of edges) {
        for (let i = 0; i < 4096; i++) {
          const v = edge * (0.9 + (next() / 2 ** 32) * 0.2);
          values.push(i % 3 === 0 ? -v : v, i % 97 === 0 ? 0 : v);
        }
      }
      // Whole vectors within a unit in the last place of the largest value: most round to it,
      // some (stochastic, or above the tie) overflow.
      for (let i = 0; i < 4096; i++) values.push(format.maxFinite * (1 + ((next() / 2 ** 32) - 0.7) * 2 ** -format.mantissaBits));
      const x = Float32Array.from(values);
      for (const rounding of ['nearest', 'stochastic', 'toward-zero'] as const) {
        for (const saturate of [false, true]) {
          const options = { rounding, saturate, seed: 3 };
          const codes = encode(x, format, options);
          const expected = encodeReference(x, format, options);
          const at = codes.findIndex((c, i) => c !== expected[i]);
          assert.equal(at, -1, `${format.name} ${rounding}: ${x[at]} -> ${codes[at]}, reference ${expected[at]}`);
          assert.equal(sameBits(quantize(x, format, options), quantizeReference(x, format, options)), -1, `${format.name} quantize ${rounding}`);
        }
      }
    }
  });

  test('small arrays and plain arrays go through the reference with the same result', () => {
    assert.deepEqual(Array.from(quantize([1.1, 70000], 'e5m2')), [1, Infinity]);
    assert.deepEqual(Array.from(encode([1.1], 'e4m3')), [0x39]);
  });

  test('a code array of the wrong width is refused', () => {
    assert.throws(() => encode(new Float32Array(1000), 'e5m2', {}, new Uint16Array(1000)), /float8_e5m2 codes need 1-byte elements; the output has 2/);
  });
});
