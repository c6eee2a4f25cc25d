/**
 * What AdamW and SGD share: named parameters, per-parameter state slots, master weights and
 * moments that may live in a low-precision format, and the rule that a parameter whose gradient
 * is not finite is never updated.
 *
 * Storage in a format F: after each update the stored values are rounded to F (the tensor data
 * stays float32 but holds only values of F). Master weights may use stochastic rounding; its draws
 * are keyed by (seed, parameter index, step, element), so a resumed run draws the same numbers.
 */
import { InvalidArgumentError } from '../errors.js';
import { resolveFormat, type Format, type FormatLike, type Rounding } from '../formats/index.js';
import { quantize } from '../kernels/index.js';
import type { Tensor } from '../tensor/index.js';

export interface StorageSpec {
  format: FormatLike;
  rounding?: Rounding;
}

export interface OptimizerBaseOptions {
  lr: number;
  weightDecay?: number;
  /** Format the master weights are kept in after every update (default float32: unchanged). */
  masterWeights?: StorageSpec;
  /** Format of the optimizer's moment/momentum buffers (default float32). */
  moments?: StorageSpec;
  /** Seed of the stochastic rounding of master weights. */
  seed?: number;
}

export interface OptimizerState {
  step: number;
  /** Slot buffers by `${parameterName}.${slot}`. */
  slots: Record<string, Float32Array>;
}

export interface StepReport {
  /** Names of parameters whose update was skipped (non-finite gradient or asked to skip). */
  skipped: string[];
}

interface ResolvedStorage {
  format: Format;
  rounding: Rounding;
}

function resolveStorage(spec: StorageSpec | undefined): ResolvedStorage | null {
  if (!spec) return null;
  const format = resolveFormat(spec.format);
  return format.name === 'float32' ? null : { format, rounding: spec.rounding ?? 'nearest' };
}

function finite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

export abstract class Optimizer {
  readonly params: readonly (readonly [string, Tensor])[];
  lr: number;
  readonly weightDecay: number;
  protected stepCount = 0;
  protected readonly slots = new Map<string, Float32Array>();
  private readonly master: ResolvedStorage | null;
  private readonly moments: ResolvedStorage | null;
  private readonly seed: number;

  constructor(params: readonly (readonly [string, Tensor])[], options: OptimizerBaseOptions, slotNames: readonly string[]) {
    if (!(options.lr >= 0 && Number.isFinite(options.lr))) throw new InvalidArgumentError(`optimizer: lr is ${options.lr}; expected a finite number >= 0`);
    const wd = options.weightDecay ?? 0;
    if (!(wd >= 0 && Number.isFinite(wd))) throw new InvalidArgumentError(`optimizer: weightDecay is ${wd}; expected a finite number >= 0`);
    const names = new Set<string>();
    for (const [name] of params) {
      if (names.has(name)) throw new InvalidArgumentError(`optimizer: parameter name "${name}" appears twice`);
      names.add(name);
    }
    this.params = params;
    this.lr = options.lr;
    this.weightDecay = wd;
    this.master = resolveStorage(options.masterWeights);
    this.moments = resolveStorage(options.moments);
    this.seed = options.seed ?? 0;
    for (const [name, p] of params) for (const slot of slotNames) this.slots.set(`${name}.${slot}`, new Float32Array(p.size));
    if (this.master) for (const [, p] of params) quantize(p.data, this.master.format, { rounding: 'nearest' }, p.data);
  }

  get step(): number {
    return this.stepCount;
  }

  /** The update of one parameter, in place on `param` and its slots; `t` counts from 1. */
  protected abstract update(name: string, param: Float32Array, grad: Float32Array, t: number): void;

  protected slot(name: string, slot: string): Float32Array {
    return this.slots.get(`${name}.${slot}`)!;
  }

  /** Round a moment buffer to the moments' format, if one is set. */
  protected storeMoment(values: Float32Array): void {
    if (this.moments) quantize(values, this.moments.format, { rounding: this.moments.rounding, seed: this.seed }, values);
  }

  /**
   * Apply one update to every parameter with a gradient, except those in `skip` and those whose
   * gradient holds Inf or NaN: a non-finite value never reaches the weights.
   */
  stepAll(skip: ReadonlySet<string> = new Set()): StepReport {
    this.stepCount++;
    const skipped: string[] = [];
    this.params.forEach(([name, p], index) => {
      if (!p.grad) return;
      if (skip.has(name) || !finite(p.grad.data)) {
        skipped.push(name);
        return;
      }
      this.update(name, p.data, p.grad.data, this.stepCount);
      if (this.master) {
        quantize(p.data, this.master.format, {
          rounding: this.master.rounding,
          seed: this.seed + index,
          counterOffset: (this.stepCount - 1) * p.size,
        }, p.data);
      }
    });
    return { skipped };
  }

  zeroGrad(): void {
    for (const [, p] of this.params) p.grad = null;
  }

  state(): OptimizerState {
    const slots: Record<string, Float32Array> = {};
    for (const [key, values] of this.slots) slots[key] = Float32Array.from(values);
    return { step: this.stepCount, slots };
  }

  loadState(state: OptimizerState): void {
    for (const [key, values] of this.slots) {
      const saved = state.slots[key];
      if (!saved || saved.length !== values.length) {
        throw new InvalidArgumentError(
          `optimizer state: slot ${key} is ${saved ? `${saved.length} values` : 'missing'}; expected ${values.length} values. Was the checkpoint made for another model?`,
        );
      }
      values.set(saved);
    }
    this.stepCount = state.step;
  }
}
