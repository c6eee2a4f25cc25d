/**
 * Scales for quantizing a tensor: the value stored is x * scale, so scale = max finite / amax
 * uses the format's whole range ("divide by max").
 *
 * Safety: a scale is always a finite positive float32 power of two or ratio within
 * [2^-100, 2^100]; an amax far below the format's tiny values gets the largest scale, not Inf.
 * An all-zero tensor or a non-finite amax keeps the previous scale (1 at the start): never NaN,
 * never Inf.
 */
import type { Format } from '../formats/index.js';
import { absMax } from '../kernels/index.js';
import type { LossScalingSpec, ScalingSpec } from './recipe.js';

const MIN_SCALE = 2 ** -100;
const MAX_SCALE = 2 ** 100;

/** max|x|, or NaN if x holds a NaN or an Inf (so callers can tell). */
export function amaxOf(x: Float32Array): number {
  return absMax(x);
}

/** scale = maxFinite / (amax * 2^margin), optionally rounded down to a power of two; null for a zero or non-finite amax. */
export function scaleFromAmax(amax: number, format: Format, margin: number, powerOfTwo: boolean): number | null {
  if (!(Number.isFinite(amax) && amax > 0)) return null;
  let s = format.maxFinite / (amax * 2 ** margin);
  if (powerOfTwo) s = 2 ** Math.floor(Math.log2(s));
  return Math.min(MAX_SCALE, Math.max(MIN_SCALE, Math.fround(s)));
}

/** Per-tensor scaling of one tensor class of one layer: current or delayed (amax history), or none. */
export class TensorScaler {
  private readonly history: number[] = [];
  scale = 1;

  constructor(readonly spec: ScalingSpec, readonly format: Format) {}

  /** The scale to quantize with this step, given this step's amax; records amax in the history. */
  next(amax: number): number {
    const spec = this.spec;
    if (spec.mode === 'none' || spec.mode === 'dynamic') return this.scale;
    let basis = amax;
    if (spec.mode === 'delayed') {
      basis = this.history.length ? Math.max(...this.history) : amax;
      if (Number.isFinite(amax)) {
        this.history.push(amax);
        if (this.history.length > spec.history) this.history.shift();
      }
    }
    this.scale = scaleFromAmax(basis, this.format, spec.margin, spec.powerOfTwo) ?? this.scale;
    return this.scale;
  }

  /** The scale next(amax) would give, leaving the scaler as it is (evaluation must not move training's scales). */
  peek(amax: number): number {
    const spec = this.spec;
    if (spec.mode === 'none' || spec.mode === 'dynamic') return this.scale;
    const basis = spec.mode === 'delayed' && this.history.length ? Math.max(...this.history) : amax;
    return scaleFromAmax(basis, this.format, spec.margin, spec.powerOfTwo) ?? this.scale;
  }

  state(): { scale: number; history: number[] } {
    return { scale: this.scale, history: [...this.history] };
  }

  loadState(state: { scale: number; history: number[] }): void {
    this.scale = state.scale;
    this.history.splice(0, this.history.length, ...state.history);
  }
}

/** Settings of a dynamic scale (per-layer gradient scaling or dynamic loss scaling). */
export interface DynamicSpec {
  init: number;
  growthInterval: number;
  growthFactor: number;
  backoffFactor: number;
}

export type ScaleEvent = 'grow' | 'backoff' | null;

/**
 * A dynamic scale: grows by growthFactor after growthInterval clean steps in a row, backs off by
 * backoffFactor on a step with an overflow. Clamped to [2^-100, 2^100].
 */
export class DynamicScale {
  scale: number;
  cleanSteps = 0;

  constructor(readonly spec: DynamicSpec) {
    this.scale = spec.init;
  }

  /** Record one step's outcome; returns what changed. */
  update(overflow: boolean): ScaleEvent {
    if (overflow) {
      this.scale = Math.max(MIN_SCALE, this.scale * this.spec.backoffFactor);
      this.cleanSteps = 0;
      return 'backoff';
    }
    this.cleanSteps++;
    if (this.cleanSteps >= this.spec.growthInterval) {
      this.cleanSteps = 0;
      const grown = Math.min(MAX_SCALE, this.scale * this.spec.growthFactor);
      const changed = grown !== this.scale;
      this.scale = grown;
      return changed ? 'grow' : null;
    }
    return null;
  }

  state(): { scale: number; cleanSteps: number } {
    return { scale: this.scale, cleanSteps: this.cleanSteps };
  }

  loadState(state: { scale: number; cleanSteps: number }): void {
    this.scale = state.scale;
    this.cleanSteps = state.cleanSteps;
  }
}

/** The global loss scale: none (1), static, or dynamic. */
export class LossScaler {
  private readonly dynamic: DynamicScale | null;
  private readonly fixed: number;

  constructor(readonly spec: LossScalingSpec) {
    this.dynamic = spec.mode === 'dynamic' ? new DynamicScale(spec) : null;
    this.fixed = spec.mode === 'static' ? spec.scale : 1;
  }

  get scale(): number {
    return this.dynamic ? this.dynamic.scale : this.fixed;
  }

  /** After a step: `overflow` if any gradient was non-finite. Static scales never change. */
  update(overflow: boolean): ScaleEvent {
    return this.dynamic ? this.dynamic.update(overflow) : null;
  }

  state(): { scale: number; cleanSteps: number } {
    return this.dynamic ? this.dynamic.state() : { scale: this.fixed, cleanSteps: 0 };
  }

  loadState(state: { scale: number; cleanSteps: number }): void {
    this.dynamic?.loadState(state);
  }
}
