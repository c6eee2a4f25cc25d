/**
 * Single-precision GEMM, row-major: C = alpha * op(A) * op(B) + beta * C.
 *
 * op(A) is m x k (stored k x m when transA), op(B) is k x n (stored n x k when transB); lda, ldb
 * and ldc are the row strides of A, B and C as stored. When beta is 0, C is not read.
 *
 * The native path (blocked, register-tiled, AVX-512 / AVX2+FMA / portable) sums in a different
 * order from the reference and uses fused multiply-adds, so the two agree to float32 rounding
 * error (tested at |diff| <= 1e-5 * sum_k |a_ik * b_kj|), not bit for bit. Low-precision GEMM
 * with a defined accumulation order is a separate kernel.
 */
import { InvalidArgumentError } from '../errors.js';
import { nativeCore } from './native.js';
import { resolveThreads } from './threads.js';

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** Threads for this call (native path); default: the configured kernel threads. */
  threads?: number;
}

interface GemmCall {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  alpha: number;
  a: Float32Array;
  lda: number;
  b: Float32Array;
  ldb: number;
  beta: number;
  c: Float32Array;
  ldc: number;
}

function extent(rows: number, cols: number, ld: number): number {
  return rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols;
}

function checkCall(g: GemmCall): void {
  for (const [name, v] of [['m', g.m], ['n', g.n], ['k', g.k]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`gemm: ${name} is ${v}; expected a non-negative integer`);
  }
  const aRows = g.transA ? g.k : g.m;
  const aCols = g.transA ? g.m : g.k;
  const bRows = g.transB ? g.n : g.k;
  const bCols = g.transB ? g.k : g.n;
  const checks: Array<[string, Float32Array, number, number, number]> = [
    ['A', g.a, aRows, aCols, g.lda],
    ['B', g.b, bRows, bCols, g.ldb],
    ['C', g.c, g.m, g.n, g.ldc],
  ];
  for (const [name, array, rows, cols, ld] of checks) {
    if (!(array instanceof Float32Array)) throw new InvalidArgumentError(`gemm: ${name} must be a Float32Array`);
    if (!Number.isInteger(ld) || ld < cols) {
      throw new InvalidArgumentError(`gemm: leading dimension of ${name} is ${ld}; expected an integer >= ${cols}`);
    }
    if (array.length < extent(rows, cols, ld)) {
      throw new InvalidArgumentError(
        `gemm: ${name} holds ${array.length} elements; a ${rows} x ${cols} matrix with row stride ${ld} needs ${extent(rows, cols, ld)}`,
      );
    }
  }
}

/** The plain reference: for each C element, sum a_ik * b_kj over k in order, in float32. */
export function gemmReference(g: GemmCall): void {
  for (let i = 0; i < g.m; i++) {
    for (let j = 0; j < g.n; j++) {
      let acc = 0;
      for (let p = 0; p < g.k; p++) {
        const a = g.transA ? g.a[p * g.lda + i] : g.a[i * g.lda + p];
        const b = g.transB ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j];
        acc = Math.fround(acc + Math.fround(a * b));
      }
      const at = i * g.ldc + j;
      g.c[at] = g.beta === 0 ? Math.fround(g.alpha * acc) : Math.fround(g.alpha * acc + g.beta * g.c[at]);
    }
  }
}

/**
 * C = alpha * op(A) * op(B) + beta * C for an m x k op(A) and a k x n op(B). Row strides default
 * to the stored widths.
 */
export function gemm(
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  options: GemmOptions = {},
): Float32Array {
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const call: GemmCall = {
    transA,
    transB,
    m,
    n,
    k,
    alpha: options.alpha ?? 1,
    a,
    lda: options.lda ?? (transA ? m : k),
    b,
    ldb: options.ldb ?? (transB ? k : n),
    beta: options.beta ?? 0,
    c,
    ldc: options.ldc ?? n,
  };
  checkCall(call);
  const native = nativeCore();
  if (native) {
    const { alpha, beta, lda, ldb, ldc } = call;
    native.sgemm(a, b, c, { transA, transB, m, n, k, alpha, beta, lda, ldb, ldc, threads: resolveThreads(options.threads) });
  } else {
    gemmReference(call);
  }
  return c;
}
