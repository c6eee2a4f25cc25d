/**
 * The distribution of |x| over a float32 tensor, exactly: counts by binade, below any threshold,
 * and quantiles, for numerics studies (src/quant/stats.ts). One pass builds a histogram over the
 * top 16 bits of |x|'s float32 pattern (8 exponent bits and 7 mantissa bits: 32768 bins in
 * increasing order of |x|); questions that fall inside one bin (a threshold, a quantile) are
 * answered exactly by a second pass that looks only at the values of those bins.
 *
 * Everything here counts the nonzero finite values; zeros and non-finite values are counted apart.
 * The passes over the tensor run natively (native/value_stats.cc) where the addon is loaded and
 * the tensor is not tiny; the references below give the same numbers.
 */
import { InvalidArgumentError } from '../errors.js';
import { nativeCore } from './native.js';
import { kernelThreads } from './threads.js';

const BINS = 1 << 15;

export interface ValueHistogram {
  /** The values counted (the tensor, as an unsigned view of its float32 patterns). */
  readonly bits: Uint32Array;
  readonly count: number;
  readonly zeros: number;
  /** NaN and ±Inf. */
  readonly nonfinite: number;
  /** Largest finite |x| (0 when there is none). */
  readonly amax: number;
  /** Nonzero finite values per bin: bin = (pattern of |x|) >>> 16. */
  readonly bins: Uint32Array;
  /** prefix[b] = nonzero finite values in bins below b (BINS + 1 entries). */
  readonly prefix: Float64Array;
  /** Nonzero finite values by floor(log2 |x|), exact (float32 subnormals included). */
  readonly log2: Map<number, number>;
  /** Whether the passes over the tensor run in TypeScript (for tests against the native ones). */
  readonly reference: boolean;
}

/** A threshold on |x|: count the values at most `value`, or (strict) below it. */
export interface Threshold {
  value: number;
  strict?: boolean;
}

/** floor(log2 v) of a positive finite float32 given its pattern without sign. */
function exponentOf(pattern: number): number {
  const field = pattern >>> 23;
  if (field > 0) return field - 127;
  // A float32 subnormal: mantissa m means m * 2^-149.
  return 31 - Math.clz32(pattern) - 149;
}

const NATIVE_MIN = 4096;

/** The first pass in TypeScript: bins, zeros, non-finite values and the largest finite pattern. */
function histogramPassReference(bits: Uint32Array, bins: Uint32Array): [number, number, number] {
  let zeros = 0;
  let nonfinite = 0;
  let maxPattern = 0;
  for (let i = 0; i < bits.length; i++) {
    const p = bits[i] & 0x7fffffff;
    if (p === 0) zeros++;
    else if (p >= 0x7f800000) nonfinite++;
    else {
      bins[p >>> 16]++;
      if (p > maxPattern) maxPattern = p;
    }
  }
  return [zeros, nonfinite, maxPattern];
}

