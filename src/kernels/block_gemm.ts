/**
 * Block-scaled GEMM: C = A B with A (m x K) and B (K x n) quantized in blocks along K
 * (src/kernels/block_quant.ts; B is held as its n x K view), as MX, tile-wise (DeepSeek-V3) and
 * row-wise recipes compute.
 *
 * CONTRACT (part of the API; the fast path returns exactly these bits).
 * Runs. K is cut at every multiple of A's blockK, of B's blockK and of the promotion interval
 * (when one is given): the runs [k0, k1) are the pieces between consecutive cuts (so each run lies
 * inside one K-block of each operand). Within a run both operands' scales are constant per pair.
 * Partial. For run number r, P[i][j] = the low-precision GEMM (src/kernels/lowp_gemm.ts, its
 * contract: products, accumulation format, rounding, chunks) of the element values (codes
 * decoded, without scales) over t in [k0, k1), with stream key mix32(key ^ ((r + 1) * 0x9E3779B9))
 * for stochastic rounding, key = streamKey or seedKey(seed).
 * Outer sum, for runs in order, starting at 0:
 *   term = fl32(fl32(P[i][j] / sa) / sb), sa and sb the divisors of the blocks holding (i, k0) in A
 *   and (j, k0) in B;
 *   acc = fl32(acc + term), then rounded to the outer format with nearest-even when one is given
 *   (DeepSeek-V3 promotes to float32: the default).
 * Result: acc. Results do not depend on the thread count (threads split rows and columns, never K).
 */
import { InvalidArgumentError } from '../errors.js';
import { decodeTable, encodeBits, encodeParams, makeQTensor, mix32, resolveFormat, seedKey, type FormatLike } from '../formats/index.js';
import { blockQuantize, dequantizeBlocks, type BlockQTensor, type BlockSpec } from './block_quant.js';
import { freshArray } from './buffer_pool.js';
import { alignedBlockGemm } from './hopper_gemm.js';
import { dequantize } from './quant_stats.js';
import { alignedOf, lowpGemm, lowpGemmReference, type LowpGemmOptions, type LowpOperand } from './lowp_gemm.js';
import { nativeCore } from './native.js';
import { resolveThreads } from './threads.js';

export interface BlockGemmOptions extends Pick<LowpGemmOptions, 'accumulation' | 'rounding' | 'saturate' | 'chunk' | 'seed' | 'streamKey' | 'threads'> {
  /** The outer accumulator: `fp32` (default) or a format, rounded to nearest after every run. */
  outer?: 'fp32' | FormatLike;
  /**
   * Promotion interval: K is also cut every `promote` products (0: never), so each partial of at
   * most that many products is accumulated in the inner format and then added into the outer sum
   * (DeepSeek-V3's promotion every 128 products into float32).
   */
  promote?: number;
  /** Write C (m x n) here. */
  out?: Float32Array;
}

/** The K offsets where runs end (ascending, the last K). */
export function blockRuns(k: number, blockKA: number, blockKB: number, promote = 0): number[] {
  const ends: number[] = [];
  const interval = promote > 0 ? promote : Infinity;
  let t = 0;
  while (t < k) {
    const next = Math.min(k, (Math.floor(t / blockKA) + 1) * blockKA, (Math.floor(t / blockKB) + 1) * blockKB, (Math.floor(t / interval) + 1) * interval);
    ends.push(next);
    t = next;
  }
  return ends;
}

/** The stream key of run r. */
export function runKey(key: number, run: number): number {
  return mix32((key ^ Math.imul(run + 1, 0x9e3779b9)) >>> 0) >>> 0;
}

function check(a: BlockQTensor, b: BlockQTensor): void {
  if (a.k !== b.k) throw new InvalidArgumentError(`blockScaledGemm: A is ${a.rows} x ${a.k} and B is ${b.k} x ${b.rows} (held ${b.rows} x ${b.k}); their K differ`);
}

