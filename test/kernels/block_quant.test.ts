/**
 * Block-scaled quantization: the native kernel against the contract's loop, bit for bit, for
 * every scale kind, layout and partial block; and the MX rule checked on hand-made blocks from
 * the OCP MX v1.0 text (shared exponent = floor(log2 amax) - emax, clamped; saturating elements).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { blockQuantize, blockQuantizeReference, blockScaleAt, type BlockSpec } from '../../src/kernels/block_quant.js';
import { nativeCore } from '../../src/kernels/native.js';
import { decodeCode } from '../../src/formats/index.js';
import { uniform, xorshift } from '../helpers/random.js';

/** Values spread over many binades, with zeros, a subnormal and some non-finite values. */
function awkward(length: number, seed: number): Float32Array {
  const next = xorshift(seed);
  const x = uniform(length, seed);
  for (let i = 0; i < length; i++) {
    const r = next() % 100;
    if (r < 10) x[i] = 0;
    else if (r < 40) x[i] *= 2 ** ((next() % 40) - 20);
    else if (r === 41) x[i] = 1e-40;
  }
  return x;
}

const SPECS: BlockSpec[] = [
  { format: 'e4m3', blockRows: 1, blockK: 32, scale: 'e8m0' },
  { format: 'e2m1', blockRows: 1, blockK: 32, scale: 'e8m0' },
  { format: 'e3m2', blockRows: 1, blockK: 32, scale: 'e8m0' },
  { format: 'e2m3', blockRows: 1, blockK: 16, scale: 'e8m0', rounding: 'stochastic', seed: 3 },
  { format: 'e4m3', blockRows: 1, blockK: 128, scale: 'fp32' },
  { format: 'e4m3', blockRows: 128, blockK: 128, scale: 'fp32' },
  { format: 'e5m2', blockRows: 8, blockK: 24, scale: 'pow2', margin: 3, saturate: true },
  { format: 'e4m3', blockRows: 1, blockK: 1 << 30, scale: 'pow2' },
  { format: 'e5m2fnuz', blockRows: 5, blockK: 7, scale: 'fp32', rounding: 'stochastic', seed: 9 },
];

describe('blockQuantize matches the contract loop', () => {
  const shapes: Array<[number, number]> = [[1, 1], [3, 70], [130, 33], [64, 256], [200, 300]];
  for (const spec of SPECS) {
    test(`${spec.format} ${spec.blockRows}x${spec.blockK} ${spec.scale}${spec.rounding === 'stochastic' ? ' stochastic' : ''}`, { skip: !nativeCore() }, () => {
      for (const [rows, k] of shapes) {
        const x = awkward(rows * k, rows * 31 + k);
        if (rows * k > 10) x[7] = NaN;
        if (rows * k > 20) x[19] = -Infinity;
        for (const layout of ['rk', 'kr'] as const) {
          const ref = blockQuantizeReference(x, rows, k, layout, spec);
          for (const threads of [1, 2]) {
            const got = blockQuantize(x, rows, k, layout, spec, threads);
            assert.deepEqual(got.codes, ref.codes, `${rows}x${k} ${layout} codes, ${threads} threads`);
            assert.deepEqual(got.scales, ref.scales, `${rows}x${k} ${layout} scales`);
            assert.deepEqual([got.nonFinite, got.nonzero, got.underflow], [ref.nonFinite, ref.nonzero, ref.underflow]);
          }
          assert.equal(ref.nonFinite, rows * k > 20 ? 2 : rows * k > 10 ? 1 : 0);
        }
      }
    });
  }
});

