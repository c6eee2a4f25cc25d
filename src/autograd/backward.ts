/**
 * Reverse-mode differentiation: order the recorded nodes reachable from the output (the tape),
 * then run each node's gradient rule from the output back to the leaves, summing the gradients
 * of tensors used more than once. Leaves that require gradients receive them in `.grad`
 * (accumulated across calls, as optimizers expect; zero them between steps).
 */
import { InvalidArgumentError } from '../errors.js';
import { Tensor, formatShape, type GradHandle } from '../tensor/index.js';
import { addArrays, markBackward, recycle, takeBuffer } from '../kernels/index.js';
import { releasingActivations, savedArrays, type GradNode } from './graph.js';
import { activeProfiler } from './profile.js';
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
  /**
   * Hand the graph's activations back to the buffer pool as soon as the last gradient rule that
   * reads them has run (the input values a convolution or a linear layer kept), so that the next
   * forward pass takes them instead of mapping fresh memory. The caller's promise: no tensor that
   * a recorded op computed on the way to the output is read after this call (the output of the
   * graph and any tensor no gradient rule kept are never recycled; parameters and input data
   * never are). Default: on inside withActivationRelease (the same promise), off elsewhere.
   * Ignored with retainGraph. Values are unchanged either way.
   */
  releaseActivations?: boolean;
}

/**
 * How many nodes of the tape borrowed each activation (by buffer), leaving out the buffers that
 * some node keeps without having declared them (a view, a copy of the reference in a structure
 * of its own): those are never recycled.
 */
function borrowCounts(order: readonly GradHandle[]): Map<ArrayBufferLike, number> {
  const counts = new Map<ArrayBufferLike, number>();
  const pinned = new Set<ArrayBufferLike>();
  for (const t of order) {
    const node = t.gradFn as GradNode | null;
    if (!node) continue;
    for (const a of node.borrowed ?? []) counts.set(a.buffer, (counts.get(a.buffer) ?? 0) + 1);
    const found = new Set<ArrayBufferView>();
    savedArrays(node.saved, found);
    for (const a of node.borrowed ?? []) found.delete(a);
    for (const a of node.owned ?? []) found.delete(a);
    for (const a of found) pinned.add(a.buffer);
  }
  for (const b of pinned) counts.delete(b);
  return counts;
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
  // The forward pass is over: what it took from the buffer pool is its demand (buffer_pool.ts).
  markBackward();
  const grads = new Map<GradHandle, Float32Array>([[output.handle, seed]]);
  const profiler = activeProfiler();
  let mark = profiler ? performance.now() : 0;
  const order = tape(output);
  if (profiler) {
    const now = performance.now();
    profiler.add('backward', 'tape', '', now - mark);
    mark = now;
  }
  // Without retainGraph every intermediate gradient is dead once its op's rule has run and its
  // inputs have taken what they need: such arrays go back to the buffer pool. A rule may return
  // `g` itself, or views of it, and may even have written into it (g is this op's alone).
  const recycling = !options.retainGraph;
  const borrowers = recycling && (options.releaseActivations ?? releasingActivations()) ? borrowCounts(order) : null;
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t);
    if (!g) continue;
    const node = t.gradFn as GradNode | null;
    if (!node) {
      if (t.grad) {
        addArrays(t.grad.data, g, t.grad.data);
        if (recycling) recycle(g);
      } else {
        t.grad = new Tensor(g, t.shape);
      }
      if (profiler) {
        const now = performance.now();
        profiler.add('backward', 'leaf gradients', '', now - mark);
        mark = now;
      }
      continue;
    }
    const inputGrads = gradientRule(node.op)(node, g, t);
    if (recycling) for (const a of node.owned ?? []) recycle(a);
    if (borrowers) {
      for (const a of node.borrowed ?? []) {
        const left = borrowers.get(a.buffer);
        if (left === undefined) continue;
        if (left > 1) borrowers.set(a.buffer, left - 1);
        else {
          borrowers.delete(a.buffer);
          recycle(a);
        }
      }
    }
    // Buffers now held by some input's pending gradient: neither recycled nor handed out twice.
    const held = new Set<ArrayBufferLike>();
    const passed: Float32Array[] = [];
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
        addArrays(existing, gi, existing);
        passed.push(gi);
      } else if (held.has(gi.buffer) || (!recycling && gi === g)) {
        // The same array for two inputs (or, when the graph is kept, this op's own gradient): a copy.
        const copy = takeBuffer(gi.length);
        copy.set(gi);
        grads.set(input, copy);
      } else {
        grads.set(input, gi);
        held.add(gi.buffer);
      }
    });
    grads.delete(t);
    if (recycling) {
      if (!held.has(g.buffer)) recycle(g);
      for (const gi of passed) if (gi.buffer !== g.buffer && !held.has(gi.buffer)) recycle(gi);
    }
    if (!options.retainGraph) t.gradFn = null;
    if (profiler) {
      const now = performance.now();
      profiler.add('backward', node.op, node.scope ?? '', now - mark);
      mark = now;
    }
  }
}
