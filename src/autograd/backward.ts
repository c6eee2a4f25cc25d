/**
 * Reverse-mode differentiation: order the recorded nodes reachable from the output (the tape),
 * then run each node's gradient rule from the output back to the leaves, summing the gradients
 * of tensors used more than once. Leaves that require gradients receive them in `.grad`
 * (accumulated across calls, as optimizers expect; zero them between steps).
 */
import { InvalidArgumentError } from '../errors.js';
import { Tensor, formatShape, type GradHandle } from '../tensor/index.js';
import type { GradNode } from './graph.js';
import { gradientRule } from './registry.js';

/** Handles of the tensors reachable from `root` through recorded nodes, inputs before the ops that use them. */
export function tape(root: Tensor): GradHandle[] {
  const order: GradHandle[] = [];
  const visited = new Set<GradHandle>();
  const stack: Array<[GradHandle, boolean]> = [[root.handle, false]];
  while (stack.length) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (visited.has(t)) continue;
    visited.add(t);
    stack.push([t, true]);
    for (const input of t.gradFn?.inputs ?? []) {
      if (input && input.requiresGrad && !visited.has(input)) stack.push([input, false]);
    }
  }
  return order;
}

export interface BackwardOptions {
  /** Gradient of the output (default: 1 for a one-element output). */
  gradient?: Tensor;
  /** Keep the recorded nodes so backward can run again through them. */
  retainGraph?: boolean;
}

export function backward(output: Tensor, options: BackwardOptions = {}): void {
  if (!output.requiresGrad) {
    throw new InvalidArgumentError(
      'backward: the output does not require gradients; mark the parameters with requireGrad() and compute it with gradients enabled (not inside noGrad)',
    );
  }
  let seed: Float32Array;
  if (options.gradient) {
    if (options.gradient.size !== output.size) {
      throw new InvalidArgumentError(
        `backward: gradient has shape ${formatShape(options.gradient.shape)}; expected the output's shape ${formatShape(output.shape)}`,
      );
    }
    seed = Float32Array.from(options.gradient.data);
  } else {
    if (output.size !== 1) {
      throw new InvalidArgumentError(
        `backward: the output has shape ${formatShape(output.shape)}; pass options.gradient for an output of more than one element`,
      );
    }
    seed = Float32Array.of(1);
  }
  const grads = new Map<GradHandle, Float32Array>([[output.handle, seed]]);
  const order = tape(output);
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t);
    if (!g) continue;
    const node = t.gradFn as GradNode | null;
    if (!node) {
      if (t.grad) {
        const acc = t.grad.data;
        for (let j = 0; j < acc.length; j++) acc[j] += g[j];
      } else {
        t.grad = new Tensor(g, t.shape);
      }
      continue;
    }
    const inputGrads = gradientRule(node.op)(node, g, t);
    node.inputs.forEach((input, k) => {
      const gi = inputGrads[k];
      if (!input || !input.requiresGrad || !gi) return;
      if (gi.length !== input.size) {
        throw new InvalidArgumentError(
          `internal error: gradient rule of "${node.op}" returned ${gi.length} values for input ${k} of shape ${formatShape(input.shape)}`,
        );
      }
      const existing = grads.get(input);
      if (existing) {
        for (let j = 0; j < existing.length; j++) existing[j] += gi[j];
      } else {
        // Copy when the rule returned an array it may reuse (its own gradOutput, say).
        grads.set(input, gi === g ? Float32Array.from(gi) : gi);
      }
    });
    grads.delete(t);
    if (!options.retainGraph) t.gradFn = null;
  }
}
