/**
 * The numerics lab: on chosen steps, for every GEMM layer and each of its tensor classes, the
 * distribution of the values against the range of candidate formats, and each product's error
 * against a float32 shadow of the same step. See docs/numerics.md for the record schema.
 *
 * Per tensor (weights, activations, errors, weight gradients of a layer), before the recipe's
 * scaling: count, zeros, non-finite values, amax, quantiles of |x|, a histogram of floor(log2 |x|);
 * the same histogram after the recipe's scaling; and per candidate format the fractions of the
 * nonzero finite values that would underflow to zero, land in the subnormal range, or exceed the
 * largest finite value, under the recipe's scale and under the best per-tensor scale for that
 * format (max finite / amax). Rounding to nearest-even decides: |x * scale| <= minSubnormal / 2
 * underflows, |x * scale| < minNormal - minSubnormal / 2 is subnormal, |x * scale| > maxFinite
 * overflows (is saturated, or becomes Inf or NaN).
 *
 * Per product (forward, input gradient, weight gradient) of a quantized layer: the relative error
 * of what the layer computed against the float32 product of the unquantized operands, as SNR in dB
 * and as a relative Frobenius norm, split into the part the operands' quantization makes (the
 * quantized operands with float32 accumulation against the shadow) and the part the accumulator
 * adds (the layer's product against that).
 *
 * Looking changes nothing: the probes read tensors, compute extra products in float32 (no
 * stochastic rounding, no scaler moves), and give back the buffers they took.
 */
import { InvalidArgumentError } from '../errors.js';
import { resolveFormat, type Format, type FormatLike } from '../formats/index.js';
import { countsAndQuantiles, errorEnergy, scaledLog2, valueHistogram, type LowpOperand, type Threshold } from '../kernels/index.js';
import { GemmLayer, probedFloat32Compute, type GemmCompute } from '../nn/index.js';
import type { GemmPass, GemmProbe, OperandClass } from '../ops/index.js';
import type { QuantSession } from './session.js';

/** The candidate formats every study includes. */
export const DEFAULT_STAT_FORMATS: readonly string[] = ['e5m2', 'e4m3', 'e6m9', 'fp16', 'bf16'];

/** The quantiles of |x| a record gives (over the nonzero finite values). */
export const STAT_QUANTILES: readonly number[] = [0.001, 0.01, 0.5, 0.99, 0.999];

/** Tensor classes as records name them. */
export const STAT_TENSORS = ['weights', 'activations', 'errors', 'weightGradients'] as const;
export type StatTensor = (typeof STAT_TENSORS)[number];

const TENSOR_NAMES: Record<OperandClass, StatTensor> = {
  weights: 'weights', activations: 'activations', errors: 'errors', weight_gradients: 'weightGradients',
};

/** Where a tensor's nonzero finite values land in one format, as fractions of them. */
export interface FormatFit {
  underflow: number;
  subnormal: number;
  overflow: number;
}

/** The error of one product against its float32 shadow. */
export interface ProductError {
  /** 10 log10(|shadow|^2 / |result - shadow|^2); null when the product is exact (or the shadow is zero). */
  snr_db: number | null;
  /** |result - shadow| / |shadow| (Frobenius norms); null when the shadow is zero. */
  relative: number | null;
  /** The operands' part: |operandsOnly - shadow| / |shadow|. */
  operands: number | null;
  /** The accumulator's part: |result - operandsOnly| / |shadow|. */
  accumulator: number | null;
  /** operands^2 / (operands^2 + accumulator^2): the operands' share of the two errors' energy (null when both are 0). */
  operands_share: number | null;
}

export interface StatsRecord {
  step: number;
  /** The layer's dotted path (as in `octet summary`). */
  layer: string;
  tensor: StatTensor;
  /** The recipe's format for this tensor in this layer, or "float32". */
  format: string;
  /** The recipe's scale (x * scale is what gets encoded); 1 for float32 tensors. */
  scale: number;
  count: number;
  zeros: number;
  nonfinite: number;
  amax: number;
  /** |x| at each of STAT_QUANTILES, keyed by the quantile (null when there is no nonzero finite value). */
  quantiles: Record<string, number | null>;
  /** e -> values with floor(log2 |x|) = e, before the recipe's scaling. */
  log2_bins: Record<string, number>;
  /** The same after the recipe's scaling: floor(log2 |fl32(x * scale)|). */
  log2_bins_scaled: Record<string, number>;
  /** Per candidate format, under the recipe's scale. */
  formats: Record<string, FormatFit>;
  /** Per candidate format, under its best per-tensor scale (max finite / amax, as `scale`). */
  formats_best: Record<string, FormatFit & { scale: number }>;
  /** Per product of the layer that ran this step, SNR in dB (null: exact); absent for float32 layers. */
  snr_db?: Partial<Record<GemmPass, number | null>>;
  error?: Partial<Record<GemmPass, ProductError>>;
}

