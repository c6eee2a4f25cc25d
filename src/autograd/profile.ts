/**
 * A step profiler: where the time of a training step goes, by phase, op kind and layer.
 *
 * While a profiler is active (`profiled`), three hooks feed it:
 * - the forward pass: every module's `call` marks where the module starts and ends (`enterScope`,
 *   `exitScope`), and every op that records a gradient node marks where it ends (`forwardOp`, from
 *   `record`). The time between two marks goes to the op that ends it, in the innermost module
 *   running then (its dotted path); time between marks that no op ends (a module's own glue, ops
 *   that record nothing) goes to kind `other` in that module. So the forward entries add up to the
 *   forward pass's time, nothing counted twice.
 * - the backward pass: each gradient rule, with the freeing and the summing of gradients that
 *   follow it, goes to the op's kind and the layer that recorded it (the scope saved on the node);
 *   ordering the tape and gradients reaching leaves go to `tape` and `leaf gradients`.
 * - anything else the caller wraps in `section(phase, kind, fn)`: the loss scaling, the optimizer.
 *
 * When no profiler is active the hooks cost one null check. Times are wall-clock milliseconds
 * from `performance.now()`; garbage collection pauses land in whatever ran when they struck.
 */
export type ProfilePhase = 'forward' | 'backward' | 'step';

export interface ProfileEntry {
  phase: ProfilePhase;
  /** Op name (`conv2d`, `batch_norm`...), `other` for time between ops, or a section's name. */
  kind: string;
  /** Dotted module path ('' outside any module, or for whole-step sections). */
  layer: string;
  ms: number;
  calls: number;
}

interface Frame {
  layer: string;
}

export class Profiler {
  private readonly entries = new Map<string, ProfileEntry>();
  private readonly paths: Map<object, string>;
  private readonly frames: Frame[] = [];
  /** Time of the last forward mark; 0 outside a forward pass (between startForward and endForward). */
  private mark = 0;

  /** `paths`: each module of the model with its dotted path (from `namedModules()`). */
  constructor(paths: Iterable<readonly [string, object]> = []) {
    this.paths = new Map([...paths].map(([path, module]) => [module, path] as [object, string]));
  }

  add(phase: ProfilePhase, kind: string, layer: string, ms: number, calls = 1): void {
    const key = `${phase}\u0000${kind}\u0000${layer}`;
    const entry = this.entries.get(key);
    if (entry) {
      entry.ms += ms;
      entry.calls += calls;
    } else {
      this.entries.set(key, { phase, kind, layer, ms, calls });
    }
  }

  /** The innermost running module's path ('' outside modules). */
  scope(): string {
    return this.frames.length ? this.frames[this.frames.length - 1].layer : '';
  }

  private flush(kind: string, calls: number): void {
    if (!this.mark) return;
    const now = performance.now();
    this.add('forward', kind, this.scope(), now - this.mark, calls);
    this.mark = now;
  }

  /** Start of the forward pass (the first mark); marks outside start/end count nothing. */
  startForward(): void {
    this.mark = performance.now();
  }

  /** End of the forward pass (the loss included): the time since the last mark is the outermost scope's. */
  endForward(): void {
    this.flush('other', 0);
    this.mark = 0;
  }

  enterScope(module: object): void {
    this.flush('other', 0);
    this.frames.push({ layer: this.paths.get(module) ?? module.constructor.name });
  }

  exitScope(): void {
    this.flush('other', 0);
    this.frames.pop();
  }

  forwardOp(op: string): void {
    this.flush(op, 1);
  }

  /** Run `fn`, its time going to (phase, kind, layer). */
  section<T>(phase: ProfilePhase, kind: string, fn: () => T, layer = ''): T {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      this.add(phase, kind, layer, performance.now() - t0);
    }
  }

  /** Every entry, largest first. */
  list(): ProfileEntry[] {
    return [...this.entries.values()].sort((a, b) => b.ms - a.ms);
  }

  /** Sum of entries' ms grouped by `key`, largest first. */
  totals(key: (e: ProfileEntry) => string): { key: string; ms: number; calls: number }[] {
    const out = new Map<string, { key: string; ms: number; calls: number }>();
    for (const e of this.entries.values()) {
      const k = key(e);
      const t = out.get(k) ?? { key: k, ms: 0, calls: 0 };
      t.ms += e.ms;
      t.calls += e.calls;
      out.set(k, t);
    }
    return [...out.values()].sort((a, b) => b.ms - a.ms);
  }
}

let active: Profiler | null = null;

/** The profiler now collecting, or null (the hooks' null check). */
export function activeProfiler(): Profiler | null {
  return active;
}

/** Run `fn` with `profiler` collecting. Synchronous only. */
export function profiled<T>(profiler: Profiler, fn: () => T): T {
  const previous = active;
  active = profiler;
  try {
    return fn();
  } finally {
    active = previous;
  }
}

