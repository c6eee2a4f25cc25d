import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gemm, gemmReference } from '../../src/kernels/gemm.js';
import { uniform, xorshift } from '../helpers/random.js';

interface Case {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
  pad: number;
}

function cases(): Case[] {
  const next = xorshift(2024);
  const sizes = [1, 2, 5, 11, 12, 13, 31, 32, 33, 47, 64, 100];
  const out: Case[] = [];
  for (let i = 0; i < 60; i++) {
    out.push({
      m: sizes[next() % sizes.length],
      n: sizes[next() % sizes.length],
      k: i % 10 === 0 ? 1 : sizes[next() % sizes.length],
      transA: (next() & 1) === 1,
      transB: (next() & 1) === 1,
      alpha: [1, 0.5, -2][next() % 3],
      beta: [0, 1, 0.25][next() % 3],
      pad: next() % 3,
    });
  }
  // Shapes larger than the cache blocks (k > kc, n > nc, m > mc) and the conv-like shape.
  out.push({ m: 40, n: 530, k: 800, transA: false, transB: false, alpha: 1, beta: 0, pad: 0 });
  out.push({ m: 1600, n: 20, k: 400, transA: false, transB: true, alpha: 1, beta: 1, pad: 1 });
  out.push({ m: 50, n: 600, k: 420, transA: true, transB: false, alpha: 1, beta: 0, pad: 3 });
  return out;
}

/** Run op(A)*op(B) for a case; returns C, and unless `fastOnly` the reference C and the bound sum_k |a||b|. */
function runCase(c: Case, seed: number, threads?: number, fastOnly = false): { result: Float32Array; expected: Float32Array; bound: Float32Array } {
  const lda = (c.transA ? c.m : c.k) + c.pad;
  const ldb = (c.transB ? c.k : c.n) + c.pad;
  const ldc = c.n + c.pad;
  const a = uniform((c.transA ? c.k : c.m) * lda, seed);
  const b = uniform((c.transB ? c.n : c.k) * ldb, seed + 1);
  const c0 = uniform(c.m * ldc, seed + 2);
  const result = Float32Array.from(c0);
  gemm(c.m, c.n, c.k, a, b, result, { ...c, lda, ldb, ldc, threads });
  if (fastOnly) return { result, expected: result, bound: result };
  const expected = Float32Array.from(c0);
  gemmReference({ ...c, a, lda, b, ldb, c: expected, ldc });
  const absA = a.map(Math.abs);
  const absB = b.map(Math.abs);
  const bound = new Float32Array(c.m * ldc);
  gemmReference({ ...c, alpha: Math.abs(c.alpha), beta: 0, a: absA, lda, b: absB, ldb, c: bound, ldc });
  return { result, expected, bound };
}

describe('gemm', () => {
  test('matches the reference on random shapes, transposes, strides, alpha and beta', () => {
    for (const [index, c] of cases().entries()) {
      const { result, expected, bound } = runCase(c, 100 + index);
      const ldc = c.n + c.pad;
      for (let i = 0; i < c.m; i++) {
        for (let j = 0; j < c.n; j++) {
          const at = i * ldc + j;
          const tolerance = 1e-5 * (bound[at] + Math.abs(c.beta * expected[at])) + 1e-30;
          if (!(Math.abs(result[at] - expected[at]) <= tolerance)) {
            assert.fail(`case ${JSON.stringify(c)}: C[${i},${j}] = ${result[at]}, reference ${expected[at]}`);
          }
        }
        // Padding columns of C are never written.
        for (let j = c.n; j < ldc && i < c.m - 1; j++) assert.equal(result[i * ldc + j], expected[i * ldc + j]);
      }
    }
  });

  test('gives the same bits on 1, 2 and 3 threads', () => {
    for (const c of cases().slice(-3)) {
      const one = runCase(c, 7, 1, true).result;
      assert.deepEqual(runCase(c, 7, 2, true).result, one);
      assert.deepEqual(runCase(c, 7, 3, true).result, one);
    }
  });

  test('beta = 0 ignores NaN in C; k = 0 scales C by beta', () => {
    const c = new Float32Array([NaN, NaN]);
    gemm(1, 2, 1, Float32Array.of(2), Float32Array.of(3, 4), c);
    assert.deepEqual(Array.from(c), [6, 8]);
    const d = Float32Array.of(1, 2);
    gemm(1, 2, 0, new Float32Array(0), new Float32Array(0), d, { beta: 3 });
    assert.deepEqual(Array.from(d), [3, 6]);
  });

  test('shape errors say which operand and what it needs', () => {
    assert.throws(() => gemm(2, 2, 3, new Float32Array(5), new Float32Array(6), new Float32Array(4)), /gemm: A holds 5 elements; a 2 x 3 matrix with row stride 3 needs 6/);
    assert.throws(() => gemm(2, 2, 2, new Float32Array(4), new Float32Array(4), new Float32Array(4), { ldc: 1 }), /leading dimension of C is 1; expected an integer >= 2/);
    assert.throws(() => gemm(-1, 2, 2, new Float32Array(4), new Float32Array(4), new Float32Array(4)), /m is -1/);
  });
});
