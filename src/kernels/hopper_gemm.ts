/**
 * A model of the FP8 tensor-core accumulation of NVIDIA Hopper (H100/H200), found from outputs
 * measured on an H200 (`torch._scaled_mm`, scales 1, float32 output; shared/hopper/) and
 * reproducing every one of them bit for bit (docs/lowp_gemm.md, "The hopper-fp8 models"):
 *
 *   For each output element, along K in order:
 *   - K runs in *intervals*: 128 products (`hopper-fp8`, fast accumulation off) or all of K
 *     (`hopper-fp8-fast`). Each interval starts a fresh tensor-core accumulator; its result is
 *     added into a float32 sum (round to nearest even), in K order.
 *   - Within an interval, products come in *groups* of 32 (from the interval's start). For a
 *     group, X = the largest of: the exponent sums ea + eb of its nonzero products (e = the
 *     operand's unbiased exponent field, subnormals at the format's emin), and floor(log2 |acc|)
 *     of the interval's accumulator when it is nonzero. Every product and the accumulator are
 *     truncated toward zero to multiples of 2^(X - 13); their sum (exact) is truncated toward zero
 *     to 14 significant bits and becomes the accumulator.
 *   - Scales (`scaleA`, `scaleB`, as float32): the float32 sum is multiplied once, at the end, by
 *     fl32(scaleA * scaleB), rounded to nearest even.
 *
 * Operands are FP8 codes (E4M3FN or E5M2, any mix). NaN or Inf in an operand makes the element NaN
 * (the GPU's behaviour there is not part of the measured set). This is a TypeScript kernel with no
 * native path yet: about 10 ns per product.
 */
import { InvalidArgumentError } from '../errors.js';
import { decodeTable, resolveFormat, type FormatLike } from '../formats/index.js';
import { nativeCore } from './native.js';
import { resolveThreads } from './threads.js';

export const HOPPER_MODELS = ['hopper-fp8', 'hopper-fp8-fast'] as const;
export type HopperModel = (typeof HOPPER_MODELS)[number];

/**
 * An aligned fixed-point accumulator, as data: products in groups of `group`, each truncated
 * toward zero `keep` bits below the group's largest exponent sum (accumulator included), the
 * group's sum truncated to `significant` bits, a fresh accumulator every `interval` products
 * (0: one for all of K) whose result is added into a float32 sum. A model of published
 * descriptions of FP8 tensor-core accumulation with these parameters; the two Hopper instances
 * below reproduce an H200's outputs (shared/hopper/), any other is a model, not a copy of a chip.
 */
export interface AlignedAccumulator {
  group: number;
  keep: number;
  significant: number;
  interval: number;
}

export const ALIGNED_MODELS: Record<HopperModel, AlignedAccumulator> = {
  'hopper-fp8': { group: 32, keep: 13, significant: 14, interval: 128 },
  'hopper-fp8-fast': { group: 32, keep: 13, significant: 14, interval: 0 },
};

/** Whether an accumulation name is one of the aligned models. */
export function isAlignedModel(name: unknown): name is HopperModel {
  return typeof name === 'string' && (HOPPER_MODELS as readonly string[]).includes(name);
}

/** Check an aligned accumulator's parameters. */
export function checkAligned(model: AlignedAccumulator): AlignedAccumulator {
  const { group, keep, significant, interval } = model;
  if (!Number.isInteger(group) || group < 1 || group > 4096) throw new InvalidArgumentError(`aligned accumulator: group is ${group}; expected an integer from 1 to 4096`);
  if (!Number.isInteger(keep) || keep < 1 || keep > 20) throw new InvalidArgumentError(`aligned accumulator: keep is ${keep}; expected an integer from 1 to 20`);
  if (!Number.isInteger(significant) || significant < 1 || significant > 24) throw new InvalidArgumentError(`aligned accumulator: significant is ${significant}; expected an integer from 1 to 24`);
  if (!Number.isInteger(interval) || interval < 0) throw new InvalidArgumentError(`aligned accumulator: interval is ${interval}; expected 0 (none) or a positive integer`);
  return model;
}