/** The histogram of |x| (one pass); `reference` forces the TypeScript pass. */
export function valueHistogram(x: Float32Array, reference = false): ValueHistogram {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const bins = new Uint32Array(BINS);
  const native = reference || x.length < NATIVE_MIN ? null : nativeCore();
  const [zeros, nonfinite, maxPattern] = native ? native.valueHistogram(x, bins, { threads: kernelThreads() }) : histogramPassReference(bits, bins);
  const log2 = new Map<number, number>();
  // Bins of one float32 binade share its exponent field: 128 bins per binade above the subnormals.
  for (let field = 1; field < 255; field++) {
    let n = 0;
    for (let b = field << 7, end = b + 128; b < end; b++) n += bins[b];
    if (n) log2.set(field - 127, n);
  }
  // float32 subnormals (exponent field 0): a bin holds the top 7 mantissa bits, which give
  // floor(log2) exactly except in bin 0 (values below 2^-133), whose values are looked at one by one.
  for (let b = 1; b < 128; b++) {
    if (!bins[b]) continue;
    const e = exponentOf(b << 16);
    log2.set(e, (log2.get(e) ?? 0) + bins[b]);
  }
  const partial: ValueHistogram = { bits, count: x.length, zeros, nonfinite, amax: 0, bins, prefix: new Float64Array(0), log2, reference };
  if (bins[0]) {
    for (const p of exactBins(partial, [0]).get(0)!) {
      const e = exponentOf(p);
      log2.set(e, (log2.get(e) ?? 0) + 1);
    }
  }
  const amaxView = new Float32Array(Uint32Array.of(maxPattern).buffer)[0];
  return { bits, count: x.length, zeros, nonfinite, amax: amaxView, bins, prefix: prefixCounts(bins), log2: new Map([...log2].sort((a, b) => a[0] - b[0])), reference };
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The pattern of the largest float32 <= t (t >= 0), or -1 when there is none (t below every positive float32 means pattern 0). */
function patternAtMost(t: number): number {
  if (!(t >= 0)) throw new InvalidArgumentError(`threshold ${t}: expected a number >= 0`);
  if (t >= 3.4028234663852886e38) return 0x7f7fffff;
  scratch[0] = t;
  let p = scratchBits[0];
  if (scratch[0] > t) p--;
  return p;
}

/**
 * How many nonzero finite values have |x| <= t (`strict`: |x| < t), for each threshold, and the
 * exact quantiles of |x| over the nonzero finite values: for q in [0, 1], the value of rank
 * floor(q * (n - 1)) in increasing order (the lower of the two nearest ranks; NaN when there is
 * no nonzero finite value). Values in the bins of the thresholds and quantiles are compared one
 * by one: one more pass over the tensor, which only looks at those bins, however many are asked.
 */
export function countsAndQuantiles(h: ValueHistogram, thresholds: readonly Threshold[], qs: readonly number[] = []): { counts: number[]; quantiles: number[] } {
  const patterns = thresholds.map(({ value, strict }) => {
    const p = patternAtMost(value);
    // |x| < t: the largest float32 pattern strictly below t.
    return strict && p >= 0 && new Float32Array(Uint32Array.of(p).buffer)[0] === value ? p - 1 : p;
  });
  const n = h.count - h.zeros - h.nonfinite;
  const ranks = qs.map((q) => {
    if (!(q >= 0 && q <= 1)) throw new InvalidArgumentError(`quantile ${q}: expected a number in [0, 1]`);
    return Math.floor(q * (n - 1));
  });
  const rankBins = n === 0 ? [] : ranks.map((r) => binOfRank(h.prefix, r));
  const exact = exactBins(h, [...patterns.filter((p) => p > 0).map((p) => p >>> 16), ...rankBins]);
  const counts = patterns.map((p) => (p <= 0 ? 0 : h.prefix[p >>> 16] + upperBound(exact.get(p >>> 16)!, p)));
  const out = new Float32Array(ranks.length).fill(NaN);
  const outBits = new Uint32Array(out.buffer);
  rankBins.forEach((bin, i) => {
    outBits[i] = exact.get(bin)![ranks[i] - h.prefix[bin]];
  });
  return { counts, quantiles: Array.from(out) };
}

export function countAtMost(h: ValueHistogram, thresholds: readonly Threshold[]): number[] {
  return countsAndQuantiles(h, thresholds).counts;
}

export function quantiles(h: ValueHistogram, qs: readonly number[]): number[] {
  return countsAndQuantiles(h, [], qs).quantiles;
}

/** The bin holding rank r: the last bin whose prefix is <= r. */
function binOfRank(prefix: Float64Array, r: number): number {
  let lo = 0;
  let hi = BINS - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (prefix[mid] <= r) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Sorted patterns of the values in each of `wanted` bins (one pass). */
function exactBins(h: ValueHistogram, wanted: readonly number[]): Map<number, Uint32Array> {
  const out = new Map<number, Uint32Array>();
  if (!wanted.length) return out;
  const slot = new Int32Array(BINS).fill(-1);
  const order: number[] = [];
  for (const bin of wanted) {
    if (slot[bin] >= 0) continue;
    slot[bin] = order.length;
    order.push(bin);
  }
  const offsets = new Uint32Array(order.length + 1);
  order.forEach((bin, k) => {
    offsets[k + 1] = offsets[k] + h.bins[bin];
  });
  const all = new Uint32Array(offsets[order.length]);
  const native = h.reference || h.bits.length < NATIVE_MIN ? null : nativeCore();
  if (native) {
    const x = new Float32Array(h.bits.buffer, h.bits.byteOffset, h.bits.length);
    native.collectBins(x, slot, offsets, all, {});
  } else {
    const fill = offsets.slice(0, order.length);
    const bits = h.bits;
    for (let i = 0; i < bits.length; i++) {
      const p = bits[i] & 0x7fffffff;
      if (p === 0 || p >= 0x7f800000) continue;
      const k = slot[p >>> 16];
      if (k >= 0 && fill[k] < offsets[k + 1]) all[fill[k]++] = p;
    }
  }
  order.forEach((bin, k) => out.set(bin, all.subarray(offsets[k], offsets[k + 1]).sort()));
  return out;
}

/** prefix[b] = nonzero finite values in bins below b. */
function prefixCounts(bins: Uint32Array): Float64Array {
  const prefix = new Float64Array(BINS + 1);
  for (let b = 0; b < BINS; b++) prefix[b + 1] = prefix[b] + bins[b];
  return prefix;
}

/** Entries of a sorted array <= p. */
function upperBound(sorted: Uint32Array, p: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Nonzero finite values by floor(log2 |fl32(x * scale)|): the histogram after scaling. A power-of-two
 * scale shifts the binades (exact, no pass); any other scale takes a pass that scales each value as
 * the quantizer does (float32 product with the scale as float32). Values whose scaled magnitude
 * leaves float32's range are counted at its ends (they were finite before scaling).
 */
export function scaledLog2(h: ValueHistogram, scale: number): Map<number, number> {
  if (!(scale > 0 && Number.isFinite(scale))) throw new InvalidArgumentError(`scale ${scale}: expected a positive finite number`);
  const shift = Math.log2(scale);
  if (Number.isInteger(shift)) return new Map([...h.log2].map(([e, n]) => [e + shift, n]));
  const s = Math.fround(scale);
  const out = new Map<number, number>();
  const bits = h.bits;
  const v = new Float32Array(1);
  const vb = new Uint32Array(v.buffer);
  for (let i = 0; i < bits.length; i++) {
    const p = bits[i] & 0x7fffffff;
    if (p === 0 || p >= 0x7f800000) continue;
    scratchBits[0] = p;
    v[0] = scratch[0] * s;
    let q = vb[0];
    if (q >= 0x7f800000) q = 0x7f7fffff;
    const e = q === 0 ? -150 : exponentOf(q);
    out.set(e, (out.get(e) ?? 0) + 1);
  }
  return new Map([...out].sort((a, b) => a[0] - b[0]));
}

/** Elements per block of errorEnergy's sums (as native/value_stats.cc). */
const ENERGY_BLOCK = 1 << 16;

export interface ErrorEnergy {
  signal: number;
  total: number;
  first: number;
  second: number;
}

/**
 * Sums of squares, in double, for a product's errors: `signal` = sum ref^2, `total` = sum
 * (value - ref)^2, and with a middle version (the same operands accumulated another way)
 * `first` = sum (middle - ref)^2 and `second` = sum (value - middle)^2 (without one, first =
 * total and second = 0). Summed in blocks of 65536 elements, in order, and the blocks in order:
 * the same numbers natively on any thread count.
 */
export function errorEnergyReference(value: Float32Array, reference: Float32Array, middle: Float32Array | null = null): ErrorEnergy {
  checkEnergy(value, reference, middle);
  const sums = [0, 0, 0, 0];
  for (let begin = 0; begin < value.length; begin += ENERGY_BLOCK) {
    const end = Math.min(value.length, begin + ENERGY_BLOCK);
    let signal = 0;
    let total = 0;
    let first = 0;
    let second = 0;
    for (let i = begin; i < end; i++) {
      const r = reference[i];
      const v = value[i];
      signal += r * r;
      total += (v - r) * (v - r);
      if (middle) {
        const m = middle[i];
        first += (m - r) * (m - r);
        second += (v - m) * (v - m);
      }
    }
    sums[0] += signal;
    sums[1] += total;
    sums[2] += middle ? first : total;
    sums[3] += second;
  }
  return { signal: sums[0], total: sums[1], first: sums[2], second: sums[3] };
}

function checkEnergy(value: Float32Array, reference: Float32Array, middle: Float32Array | null): void {
  if (value.length !== reference.length || (middle && middle.length !== value.length)) {
    throw new InvalidArgumentError(`errorEnergy: ${value.length} values against ${reference.length} reference values${middle ? ` and ${middle.length} middle values` : ''}`);
  }
}

export function errorEnergy(value: Float32Array, reference: Float32Array, middle: Float32Array | null = null): ErrorEnergy {
  const native = value.length < NATIVE_MIN ? null : nativeCore();
  if (!native) return errorEnergyReference(value, reference, middle);
  checkEnergy(value, reference, middle);
  const sums = new Float64Array(4);
  native.errorEnergy(value, reference, middle, sums, { threads: kernelThreads() });
  return { signal: sums[0], total: sums[1], first: sums[2], second: sums[3] };
}