export interface StatsOptions {
  /** Candidate formats besides DEFAULT_STAT_FORMATS (names or records). */
  formats?: readonly FormatLike[];
}

/** The candidates: the defaults, then the extra ones, each once (by canonical name), keyed by the name given. */
export function statFormats(extra: readonly FormatLike[] = []): [string, Format][] {
  const out: [string, Format][] = [];
  const seen = new Set<string>();
  for (const f of [...DEFAULT_STAT_FORMATS, ...extra]) {
    const format = resolveFormat(f);
    if (seen.has(format.name)) continue;
    seen.add(format.name);
    out.push([typeof f === 'string' ? f.trim().toLowerCase() : format.name, format]);
  }
  return out;
}

/**
 * The thresholds on |x| that decide where values land in `format` under `scale` (see the top of
 * this file). `top`: the overflow threshold when it is known exactly (amax under the best scale).
 */
function fitThresholds(format: Format, scale: number, top?: number): Threshold[] {
  // The spacing of the subnormal range; without subnormals, results in it flush to zero.
  const spacing = 2 ** (format.emin - format.mantissaBits);
  return [
    { value: spacing / 2 / scale },
    // A tie at minNormal - spacing / 2 rounds to minNormal (even): the subnormal range ends below it.
    { value: (format.minNormal - spacing / 2) / scale, strict: true },
    { value: top ?? format.maxFinite / scale },
  ];
}

function fitOf(counts: readonly number[], nonzero: number, format: Format): FormatFit {
  if (nonzero === 0) return { underflow: 0, subnormal: 0, overflow: 0 };
  const [rounded, belowNormal, inRange] = counts;
  return {
    underflow: (format.subnormals ? rounded : belowNormal) / nonzero,
    subnormal: format.subnormals ? (belowNormal - rounded) / nonzero : 0,
    overflow: (nonzero - inRange) / nonzero,
  };
}

function ratio(error: number, signal: number): number | null {
  return signal > 0 ? Math.sqrt(error / signal) : null;
}

/** The error record of a product from its three versions. */
export function productError(result: Float32Array, shadow: Float32Array, operandsOnly: Float32Array | null): ProductError {
  const { signal, total, first, second } = errorEnergy(result, shadow, operandsOnly);
  const both = first + second;
  return {
    snr_db: signal > 0 && total > 0 ? 10 * Math.log10(signal / total) : null,
    relative: ratio(total, signal),
    operands: ratio(first, signal),
    accumulator: ratio(second, signal),
    operands_share: both > 0 ? first / both : null,
  };
}

const binsObject = (m: Map<number, number>): Record<string, number> => Object.fromEntries([...m].map(([e, n]) => [String(e), n]));

/** One tensor's record (everything but the products). */
export function tensorRecord(
  step: number, layer: string, cls: OperandClass, raw: Float32Array, operand: LowpOperand, candidates: readonly [string, Format][],
): StatsRecord {
  const h = valueHistogram(raw);
  const coded = operand instanceof Float32Array ? null : operand;
  const scale = coded ? coded.scale : 1;
  const nonzero = h.count - h.zeros - h.nonfinite;
  // Every candidate under both scales, counted in one pass. The best scale maps amax to max
  // finite exactly (in real arithmetic), so its overflow threshold is amax itself.
  const bestScales = candidates.map(([, f]) => (h.amax > 0 ? f.maxFinite / h.amax : 1));
  const thresholds = candidates.flatMap(([, f], i) => [...fitThresholds(f, scale), ...fitThresholds(f, bestScales[i], h.amax > 0 ? h.amax : undefined)]);
  const { counts, quantiles: qs } = countsAndQuantiles(h, thresholds, STAT_QUANTILES);
  const formats: Record<string, FormatFit> = {};
  const best: Record<string, FormatFit & { scale: number }> = {};
  candidates.forEach(([name, format], i) => {
    formats[name] = fitOf(counts.slice(6 * i, 6 * i + 3), nonzero, format);
    best[name] = { scale: bestScales[i], ...fitOf(counts.slice(6 * i + 3, 6 * i + 6), nonzero, format) };
  });
  return {
    step,
    layer,
    tensor: TENSOR_NAMES[cls],
    format: coded ? coded.format.name : 'float32',
    scale,
    count: h.count,
    zeros: h.zeros,
    nonfinite: h.nonfinite,
    amax: h.amax,
    quantiles: Object.fromEntries(STAT_QUANTILES.map((q, i) => [String(q), Number.isNaN(qs[i]) ? null : qs[i]])),
    log2_bins: binsObject(h.log2),
    log2_bins_scaled: binsObject(scale === 1 ? h.log2 : scaledLog2(h, scale)),
    formats,
    formats_best: best,
  };
}

