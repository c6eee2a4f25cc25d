/**
 * Recording: an op calls `record` with its inputs, output and whatever its gradient rule needs;
 * when gradients are enabled and an input requires them, the output gets a node pointing back at
 * its inputs' handles. `backward` later walks these nodes in reverse topological order (the tape).
 *
 * A node refers to its inputs through their handles (shape, requiresGrad, gradFn), not to the
 * tensors, so the graph does not keep any values alive: a gradient rule can use only what its op
 * put in `saved`. An op that needs an input's values saves that input's data; an op that needs
 * less (a ReLU's sign mask, a quantized GEMM's 8-bit codes) saves only that, and the float32
 * activation is freed once the forward pass no longer uses it.
 */
import type { CodeArray } from '../formats/index.js';
import type { GradFn, GradHandle, Tensor } from '../tensor/index.js';
import { activeProfiler } from './profile.js';

export interface GradNode<Saved = unknown> extends GradFn {
  readonly op: string;
  readonly inputs: readonly (GradHandle | null)[];
  /** What the op kept for its backward pass (input values, masks, indices, attributes). */
  readonly saved: Saved;
  /**
   * Arrays in `saved` that the op allocated itself and nothing else refers to: the backward pass
   * recycles them once the rule has run (unless the graph is kept for another pass).
   */
  readonly owned?: readonly (Float32Array | CodeArray)[];
  /** The module path that recorded the node, while a profiler runs (see profile.ts). */
  readonly scope?: string;
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run `fn` without recording gradients (evaluation, optimizer updates). Synchronous only. */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/**
 * Attach a node to `output` when gradients are on and some input needs them. Returns output.
 * `owned` lists arrays of `saved` that only the node refers to (see GradNode.owned).
 */
export function record<Saved>(op: string, inputs: readonly (Tensor | null)[], output: Tensor, saved: Saved, owned?: readonly (Float32Array | CodeArray)[]): Tensor {
  const profiler = activeProfiler();
  if (gradEnabled && inputs.some((t) => t !== null && t.requiresGrad)) {
    output.requiresGrad = true;
    output.gradFn = { op, inputs: inputs.map((t) => t?.handle ?? null), saved, owned, scope: profiler?.scope() } as GradNode<Saved>;
  }
  profiler?.forwardOp(op);
  return output;
}

/** Whether an op needs to keep anything for backward at all. */
export function needsGrad(...inputs: (Tensor | null)[]): boolean {
  return gradEnabled && inputs.some((t) => t !== null && t.requiresGrad);
}
