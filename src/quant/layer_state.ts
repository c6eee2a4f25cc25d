/**
 * The quantization state of one GEMM layer under a recipe: its scalers per tensor class, its
 * per-layer dynamic error scale, and what happened this step.
 */
import { resolveFormat, streamKey, type Format, type QTensor, type StreamRole } from '../formats/index.js';
import { absMax, takeCodes, type BlockQTensor, type ConvAlgorithm, type ConvBlocks, type LowpGemmOptions, type LowpOperand, type ObservedBlockSpec } from '../kernels/index.js';
import type { GemmLayer } from '../nn/index.js';
import type { GemmPass, GemmProbe, OperandRole, ProductOptions, QuantizationPolicy } from '../ops/index.js';
import { quantizeOperand, type QuantizeSpec } from './quantizer.js';
import { isBlockScaled, isFloat32Accumulation, type Recipe, type TensorClassSpec } from './recipe.js';
import { DynamicScale, TensorScaler, amaxOf, scaleFromAmax } from './scaling.js';
import type { NumericsTelemetry, TensorClass } from './telemetry.js';

/**
 * Called with every operand a quantized GEMM hands to a kernel (for tests and debugging). A float32
 * output gradient ('dy') is valid during the call only: backward recycles it afterwards, so copy
 * what you keep.
 */
export type OperandObserver = (layer: string, role: OperandRole, operand: LowpOperand) => void;

/** Block extents a class's granularity gives in a GEMM view: [blockRows, blockK]. */
function blockShape(cls: TensorClass, spec: TensorClassSpec): [number, number] {
  const scaling = spec.scaling;
  const whole = 2 ** 30;
  if (scaling.mode !== 'current') return [whole, whole];
  switch (scaling.granularity) {
    case 'tensor':
      return [whole, whole];
    case 'row':
    case 'channel':
      return [1, whole];
    case 'tile': {
      const b = scaling.block ?? 128;
      return [cls === 'weights' ? b : 1, b];
    }
    case 'mx':
      return [1, scaling.block ?? 32];
  }
}

class ClassQuantizer {
  readonly format: Format;
  readonly scaler: TensorScaler;
  readonly dynamic: DynamicScale | null;

  constructor(readonly spec: TensorClassSpec) {
    this.format = resolveFormat(spec.format);
    this.scaler = new TensorScaler(spec.scaling, this.format);
    this.dynamic = spec.scaling.mode === 'dynamic' ? new DynamicScale(spec.scaling) : null;
  }

  /** The block spec of this class in a block-scaled recipe (before its seed and observer). */
  blockSpec(cls: TensorClass): ObservedBlockSpec {
    const scaling = this.spec.scaling;
    const [blockRows, blockK] = blockShape(cls, this.spec);
    const current = scaling.mode === 'current' ? scaling : null;
    const scale = current?.scaleFormat ?? (current?.granularity === 'mx' ? 'e8m0' : current?.powerOfTwo === false ? 'fp32' : 'pow2');
    return {
      format: this.format, blockRows, blockK, scale, margin: current?.margin ?? 0,
      rounding: this.spec.rounding === 'stochastic' ? 'stochastic' : 'nearest', saturate: this.spec.saturate,
    };
  }
}

export class LayerQuantState implements QuantizationPolicy {
  readonly quantizers: Partial<Record<TensorClass, ClassQuantizer>> = {};
  readonly accumulation: LowpGemmOptions & { outer?: string; promote?: number };
  /** The recipe scales GEMM operands per block: they reach the GEMMs as float32 and are quantized there. */
  readonly blockScaled: boolean;
  /** An error overflow (or NaN) happened in this layer this step: skip its update. */
  overflow = false;
  step = 0;
  /** The numerics lab's probe of this layer, while a lab is open. */
  probe: GemmProbe | null = null;

  constructor(
    readonly name: string,
    readonly index: number,
    readonly layer: GemmLayer,
    readonly recipe: Recipe,
    readonly seed: number,
    readonly telemetry: NumericsTelemetry,
    readonly observer: OperandObserver | null,
    readonly algorithm: ConvAlgorithm,
  ) {
    const classes: [TensorClass, TensorClassSpec | null][] = [
      ['weights', recipe.weights], ['activations', recipe.activations], ['errors', recipe.errors], ['weight_gradients', recipe.weightGradients],
    ];
    for (const [cls, spec] of classes) if (spec) this.quantizers[cls] = new ClassQuantizer(spec);
    const acc = recipe.accumulation;
    this.accumulation = isFloat32Accumulation(acc.format)
      ? { accumulation: 'fp32' }
      : { accumulation: acc.format, chunk: acc.chunk || undefined, rounding: acc.rounding };
    this.blockScaled = isBlockScaled(recipe);
    if (this.blockScaled && resolveFormat(acc.outer).name !== 'float32') this.accumulation.outer = acc.outer;
    if (acc.promote > 0) this.accumulation.promote = acc.promote;
  }

  /**
   * Whether the weight gradient stays float32 (not quantized by its amax): its entries outside a
   * pruned weight's kept blocks are then read by nobody (the optimizer's masks zero them). Where it
   * is quantized, the quantized op zeroes them first (quantized_gemm.ts), so they are not read then
   * either.
   */
  get prunedGradientUnread(): boolean {
    return this.quantizers.weight_gradients === undefined;
  }

