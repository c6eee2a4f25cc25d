/**
 * Block-scaled GEMM: the fast path against the contract's loop, bit for bit, over accumulation
 * modes, block shapes (runs cut by both operands) and thread counts; and the contract itself,
 * written out directly for float32 accumulation, on MX operands.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { blockRuns, blockScaledGemm, blockScaledGemmReference, type BlockGemmOptions } from '../../src/kernels/block_gemm.js';
import { blockQuantizeReference, blockScaleAt, type BlockSpec } from '../../src/kernels/block_quant.js';
import { nativeCore } from '../../src/kernels/native.js';
import { decodeCode, quantizeReference } from '../../src/formats/index.js';
import { assertSameBits } from '../helpers/bits.js';
import { uniform } from '../helpers/random.js';

function operands(m: number, n: number, k: number, specA: BlockSpec, specB: BlockSpec, seed: number) {
  const x = uniform(m * k, seed);
  const w = uniform(n * k, seed + 1);
  for (let i = 0; i < x.length; i += 7) x[i] *= 2 ** ((i % 13) - 6);
  return { a: blockQuantizeReference(x, m, k, 'rk', specA), b: blockQuantizeReference(w, n, k, 'rk', specB) };
}

const MX_E4M3: BlockSpec = { format: 'e4m3', blockRows: 1, blockK: 32, scale: 'e8m0' };
const MX_E2M1: BlockSpec = { format: 'e2m1', blockRows: 1, blockK: 32, scale: 'e8m0' };
const TILE: BlockSpec = { format: 'e4m3', blockRows: 1, blockK: 128, scale: 'fp32' };
const WEIGHT_TILE: BlockSpec = { format: 'e4m3', blockRows: 128, blockK: 128, scale: 'fp32' };
const ROW: BlockSpec = { format: 'e5m2', blockRows: 1, blockK: 1 << 30, scale: 'pow2', saturate: true };

test('runs are cut at every block edge of either operand', () => {
  assert.deepEqual(blockRuns(100, 32, 32), [32, 64, 96, 100]);
  assert.deepEqual(blockRuns(100, 32, 48), [32, 48, 64, 96, 100]);
  assert.deepEqual(blockRuns(10, 1 << 30, 4), [4, 8, 10]);
  assert.deepEqual(blockRuns(0, 32, 32), []);
  // A promotion interval cuts too: one scale for all of K, partials of 128 promoted.
  assert.deepEqual(blockRuns(300, 1 << 30, 1 << 30, 128), [128, 256, 300]);
});

test('promotion: e6m9 partials of 64 products added into a float32 sum (the contract written out)', () => {
  const [m, n, k] = [3, 4, 200];
  const whole: BlockSpec = { format: 'e5m2', blockRows: 1 << 30, blockK: 1 << 30, scale: 'pow2' };
  const { a, b } = operands(m, n, k, whole, whole, 5);
  const got = blockScaledGemmReference(a, b, { accumulation: 'e6m9', promote: 64 });
  const e6m9 = (x: number) => quantizeReference([x], 'e6m9')[0];
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k0 = 0; k0 < k; k0 += 64) {
        let partial = 0;
        for (let t = k0; t < Math.min(k, k0 + 64); t++) partial = e6m9(partial + decodeCode(a.codes[t * m + i], a.format) * decodeCode(b.codes[t * n + j], b.format));
        acc = Math.fround(acc + Math.fround(Math.fround(partial / a.scales[0]) / b.scales[0]));
      }
      assert.equal(got[i * n + j], acc, `C[${i}][${j}]`);
    }
  }
  if (nativeCore()) assertSameBits(blockScaledGemm(a, b, { accumulation: 'e6m9', promote: 64 }), got, 'fast path');
});

describe('blockScaledGemm matches the contract loop', () => {
  const cases: Array<[string, BlockSpec, BlockSpec, BlockGemmOptions]> = [
    ['mxfp8, fp32 accumulation', MX_E4M3, MX_E4M3, {}],
    ['mxfp4, fp32 accumulation', MX_E2M1, MX_E2M1, {}],
    ['mxfp8, e6m9 in chunks of 16', MX_E4M3, MX_E4M3, { accumulation: 'e6m9', chunk: 16 }],
    ['1x128 by 128x128 tiles, bf16 partials promoted to fp32', TILE, WEIGHT_TILE, { accumulation: 'bf16' }],
    ['tiles, fp16 stochastic partials', TILE, WEIGHT_TILE, { accumulation: 'fp16', rounding: 'stochastic', seed: 4 }],
    ['row-wise by MX, bf16 outer sum', ROW, MX_E4M3, { outer: 'bf16' }],
    ['tiles with float32 scales, fp32 partials (divisions)', TILE, WEIGHT_TILE, {}],
    ['row-wise, fp32 partials over all of K', ROW, ROW, {}],
    ['1x128 by 128x128 tiles, hopper-fp8 partials promoted every 128 (DeepSeek-V3)', TILE, WEIGHT_TILE, { accumulation: 'hopper-fp8', promote: 128 }],
    ['mxfp8, hopper-fp8-fast partials (powers of two: reciprocals)', MX_E4M3, MX_E4M3, { accumulation: 'hopper-fp8-fast' }],
    ['mxfp4, an aligned model of groups of 8', MX_E2M1, MX_E2M1, { accumulation: { group: 8, keep: 6, significant: 8, interval: 0 } }],
    ['row-wise, an aligned model outside the vector kernels (groups of 512)', ROW, ROW, { accumulation: { group: 512, keep: 16, significant: 20, interval: 0 } }],
  ];
  for (const [name, specA, specB, options] of cases) {
    test(name, { skip: !nativeCore() }, () => {
      for (const [m, n, k] of [[1, 1, 1], [5, 9, 70], [33, 130, 300], [64, 64, 256], [96, 12, 200]]) {
        const { a, b } = operands(m, n, k, specA, specB, m + n + k);
        const ref = blockScaledGemmReference(a, b, options);
        for (const threads of [1, 2]) assertSameBits(blockScaledGemm(a, b, { ...options, threads }), ref, `${m}x${n}x${k}, ${threads} threads`);
      }
    });
  }
  // Float32 partials run on the GEMM's packed tiles: several K blocks of whole runs, threads
  // splitting rows (tall) or column panels (wide), edge tiles on both sides, three tile shapes.
  test('fp32 partials on the GEMM tiles: K blocks, row and column splits, edge tiles', { skip: !nativeCore() }, () => {
    for (const [m, n, k] of [[150, 70, 1000], [13, 300, 800], [64, 300, 700], [40, 16, 450], [257, 33, 97]]) {
      for (const [specA, specB] of [[MX_E4M3, MX_E4M3], [TILE, WEIGHT_TILE]]) {
        const { a, b } = operands(m, n, k, specA, specB, m * 3 + k);
        const ref = blockScaledGemmReference(a, b, {});
        for (const threads of [1, 2]) assertSameBits(blockScaledGemm(a, b, { threads }), ref, `${m}x${n}x${k} ${specA.scale}, ${threads} threads`);
      }
    }
  });
});

test('aligned partials of a product run swapped (B wider than A has rows: C^T = B^T A^T, A\'s divisor still first), the result transposed on 2 threads', { skip: !nativeCore() }, () => {
  for (const [m, n, k] of [[2, 33000, 130], [17, 4100, 260]]) {
    const { a, b } = operands(m, n, k, TILE, WEIGHT_TILE, 5 + m);
    const ref = blockScaledGemmReference(a, b, { accumulation: 'hopper-fp8', promote: 128 });
    for (const threads of [1, 2]) assertSameBits(blockScaledGemm(a, b, { accumulation: 'hopper-fp8', promote: 128, threads }), ref, `${m}x${n}x${k}, ${threads} threads`);
  }
});

test('aligned partials with B packed in pieces (OCTET_ALIGNED_PACK_BYTES): the contract loop\'s bits', { skip: !nativeCore() }, () => {
  const { a, b } = operands(40, 90, 1000, TILE, WEIGHT_TILE, 9);
  const ref = blockScaledGemmReference(a, b, { accumulation: 'hopper-fp8', promote: 128 });
  try {
    for (const bytes of ['100000', '5000']) {
      process.env.OCTET_ALIGNED_PACK_BYTES = bytes;
      for (const threads of [1, 2]) assertSameBits(blockScaledGemm(a, b, { accumulation: 'hopper-fp8', promote: 128, threads }), ref, `${bytes} bytes, ${threads} threads`);
    }
  } finally {
    delete process.env.OCTET_ALIGNED_PACK_BYTES;
  }
});

test('the contract written out for float32 accumulation: partial per 32-block, divided by both scales, summed in fp32', () => {
  const [m, n, k] = [7, 5, 100];
  const { a, b } = operands(m, n, k, MX_E4M3, MX_E2M1, 77);
  const got = blockScaledGemmReference(a, b);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k0 = 0; k0 < k; k0 += 32) {
        let partial = 0;
        for (let t = k0; t < Math.min(k, k0 + 32); t++) {
          partial = Math.fround(partial + Math.fround(decodeCode(a.codes[t * m + i], a.format) * decodeCode(b.codes[t * n + j], b.format)));
        }
        acc = Math.fround(acc + Math.fround(Math.fround(partial / blockScaleAt(a, i, k0)) / blockScaleAt(b, j, k0)));
      }
      assert.equal(got[i * n + j], acc, `C[${i}][${j}]`);
    }
  }
});

test('MX GEMM is close to the float32 product (a sanity check of scales and layout)', () => {
  const [m, n, k] = [16, 16, 256];
  const x = uniform(m * k, 1);
  const w = uniform(n * k, 2);
  const a = blockQuantizeReference(x, m, k, 'rk', MX_E4M3);
  const b = blockQuantizeReference(w, n, k, 'rk', MX_E4M3);
  const c = blockScaledGemmReference(a, b);
  let err = 0;
  let norm = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let exact = 0;
      for (let t = 0; t < k; t++) exact += x[i * k + t] * w[j * k + t];
      err += (c[i * n + j] - exact) ** 2;
      norm += exact ** 2;
    }
  }
  // E4M3 keeps 4 significant bits, and the OCP rule puts a block's amax in [256, 512), so the top
  // of [448, 512) saturates: several percent, not more.
  assert.ok(Math.sqrt(err / norm) < 0.1, `relative error ${Math.sqrt(err / norm)}`);
  // Halving x moves every block's scale, not the codes: the result halves exactly.
  const half = blockQuantizeReference(x.map((v) => v / 2), m, k, 'rk', MX_E4M3);
  assert.deepEqual(blockScaledGemmReference(half, b), c.map((v) => v / 2));
});

test('operands of different K are refused', () => {
  const a = blockQuantizeReference(new Float32Array(6), 2, 3, 'rk', MX_E4M3);
  const b = blockQuantizeReference(new Float32Array(8), 2, 4, 'rk', MX_E4M3);
  assert.throws(() => blockScaledGemmReference(a, b), /A is 2 x 3 and B is 4 x 2 \(held 2 x 4\); their K differ/);
});