interface Plan {
  m: number;
  n: number;
  k: number;
  ends: number[];
  key: number;
  outer: ReturnType<typeof resolveFormat> | null;
}

function plan(a: BlockQTensor, b: BlockQTensor, options: BlockGemmOptions): Plan {
  check(a, b);
  const outerFormat = resolveFormat(options.outer ?? 'fp32');
  const key = options.streamKey ?? seedKey(options.seed ?? 0);
  const promote = options.promote ?? 0;
  if (!Number.isInteger(promote) || promote < 0) throw new InvalidArgumentError(`blockScaledGemm: promote is ${promote}; expected 0 (never) or a positive integer`);
  return { m: a.rows, n: b.rows, k: a.k, ends: blockRuns(a.k, a.blockK, b.blockK, promote), key, outer: outerFormat.name === 'float32' ? null : outerFormat };
}

/** The run's piece of an operand (L x rows, k-major) and its block divisors along rows. */
function piece(q: BlockQTensor, k0: number, k1: number): { codes: Uint8Array; scales: Float32Array } {
  const rowBlocks = Math.ceil(q.rows / q.blockRows);
  const kb = Math.floor(k0 / q.blockK);
  return { codes: q.codes.subarray(k0 * q.rows, k1 * q.rows), scales: q.scales.subarray(kb * rowBlocks, (kb + 1) * rowBlocks) };
}

function runOptions(options: BlockGemmOptions, key: number, run: number): LowpGemmOptions {
  return {
    accumulation: options.accumulation, rounding: options.rounding, saturate: options.saturate, chunk: options.chunk,
    streamKey: runKey(key, run), threads: options.threads,
  };
}

/** The contract as a naive loop (the partials by the low-precision GEMM's own reference). */
export function blockScaledGemmReference(a: BlockQTensor, b: BlockQTensor, options: BlockGemmOptions = {}): Float32Array {
  const p = plan(a, b, options);
  const { m, n } = p;
  const acc = options.out ?? new Float32Array(m * n);
  acc.fill(0);
  const outerParams = p.outer ? encodeParams(p.outer, {}) : null;
  const outerTable = p.outer ? decodeTable(p.outer) : null;
  const bits = new Uint32Array(1);
  const scratch = new Float32Array(bits.buffer);
  let k0 = 0;
  p.ends.forEach((k1, run) => {
    const A = piece(a, k0, k1);
    const B = piece(b, k0, k1);
    const partial = lowpGemmReference(m, n, k1 - k0, makeQTensor(A.codes, a.format), makeQTensor(B.codes, b.format), { ...runOptions(options, p.key, run), transA: true });
    for (let i = 0; i < m; i++) {
      const sa = A.scales[Math.floor(i / a.blockRows)];
      for (let j = 0; j < n; j++) {
        const sb = B.scales[Math.floor(j / b.blockRows)];
        const term = Math.fround(Math.fround(partial[i * n + j] / sa) / sb);
        scratch[0] = acc[i * n + j] + term;
        acc[i * n + j] = outerParams ? outerTable![encodeBits(bits[0], outerParams, 0)] : scratch[0];
      }
    }
    k0 = k1;
  });
  return acc;
}