  get quantizesErrors(): boolean {
    return this.quantizers.errors !== undefined;
  }

  /** The error scale of this layer (dynamic per-layer scaling), if it has one. */
  get errorScale(): number | null {
    return this.quantizers.errors?.dynamic?.scale ?? null;
  }

  /** A stochastic-rounding seed unique to (run seed, layer, role, step), as a safe integer. */
  seedFor(role: StreamRole): number {
    return streamKey(this.seed, this.index, role) * 2 ** 20 + (this.step % 2 ** 20);
  }

  gemmOptions(pass: GemmPass): ProductOptions {
    const options: ProductOptions = { ...this.accumulation, seed: this.seedFor(pass) };
    if (this.blockScaled) options.blocks = this.blocks(pass);
    if (pass === 'weightGradient' && this.prunedGradientUnread) options.prunedGradientUnread = true;
    return options;
  }

  /**
   * The block specs of one GEMM's operands. Telemetry records each class once a step, where it
   * is first quantized: x and w in the forward, e in the weight gradient (every layer has one);
   * NaN or Inf in e flags this layer's overflow (its update is skipped).
   */
  private blocks(pass: GemmPass): ConvBlocks {
    const roles: Array<[keyof ConvBlocks, TensorClass]> = [['x', 'activations'], ['w', 'weights'], ['e', 'errors']];
    const blocks: ConvBlocks = {};
    for (const [role, cls] of roles) {
      const q = this.quantizers[cls];
      if (!q) continue;
      const spec = q.blockSpec(cls);
      spec.seed = this.seedFor(cls) + (pass === 'forward' ? 0 : pass === 'inputGradient' ? 1 : 2) * 2 ** 40;
      const records = (pass === 'forward' && role !== 'e') || (pass === 'weightGradient' && role === 'e');
      if (records) spec.observe = (coded, values) => this.recordBlocks(cls, coded, values);
      blocks[role] = spec;
    }
    return blocks;
  }

  private recordBlocks(cls: TensorClass, q: BlockQTensor, values: Float32Array): void {
    if (cls === 'errors' && q.nonFinite > 0) this.overflow = true;
    if (!this.layer.training) return;
    let scale = Infinity;
    for (const s of q.scales) scale = Math.min(scale, s);
    this.telemetry.record(this.name, cls, { amax: absMax(values), scale, values: values.length, nonzero: q.nonzero, underflow: q.underflow, overflow: q.nonFinite });
  }

  observe(role: OperandRole, operand: LowpOperand): void {
    this.observer?.(this.name, role, operand);
  }

  private spec(q: ClassQuantizer, cls: TensorClass): QuantizeSpec {
    return { format: q.format, rounding: q.spec.rounding as QuantizeSpec['rounding'], saturate: q.spec.saturate, seed: this.seedFor(cls) };
  }

  /**
   * Quantize a tensor of class `cls` with its scaling, recording telemetry; float32 classes pass
   * through. Errors under dynamic scaling flag an overflow when amax * scale would exceed the
   * format (or the gradient holds Inf/NaN); that step's codes then use the amax scale, so the
   * layers below still receive a usable gradient while this layer's update is skipped.
   */
  quantize(cls: TensorClass, x: Float32Array, pooled = false): Float32Array | QTensor {
    const q = this.quantizers[cls];
    if (!q) return x;
    // Block-scaled operands are quantized inside each GEMM, in that GEMM's view (gemmOptions).
    if (this.blockScaled && cls !== 'weight_gradients') return x;
    const amax = amaxOf(x);
    let scale: number;
    if (q.dynamic) {
      scale = q.dynamic.scale;
      const overflows = !Number.isFinite(amax) || (!q.spec.saturate && amax * scale > q.format.maxFinite);
      if (overflows) {
        this.overflow = true;
        scale = scaleFromAmax(amax, q.format, 0, true) ?? 1;
      }
    } else {
      // In evaluation (the layer not training) the scales are read, not moved on, and nothing is
      // recorded: evaluating must not change what training does next.
      scale = this.layer.training ? q.scaler.next(amax) : q.scaler.peek(amax);
    }
    const { coded, stats } = quantizeOperand(x, scale, this.spec(q, cls), amax, pooled ? takeCodes(q.format, x.length) : undefined);
    if (this.layer.training) this.telemetry.record(this.name, cls, stats);
    return coded;
  }

  /** End of step: update this layer's dynamic error scale; returns the event, if any. */
  endStep(): 'grow' | 'backoff' | null {
    const dynamic = this.quantizers.errors?.dynamic;
    const event = dynamic ? dynamic.update(this.overflow) : null;
    return event;
  }

  state(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [cls, q] of Object.entries(this.quantizers)) out[cls] = { scaler: q.scaler.state(), dynamic: q.dynamic?.state() ?? null };
    return out;
  }

  loadState(state: Record<string, unknown>): void {
    for (const [cls, q] of Object.entries(this.quantizers)) {
      const s = state[cls] as { scaler: { scale: number; history: number[] }; dynamic: { scale: number; cleanSteps: number } | null } | undefined;
      if (!s) continue;
      q.scaler.loadState(s.scaler);
      if (s.dynamic && q.dynamic) q.dynamic.loadState(s.dynamic);
    }
  }
}
