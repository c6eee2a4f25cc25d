/**
 * Recording: an op calls `record` with its inputs, output and whatever its gradient rule needs;
 * when gradients are enabled and an input requires them, the output gets a node pointing back at
 * its inputs. `backward` later walks these nodes in reverse topological order (the tape).
 */
import type { GradFn, Tensor } from '../tensor/index.js';

export interface GradNode<Saved = unknown> extends GradFn {
  readonly op: string;
  readonly inputs: readonly (Tensor | null)[];
  /** What the op kept for its backward pass (inputs, masks, indices, attributes). */
  readonly saved: Saved;
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

/** Attach a node to `output` when gradients are on and some input needs them. Returns output. */
export function record<Saved>(op: string, inputs: readonly (Tensor | null)[], output: Tensor, saved: Saved): Tensor {
  if (gradEnabled && inputs.some((t) => t !== null && t.requiresGrad)) {
    output.requiresGrad = true;
    output.gradFn = { op, inputs, saved } as GradNode<Saved>;
  }
  return output;
}

/** Whether an op needs to keep anything for backward at all. */
export function needsGrad(...inputs: (Tensor | null)[]): boolean {
  return gradEnabled && inputs.some((t) => t !== null && t.requiresGrad);
}