describe('MX scales follow OCP MX v1.0', () => {
  const mx = (format: string): BlockSpec => ({ format, blockRows: 1, blockK: 32, scale: 'e8m0' });
  /** One 1 x 32 block holding `values` (the rest zero): its E8M0 exponent and element values. */
  function block(values: number[], format: string): { exponent: number; decoded: number[] } {
    const x = new Float32Array(32);
    x.set(values);
    const q = blockQuantizeReference(x, 1, 32, 'rk', mx(format));
    const s = q.scales[0];
    return { exponent: 0 - Math.log2(s) + 0, decoded: Array.from(q.codes.slice(0, values.length), (c) => decodeCode(c, q.format) / s) };
  }

  test('shared exponent = floor(log2 amax) - emax of the element format', () => {
    // E4M3: emax 8. amax 448 = 1.75 * 2^8: exponent 0, values kept.
    assert.deepEqual(block([448, -1, 0.5], 'e4m3'), { exponent: 0, decoded: [448, -1, 0.5] });
    // amax exactly at a binade edge, 2^9: exponent 1; just below it (2^9 - 2^-14 in float32 is 511.99994): exponent 0.
    assert.equal(block([512], 'e4m3').exponent, 1);
    assert.equal(block([Math.fround(512 - 2 ** -14)], 'e4m3').exponent, 0);
    // FP4 E2M1: emax 2. amax 1 -> exponent -2: 1 becomes 4 * 2^-2; 0.3 * 4 = 1.2 rounds to 1 -> 0.25.
    assert.deepEqual(block([1, 0.3], 'e2m1'), { exponent: -2, decoded: [1, 0.25] });
    // Elements above the format's max after scaling saturate: amax 1.9 * 2^k lands on 7.6 > 6 in E2M1.
    assert.deepEqual(block([1.9], 'e2m1').decoded, [1.5]);
    // FP6 E3M2: emax 4; amax 100 = 1.5625 * 2^6: exponent 2, 100 / 4 = 25 rounds to 24 -> 96.
    assert.deepEqual(block([100], 'e3m2'), { exponent: 2, decoded: [96] });
  });

  test('all-zero blocks get the smallest scale 2^-127, never NaN; subnormal amax is exact', () => {
    const zero = block([0, 0], 'e4m3');
    assert.equal(zero.exponent, -127);
    assert.deepEqual(zero.decoded, [0, 0]);
    // amax 2^-130 (a float32 subnormal): floor(log2) = -130, minus 8 clamps to -127.
    assert.equal(block([2 ** -130], 'e4m3').exponent, -127);
    // amax 2^-118: -126.
    assert.equal(block([2 ** -118], 'e4m3').exponent, -126);
  });

  test('a huge amax clamps at 2^127; NaN and Inf are left out of amax and carried by the elements', () => {
    assert.equal(block([3e38], 'e2m1').exponent, 125);
    const q = blockQuantizeReference(Float32Array.of(NaN, 2, Infinity, ...new Array(29).fill(0)), 1, 32, 'rk', mx('e4m3'));
    assert.equal(-Math.log2(q.scales[0]), 1 - 8);
    assert.ok(Number.isNaN(decodeCode(q.codes[0], q.format)));
    assert.equal(decodeCode(q.codes[2], q.format), 448); // Inf saturates, as MX elements do
    assert.equal(q.nonFinite, 2);
    // FP4 has no NaN: a NaN element becomes +max (6), and the count reports it.
    const f4 = blockQuantizeReference(Float32Array.of(NaN, 1, 0.05, ...new Array(29).fill(0)), 1, 32, 'rk', mx('e2m1'));
    // 0.05 * 4 = 0.2 is below half of FP4's smallest step (0.5): it underflows to zero.
    assert.deepEqual([f4.nonzero, f4.underflow], [2, 1]);
    assert.equal(decodeCode(f4.codes[0], f4.format), 6);
    assert.equal(f4.nonFinite, 1);
  });

  test('the last block of a row shorter than 32 has its own scale (no padding)', () => {
    const x = new Float32Array(40);
    x[0] = 1;
    x[39] = 1000;
    const q = blockQuantizeReference(x, 1, 40, 'rk', mx('e4m3'));
    assert.equal(q.scales.length, 2);
    assert.equal(blockScaleAt(q, 0, 0), 2 ** 8);
    assert.equal(blockScaleAt(q, 0, 39), 2 ** -1);
  });

  test('tiles: one scale per B x B block, pow2 and fp32 scales from amax', () => {
    const x = Float32Array.from({ length: 4 * 4 }, (_, i) => (i % 4 < 2 && i < 8 ? 10 : 1));
    const p2 = blockQuantizeReference(x, 4, 4, 'rk', { format: 'e4m3', blockRows: 2, blockK: 2, scale: 'pow2' });
    // Blocks (rows 0-1, k 0-1) amax 10: 2^t with 10 * 2^t <= 448 -> t = 5; the others amax 1: t = 8.
    assert.deepEqual(Array.from(p2.scales), [32, 256, 256, 256]);
    const f = blockQuantizeReference(x, 4, 4, 'rk', { format: 'e4m3', blockRows: 2, blockK: 2, scale: 'fp32' });
    assert.deepEqual(Array.from(f.scales), [44.79999923706055, 448, 448, 448]);
  });

  test('bad specs are refused with what is allowed', () => {
    const x = new Float32Array(4);
    assert.throws(() => blockQuantizeReference(x, 2, 2, 'rk', { format: 'e6m9', blockRows: 1, blockK: 2, scale: 'e8m0' }), /e6m9.*16-bit codes; block-scaled operands take formats of at most 8 bits/);
    assert.throws(() => blockQuantizeReference(x, 2, 2, 'rk', { format: 'e4m3', blockRows: 0, blockK: 2, scale: 'e8m0' }), /blockRows is 0; expected a positive integer/);
    assert.throws(() => blockQuantizeReference(x, 2, 2, 'rk', { format: 'e4m3', blockRows: 1, blockK: 2, scale: 'e4m3' as never }), /scale "e4m3"; expected one of e8m0, pow2, fp32/);
    assert.throws(() => blockQuantizeReference(x, 3, 2, 'rk', { format: 'e4m3', blockRows: 1, blockK: 2, scale: 'e8m0' }), /4 values for a 3 x 2 matrix; expected 6/);
  });
});