/** x truncated toward zero to `bits` significant bits (x a double holding a sum of few bits). */
function truncateSignificant(x: number, bits: number): number {
  if (x === 0) return 0;
  const e = Math.floor(Math.log2(Math.abs(x)));
  // log2 may round up at the top of a binade: correct e so that 2^e <= |x| < 2^(e+1).
  const exp = 2 ** e > Math.abs(x) ? e - 1 : 2 ** (e + 1) <= Math.abs(x) ? e + 1 : e;
  const q = 2 ** (exp - bits + 1);
  return Math.trunc(x / q) * q;
}

function operandTables(format: FormatLike, flag: string): { values: Float64Array; exps: Int32Array } {
  const f = resolveFormat(format);
  if (f.bits > 8) {
    throw new InvalidArgumentError(`${flag}: aligned accumulators (hopper-fp8 and its kind) take operands of at most 8 bits (e4m3, e5m2, ...); got ${f.name}`);
  }
  const table = decodeTable(f);
  const values = Float64Array.from(table);
  const exps = new Int32Array(256);
  for (let c = 0; c < 256; c++) {
    const field = (c >> f.mantissaBits) & ((1 << f.exponentBits) - 1);
    exps[c] = field === 0 ? f.emin : field - f.bias;
  }
  return { values, exps };
}

export interface HopperGemmOptions {
  model: HopperModel | AlignedAccumulator;
  /** Per-tensor scales of A and B (default 1), as torch._scaled_mm takes them. */
  scaleA?: number;
  scaleB?: number;
}

/** C = A B (A: m x k codes, B: k x n codes, row-major) under a Hopper FP8 accumulation model. */
export function hopperGemm(
  m: number, n: number, k: number, a: Uint8Array, aFormat: FormatLike, b: Uint8Array, bFormat: FormatLike, options: HopperGemmOptions,
): Float32Array {
  const { scaleA = 1, scaleB = 1 } = options;
  for (const [name, s] of [['scaleA', scaleA], ['scaleB', scaleB]] as const) {
    if (!(Number.isFinite(s) && s > 0)) throw new InvalidArgumentError(`hopperGemm: ${name} is ${s}; expected a positive finite number`);
  }
  const scale = Math.fround(Math.fround(scaleA) * Math.fround(scaleB));
  if (typeof options.model === 'string' && !isAlignedModel(options.model)) throw new InvalidArgumentError(`unknown Hopper model "${options.model}"; choose ${HOPPER_MODELS.join(' or ')}`);
  const model = checkAligned(typeof options.model === 'string' ? ALIGNED_MODELS[options.model] : options.model);
  if (a.length !== m * k || b.length !== k * n) {
    throw new InvalidArgumentError(`hopperGemm: A has ${a.length} codes and B ${b.length}; a ${m}x${k}x${n} product needs ${m * k} and ${k * n}`);
  }
  const ta = operandTables(aFormat, 'A');
  const tb = operandTables(bFormat, 'B');
  const interval = model.interval > 0 ? model.interval : Math.max(k, 1);
  const { group: GROUP, keep: KEEP, significant: SIGNIFICANT } = model;
  const out = new Float32Array(m * n);
  const products = new Float64Array(GROUP);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let total = 0;
      let bad = false;
      for (let start = 0; start < k; start += interval) {
        const end = Math.min(k, start + interval);
        let acc = 0;
        for (let g = start; g < end; g += GROUP) {
          const count = Math.min(GROUP, end - g);
          let x = acc === 0 ? -Infinity : Math.floor(Math.log2(Math.abs(acc)));
          for (let t = 0; t < count; t++) {
            const ca = a[i * k + g + t];
            const cb = b[(g + t) * n + j];
            const p = ta.values[ca] * tb.values[cb];
            products[t] = p;
            if (!Number.isFinite(p)) bad = true;
            else if (p !== 0) x = Math.max(x, ta.exps[ca] + tb.exps[cb]);
          }
          if (x === -Infinity) continue;
          // Products of 8-bit values and multiples of 2^(X-keep) below 2^(X+3) are exact in double.
          const scale = 2 ** (KEEP - x);
          let sum = Math.trunc(acc * scale);
          for (let t = 0; t < count; t++) sum += Math.trunc(products[t] * scale);
          acc = truncateSignificant(sum / scale, SIGNIFICANT);
        }
        total = Math.fround(total + acc);
      }
      out[i * n + j] = bad ? NaN : scale === 1 ? total : Math.fround(total * scale);
    }
  }
  return out;
}

