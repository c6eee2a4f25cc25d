/**
 * What AdamW and SGD share: named parameters, per-parameter state slots, master weights and
 * moments that may live in a low-precision format, and the rule that a parameter whose gradient
 * is not finite is never updated.
 *
 * Storage in a format F: after each update the stored values are rounded to F. Master weights
 * stay in the parameter's float32 array (holding only values of F); moments in a format of 16
 * bits or fewer are kept as its codes (2 or 1 bytes per element instead of 4), decoded for each
 * update and encoded again after it. Stochastic rounding draws are keyed by (seed, parameter,
 * slot, step, element), so a resumed run draws the same numbers.
 */
import { InvalidArgumentError } from '../errors.js';
import { resolveFormat, streamSeed, type Format, type FormatLike, type Rounding } from '../formats/index.js';
import { absMax, decode, encode, quantize, recycle, takeBuffer, zeroWhere } from '../kernels/index.js';
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

export interface StepOptions {
  /**
   * Per-element keep masks by parameter name (a pruner's, Pruner.elementMasks): the update may
   * skip the entries where the mask is 0, leaving them and their slots as they were. Only for
   * callers that zero those entries after the step (Pruner.enforce): the result is then the same
   * as a full update followed by the zeroing.
   */
  keep?: ReadonlyMap<string, Uint8Array>;
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

/** A slot as stored: float32 values, or codes of the moments' format. */
type SlotStorage = Float32Array | Uint8Array | Uint16Array;

/** Whether every value is finite (absMax is NaN exactly when one is Inf or NaN). */
function finite(values: Float32Array): boolean {
  return !Number.isNaN(absMax(values));
}

export abstract class Optimizer {
  readonly params: readonly (readonly [string, Tensor])[];
  lr: number;
  readonly weightDecay: number;
  protected stepCount = 0;
  /** Each slot as stored, and its position among all slots (its stochastic-rounding stream). */
  private readonly slots = new Map<string, { stored: SlotStorage; index: number }>();
  private readonly master: ResolvedStorage | null;
  private readonly moments: ResolvedStorage | null;
  private readonly seed: number;
  /** The values `slot` handed out for the update in progress -> their slot key. */
  private readonly open = new Map<Float32Array, string>();

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
    // Moments of at most 16 bits are kept as codes; zero is code 0 in every format.
    const bytes = this.moments && this.moments.format.storageBytes <= 2 ? this.moments.format.storageBytes : 4;
    const allocate = (n: number): SlotStorage => (bytes === 4 ? new Float32Array(n) : bytes === 2 ? new Uint16Array(n) : new Uint8Array(n));
    for (const [name, p] of params) for (const slot of slotNames) this.slots.set(`${name}.${slot}`, { stored: allocate(p.size), index: this.slots.size });
    if (this.master) for (const [, p] of params) quantize(p.data, this.master.format, { rounding: 'nearest' }, p.data);
  }

  get step(): number {
    return this.stepCount;
  }

  /** The update of one parameter, in place on `param` and its slots; `t` counts from 1. */
  /**
   * `keep` (from stepAll's options): where it is 0 the update may leave the parameter and its
   * slots as they are (a pruned weight's entries, which the pruner sets to 0 after the step).
   */
  protected abstract update(name: string, param: Float32Array, grad: Float32Array, t: number, keep?: Uint8Array): void;

  /**
   * The values of one slot for the update in progress: the stored array itself, or the codes
   * decoded into a working array that `storeMoment` writes back.
   */
  protected slot(name: string, slot: string): Float32Array {
    const key = `${name}.${slot}`;
    const { stored } = this.slots.get(key)!;
    const values = stored instanceof Float32Array ? stored : decode(stored, this.moments!.format, takeBuffer(stored.length));
    this.open.set(values, key);
    return values;
  }

  /**
   * Round a moment buffer (from `slot`) to the moments' format, if one is set, and store it: the
   * working values keep the rounded values for the rest of the update.
   */
  protected storeMoment(values: Float32Array): void {
    if (!this.moments) return;
    const key = this.open.get(values);
    if (key === undefined) throw new InvalidArgumentError('optimizer: storeMoment takes an array returned by slot()');
    const { stored, index } = this.slots.get(key)!;
    const { format, rounding } = this.moments;
    quantize(values, format, { rounding, seed: streamSeed(this.seed, index), counterOffset: (this.stepCount - 1) * values.length }, values);
    if (!(stored instanceof Float32Array)) encode(values, format, {}, stored);
  }

  /** Whether the moments are rounded to a format of their own when stored (storeMoment does work). */
  protected storesMoments(): boolean {
    return this.moments !== null;
  }

  /** Bytes the optimizer's slots (moments, momentum) take. */
  stateBytes(): number {
    let bytes = 0;
    for (const { stored } of this.slots.values()) bytes += stored.byteLength;
    return bytes;
  }

  /**
   * Apply one update to every parameter with a gradient, except those in `skip` and those whose
   * gradient holds Inf or NaN: a non-finite value never reaches the weights.
   */
  stepAll(skip: ReadonlySet<string> = new Set(), options: StepOptions = {}): StepReport {
    this.stepCount++;
    const skipped: string[] = [];
    this.params.forEach(([name, p], index) => {
      if (!p.grad) return;
      if (skip.has(name) || !finite(p.grad.data)) {
        skipped.push(name);
        return;
      }
      try {
        this.update(name, p.data, p.grad.data, this.stepCount, options.keep?.get(name));
      } finally {
        // Working arrays of coded slots (already stored by storeMoment) go back to the pool.
        for (const [values, key] of this.open) if (values !== this.slots.get(key)!.stored) recycle(values);
        this.open.clear();
      }
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

  /**
   * Zero a parameter's slots (moments, momentum) where `keep` is 0: pruned weights keep no
   * state. Zero is code 0 in every moments format.
   */
  zeroSlotsWhere(name: string, keep: Uint8Array): void {
    for (const [key, { stored }] of this.slots) {
      if (!key.startsWith(`${name}.`) || key.slice(name.length + 1).includes('.')) continue;
      if (keep.length !== stored.length) throw new InvalidArgumentError(`optimizer: the mask for ${name} has ${keep.length} entries; its slots ${stored.length}`);
      zeroWhere(stored, keep);
    }
  }

  /**
   * Drop every parameter's gradient. With `release`, their arrays go back to the buffer pool, for
   * the next backward pass to take instead of fresh memory (on these machines a fresh page costs
   * about a microsecond at first touch): the caller's promise that nothing reads them afterwards.
   */
  zeroGrad(options: { release?: boolean } = {}): void {
    for (const [, p] of this.params) {
      if (options.release && p.grad) recycle(p.grad.data);
      p.grad = null;
    }
  }

  /** Slots as float32 values (decoded where they are kept as codes). */
  state(): OptimizerState {
    const slots: Record<string, Float32Array> = {};
    for (const [key, { stored }] of this.slots) slots[key] = stored instanceof Float32Array ? Float32Array.from(stored) : decode(stored, this.moments!.format);
    return { step: this.stepCount, slots };
  }

  loadState(state: OptimizerState): void {
    for (const [key, { stored }] of this.slots) {
      const saved = state.slots[key];
      if (!saved || saved.length !== stored.length) {
        throw new InvalidArgumentError(
          `optimizer state: slot ${key} is ${saved ? `${saved.length} values` : 'missing'}; expected ${stored.length} values. Was the checkpoint made for another model?`,
        );
      }
      if (stored instanceof Float32Array) stored.set(saved);
      else encode(saved, this.moments!.format, {}, stored);
    }
    this.stepCount = state.step;
  }
}
