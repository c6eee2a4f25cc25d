/**
 * What a training-speed worker is asked to do, and the summary of its step profile: per op kind
 * and per layer, forward and backward, and the time outside ops, each per step.
 */
import type { Profiler } from '../autograd/index.js';
import type { Recipe } from '../quant/index.js';

export interface WorkerJob {
  model: string;
  recipe: Recipe;
  batch: number;
  /** Timed steps (the best is kept), after one untimed step. */
  steps: number;
  /** Input [C, H, W]. */
  input: [number, number, number];
  classes: number;
  /** Channels of the first stage, for models that have one; the model's default when absent. */
  width?: number;
  /** Further steps run under the profiler (0: no profile). */
  profileSteps: number;
}

/** What the worker prints (one JSON line). */
export interface WorkerResult {
  seconds_per_step: number;
  images_per_s: number;
  peak_rss_mb: number;
  saved_mb: number;
  state_mb: number;
  /** Trainable parameters of the model measured. */
  params: number;
  profile: StepProfile | null;
}

export interface ProfileKind {
  phase: 'forward' | 'backward' | 'step';
  kind: string;
  /** Milliseconds per step. */
  ms: number;
  /** Share of the profiled step's wall time. */
  share: number;
  /** Calls per step. */
  calls: number;
}

export interface ProfileLayer {
  layer: string;
  forward_ms: number;
  backward_ms: number;
}

export interface StepProfile {
  /** Steps profiled; every figure below is per step (their mean). */
  steps: number;
  /** Wall time of a profiled step (the profiler's marks included). */
  step_ms: number;
  forward_ms: number;
  backward_ms: number;
  /** Zeroing gradients, loss scaling, gradient checks and scales, the optimizer. */
  update_ms: number;
  /**
   * Time spent outside ops: between ops in the forward pass (module glue, ops that record
   * nothing), ordering the tape, gradients reaching the leaves, the update sections, and what no
   * mark covers. The ops' share is step_ms minus this.
   */
  outside_ops_ms: number;
  /** Garbage-collection pauses (already inside the figures above, wherever they struck). */
  gc_ms: number;
  /** Every (phase, op kind), largest first. */
  by_kind: ProfileKind[];
  /** Every layer (module path; '' = outside modules), forward and backward, largest first. */
  by_layer: ProfileLayer[];
}

const OUTSIDE_KINDS = new Set(['other', 'tape', 'leaf gradients']);

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

export function summarizeProfile(profiler: Profiler, steps: number, wallMs: number, gcMs: number): StepProfile {
  const entries = profiler.list();
  const per = (ms: number) => round(ms / steps);
  const stepMs = wallMs / steps;
  const phase = (p: string) => entries.filter((e) => e.phase === p).reduce((s, e) => s + e.ms, 0);
  const covered = entries.reduce((s, e) => s + e.ms, 0);
  const outside = entries.filter((e) => e.phase === 'step' || OUTSIDE_KINDS.has(e.kind)).reduce((s, e) => s + e.ms, 0) + Math.max(0, wallMs - covered);
  const byKind = profiler.totals((e) => `${e.phase}\u0000${e.kind}`).map((t) => {
    const [p, kind] = t.key.split('\u0000');
    return { phase: p as ProfileKind['phase'], kind, ms: per(t.ms), share: round(t.ms / wallMs), calls: t.calls / steps };
  });
  const layers = new Map<string, ProfileLayer>();
  for (const e of entries) {
    if (e.phase === 'step') continue;
    const l = layers.get(e.layer) ?? { layer: e.layer, forward_ms: 0, backward_ms: 0 };
    if (e.phase === 'forward') l.forward_ms += e.ms;
    else l.backward_ms += e.ms;
    layers.set(e.layer, l);
  }
  const byLayer = [...layers.values()]
    .map((l) => ({ layer: l.layer, forward_ms: per(l.forward_ms), backward_ms: per(l.backward_ms) }))
    .sort((a, b) => b.forward_ms + b.backward_ms - (a.forward_ms + a.backward_ms));
  return {
    steps,
    step_ms: round(stepMs),
    forward_ms: per(phase('forward')),
    backward_ms: per(phase('backward')),
    update_ms: per(phase('step')),
    outside_ops_ms: per(outside),
    gc_ms: per(gcMs),
    by_kind: byKind,
    by_layer: byLayer,
  };
}