/** One layer's probe: turns what the op shows it into records of the current step. */
class LayerProbe implements GemmProbe {
  active = false;
  step = 0;
  tensors: StatsRecord[] = [];
  products: Partial<Record<GemmPass, ProductError>> = {};

  constructor(readonly layer: string, readonly candidates: readonly [string, Format][]) {}

  tensor(cls: OperandClass, raw: Float32Array, operand: LowpOperand): void {
    this.tensors.push(tensorRecord(this.step, this.layer, cls, raw, operand, this.candidates));
  }

  product(pass: GemmPass, result: Float32Array, shadow: Float32Array, operandsOnly: Float32Array | null): void {
    this.products[pass] = productError(result, shadow, operandsOnly);
  }

  take(): StatsRecord[] {
    const hasProducts = Object.keys(this.products).length > 0;
    const snr = Object.fromEntries(Object.entries(this.products).map(([pass, e]) => [pass, e.snr_db]));
    const out = this.tensors.map((r) => (hasProducts ? { ...r, snr_db: snr, error: { ...this.products } } : r));
    this.tensors = [];
    this.products = {};
    return out;
  }
}

/**
 * The numerics lab on a recipe session: `begin(step)` before a step's forward pass, `end()` after
 * its backward pass returns that step's records (layers in model order, tensor classes in
 * STAT_TENSORS order). Every GEMM layer is looked at: the quantized ones through their quantization
 * policy, the float32 ones (the fp32 recipe's, a recipe's highPrecisionLayers) through a probed
 * float32 compute. `close()` gives the layers back their own compute.
 */
export class NumericsLab {
  readonly formats: readonly [string, Format][];
  private readonly probes: LayerProbe[] = [];
  private readonly restore: [GemmLayer, GemmCompute][] = [];
  private step: number | null = null;

  constructor(readonly session: QuantSession, options: StatsOptions = {}) {
    this.formats = statFormats(options.formats);
    const quantized = new Map(session.layers.map((l) => [l.name, l]));
    for (const [path, module] of session.model.namedModules()) {
      if (!(module instanceof GemmLayer)) continue;
      const probe = new LayerProbe(path, this.formats);
      this.probes.push(probe);
      const state = quantized.get(path);
      if (state) {
        state.probe = probe;
      } else {
        this.restore.push([module, module.compute]);
        module.compute = probedFloat32Compute(session.algorithm, probe);
      }
    }
  }

  /** Look at the step about to run (`step`: the steps already taken). */
  begin(step: number): void {
    if (this.step !== null) throw new InvalidArgumentError(`NumericsLab.begin(${step}): step ${this.step} is still open; call end() first`);
    this.step = step;
    for (const p of this.probes) {
      p.active = true;
      p.step = step;
    }
  }

  /** The records of the step begun, once its backward pass has run. */
  end(): StatsRecord[] {
    if (this.step === null) throw new InvalidArgumentError('NumericsLab.end(): no step begun');
    this.step = null;
    const records: StatsRecord[] = [];
    for (const p of this.probes) {
      p.active = false;
      const order = (r: StatsRecord) => STAT_TENSORS.indexOf(r.tensor);
      records.push(...p.take().sort((a, b) => order(a) - order(b)));
    }
    return records;
  }

  close(): void {
    for (const state of this.session.layers) state.probe = null;
    for (const [layer, compute] of this.restore) layer.compute = compute;
    for (const p of this.probes) p.active = false;
  }
}