type NativeTables = { sig: Int8Array; exp: Int8Array; bad: Uint8Array; mantissaBits: number };
const tablesByFormat = new Map<string, NativeTables>();

/** The native kernel's tables of an operand format: signed significands, exponent fields, NaN/Inf (built once per format). */
function nativeTables(format: FormatLike): NativeTables {
  const f = resolveFormat(format);
  const known = tablesByFormat.get(f.name);
  if (known) return known;
  const { values, exps } = operandTables(f, 'operand');
  const sig = new Int8Array(256);
  const exp = new Int8Array(256);
  const bad = new Uint8Array(256);
  for (let c = 0; c < 256; c++) {
    const v = values[c];
    exp[c] = exps[c];
    if (!Number.isFinite(v)) bad[c] = 1;
    else sig[c] = v / 2 ** (exps[c] - f.mantissaBits);
  }
  const tables = { sig, exp, bad, mantissaBits: f.mantissaBits };
  tablesByFormat.set(f.name, tables);
  return tables;
}

/**
 * C = A B (A: m x k codes, B: k x n codes, row-major) under an aligned accumulator, without scales:
 * hopperGemm's totals, natively where the addon is loaded (the same bits).
 */
export function alignedGemm(
  m: number, n: number, k: number, a: Uint8Array, aFormat: FormatLike, b: Uint8Array, bFormat: FormatLike, model: HopperModel | AlignedAccumulator, threads?: number,
): Float32Array {
  const native = nativeCore();
  if (!native) return hopperGemm(m, n, k, a, aFormat, b, bFormat, { model });
  const params = checkAligned(typeof model === 'string' ? ALIGNED_MODELS[model] : model);
  if (a.length !== m * k || b.length !== k * n) {
    throw new InvalidArgumentError(`alignedGemm: A has ${a.length} codes and B ${b.length}; a ${m}x${k}x${n} product needs ${m * k} and ${k * n}`);
  }
  const c = new Float32Array(m * n);
  native.alignedGemm(a, b, c, { m, n, k, aTables: nativeTables(aFormat), bTables: nativeTables(bFormat), ...params, threads: resolveThreads(threads) });
  return c;
}

/** A block-scaled operand as alignedBlockGemm takes it (src/kernels/block_quant.ts's BlockQTensor, codes K x rows). */
export interface AlignedBlockOperand {
  codes: Uint8Array;
  format: FormatLike;
  scales: Float32Array;
  blockK: number;
  blockRows: number;
}

/**
 * The block-scaled GEMM (src/kernels/block_gemm.ts's contract, float32 outer sum) with partials
 * under an aligned accumulator, natively in one pass: each run's partial is the aligned total of
 * its products (intervals counted from the run's start), then c = fl32(c + fl32(fl32(P / sa) /
 * sb)). A holds m rows, B n rows, both as K x rows codes; `ends` are the runs' ends. Null where the
 * addon is not loaded (the caller runs the runs one by one).
 */
export function alignedBlockGemm(
  m: number, n: number, k: number, a: AlignedBlockOperand, b: AlignedBlockOperand, ends: readonly number[], model: HopperModel | AlignedAccumulator,
  out: Float32Array, threads?: number,
): Float32Array | null {
  const native = nativeCore();
  if (!native) return null;
  const params = checkAligned(typeof model === 'string' ? ALIGNED_MODELS[model] : model);
  native.alignedGemm(a.codes, b.codes, out, {
    m, n, k, aTables: nativeTables(a.format), bTables: nativeTables(b.format), ...params, threads: resolveThreads(threads), aKMajor: true,
    blocks: { scalesA: a.scales, scalesB: b.scales, ends: Float64Array.from(ends), blockKA: a.blockK, blockRowsA: a.blockRows, blockKB: b.blockK, blockRowsB: b.blockRows },
  });
  return out;
}