/** blockScaledGemmReference's bits: each run on the low-precision GEMM's fast path, the outer sum natively. */
export function blockScaledGemm(a: BlockQTensor, b: BlockQTensor, options: BlockGemmOptions = {}): Float32Array {
  const native = nativeCore();
  if (!native) return blockScaledGemmReference(a, b, options);
  const p = plan(a, b, options);
  const { m, n } = p;
  const acc = options.out ?? freshArray(m * n);
  if (acc.length !== m * n) throw new InvalidArgumentError(`blockScaledGemm: out has ${acc.length} elements; expected ${m * n}`);
  const threads = resolveThreads(options.threads);
  const aligned = alignedOf(options.accumulation);
  if (aligned && !p.outer && a.format.bits <= 8 && b.format.bits <= 8) {
    // Aligned partials (hopper-fp8, DeepSeek-V3's 14-bit accumulator) and a float32 outer sum: one
    // native pass over every run, no partial matrices.
    return alignedBlockGemm(m, n, p.k, a, b, p.ends, aligned, acc, threads)!;
  }
  const floatPartials = !aligned && resolveFormat((options.accumulation as string | undefined) ?? 'fp32').name === 'float32';
  if (!p.outer && floatPartials && !(options.chunk ?? 0)) {
    // Float32 partials (products of two formats of at most 8 bits are exact) and a float32 outer
    // sum: the whole product in one native pass, no partial matrices.
    native.blockGemmFp32(a.codes, b.codes, acc, a.scales, b.scales, Float64Array.from(p.ends), {
      m, n, k: p.k, blockKA: a.blockK, blockRowsA: a.blockRows, blockKB: b.blockK, blockRowsB: b.blockRows,
      aTable: decodeTable(a.format), bTable: decodeTable(b.format), threads,
    });
    return acc;
  }
  acc.fill(0);
  const partial = freshArray(m * n);
  const outer = p.outer ? encodeParams(p.outer, {}) : null;
  const table = p.outer ? decodeTable(p.outer) : null;
  let k0 = 0;
  p.ends.forEach((k1, run) => {
    const A = piece(a, k0, k1);
    const B = piece(b, k0, k1);
    lowpGemm(m, n, k1 - k0, makeQTensor(A.codes, a.format), makeQTensor(B.codes, b.format), { ...runOptions(options, p.key, run), transA: true, out: partial, threads });
    native.blockScaleAdd(partial, acc, A.scales, B.scales, { m, n, blockRowsA: a.blockRows, blockRowsB: b.blockRows, outer, table, threads });
    k0 = k1;
  });
  return acc;
}

/** A block spec with an observer of the operand it produced (the recipe's telemetry). */
export interface ObservedBlockSpec extends BlockSpec {
  observe?(q: BlockQTensor, values: Float32Array): void;
}

function floatValues(x: LowpOperand): Float32Array {
  return x instanceof Float32Array ? x : dequantize(x, new Float32Array(x.codes.length));
}

/**
 * C = op(A) op(B) (m x n, sum over k) with either operand quantized in blocks along k from its
 * float32 values (a coded operand is taken at its values): both block-scaled, the block-scaled
 * GEMM; one, the other stays float32 and the product runs on the low-precision GEMM with the
 * block operand's values (decode(code) / scale) and the same accumulation.
 */
export function blockScaledProduct(
  m: number, n: number, k: number, a: LowpOperand, b: LowpOperand, specA: ObservedBlockSpec | null | undefined, specB: ObservedBlockSpec | null | undefined,
  options: LowpGemmOptions & BlockGemmOptions = {},
): Float32Array {
  const A = floatValues(a);
  const B = floatValues(b);
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const qa = specA ? blockQuantize(A, m, k, transA ? 'kr' : 'rk', specA, options.threads) : null;
  const qb = specB ? blockQuantize(B, n, k, transB ? 'rk' : 'kr', specB, options.threads) : null;
  if (qa) specA!.observe?.(qa, A);
  if (qb) specB!.observe?.(qb, B);
  if (qa && qb) return blockScaledGemm(qa, qb, options);
  const gemm: LowpGemmOptions = { accumulation: options.accumulation, rounding: options.rounding, saturate: options.saturate, chunk: options.chunk, seed: options.seed, streamKey: options.streamKey, threads: options.threads, out: options.out };
  if (qa) return lowpGemm(m, n, k, dequantizeBlocks(qa), B, { ...gemm, transA: true, transB });
  if (qb) return lowpGemm(m, n, k, A, dequantizeBlocks(qb), { ...gemm, transA, transB: false });
  return lowpGemm(m, n, k, A, B, { ...gemm, transA, transB });
}
