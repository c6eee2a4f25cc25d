/**
 * Numerics telemetry: per layer and tensor class, over a logging interval, the last amax and
 * scale, the fraction of nonzero values that underflowed to zero, the fraction that saturated or
 * overflowed (|x * scale| above the format's max finite), and per layer the skipped steps and
 * scale changes. This is what shows why per-layer gradient scaling matters.
 */

import type { OperandClass } from '../ops/index.js';

/** The tensor classes a recipe names: a GEMM layer's operands. */
export type TensorClass = OperandClass;

/** What quantizing one tensor found. */
export interface OperandStats {
  amax: number;
  scale: number;
  values: number;
  nonzero: number;
  underflow: number;
  overflow: number;
}

export interface NumericsRecord {
  /** Last step of the interval. */
  step: number;
  layer: string;
  tensor: TensorClass;
  amax: number;
  scale: number;
  /** Underflowed / nonzero values over the interval. */
  underflow: number;
  /** Saturated or overflowed / all values over the interval. */
  overflow: number;
}

export interface LayerEventRecord {
  step: number;
  layer: string;
  event: 'skip' | 'grow' | 'backoff';
  /** The layer's error scale (or the loss scale, for layer "(loss)") after the event. */
  scale: number;
}

/** Counts summed over an interval; amax and scale are the last seen. */
type Accumulated = OperandStats;

export interface TelemetryState {
  current: [string, Accumulated][];
  events: LayerEventRecord[];
}

export class NumericsTelemetry {
  private readonly current = new Map<string, Accumulated>();
  private events: LayerEventRecord[] = [];

  record(layer: string, tensor: TensorClass, stats: OperandStats): void {
    const key = `${layer}\u0000${tensor}`;
    const acc = this.current.get(key) ?? { amax: 0, scale: 1, values: 0, nonzero: 0, underflow: 0, overflow: 0 };
    acc.amax = stats.amax;
    acc.scale = stats.scale;
    acc.values += stats.values;
    acc.nonzero += stats.nonzero;
    acc.underflow += stats.underflow;
    acc.overflow += stats.overflow;
    this.current.set(key, acc);
  }

  event(step: number, layer: string, event: LayerEventRecord['event'], scale: number): void {
    this.events.push({ step, layer, event, scale });
  }

  /** The interval so far (checkpointed, so that a resumed run logs the interval an uninterrupted one would). */
  state(): TelemetryState {
    return { current: [...this.current].map(([key, a]) => [key, { ...a }]), events: this.events.map((e) => ({ ...e })) };
  }

  loadState(state: TelemetryState): void {
    this.current.clear();
    for (const [key, a] of state.current) this.current.set(key, { ...a });
    this.events = state.events.map((e) => ({ ...e }));
  }

  /** The interval's records (one per layer and tensor class seen) and events; starts a new interval. */
  flush(step: number): { records: NumericsRecord[]; events: LayerEventRecord[] } {
    const records: NumericsRecord[] = [];
    for (const [key, a] of this.current) {
      const [layer, tensor] = key.split('\u0000') as [string, TensorClass];
      records.push({
        step,
        layer,
        tensor,
        amax: a.amax,
        scale: a.scale,
        underflow: a.nonzero ? a.underflow / a.nonzero : 0,
        overflow: a.values ? a.overflow / a.values : 0,
      });
    }
    const events = this.events;
    this.current.clear();
    this.events = [];
    return { records, events };
  }
}
