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
import { markForward, recycle } from '../kernels/index.js';
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
  /**
   * Arrays in `saved` that are the values of inputs computed by recorded ops (activations, not
   * parameters or data): a backward pass asked to release the graph's activations (BackwardOptions
   * .releaseActivations) recycles such an array once every node that borrowed it has run.
   */
  readonly borrowed?: readonly Float32Array[];
  /** The module path that recorded the node, while a profiler runs (see profile.ts). */
  readonly scope?: string;
}

let gradEnabled = true;

/**
 * Arrays of parameters and data that recorded ops passed on as their outputs' values (a weight
 * tapped by the numerics lab, a reshaped input): outputs of recorded ops, but not activations.
 */
const notActivations = new WeakSet<ArrayBufferLike>();

/** Whether chains of modules hand back their dead intermediates (withActivationRelease). */
let releasing = false;
/** Arrays some recorded node keeps (scanned while releasing): never handed back in the forward pass. */
let keptBySomeNode = new WeakSet<ArrayBufferLike>();

/**
 * Arrays that ops allocated for their outputs while no graph was recorded (evaluation under
 * noGrad inside withActivationRelease): the intermediates dropIntermediate may hand back there,
 * where no output has a node to tell it from the caller's data.
 */
let producedUnrecorded = new WeakSet<ArrayBufferLike>();

/** Typed arrays reachable from a node's saved values (objects and arrays, three levels deep). */
export function savedArrays(value: unknown, found: Set<ArrayBufferView>, depth = 0, seen = new Set<object>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (ArrayBuffer.isView(value)) {
    found.add(value);
    return;
  }
  if (depth >= 3) return;
  for (const v of Array.isArray(value) ? value : Object.values(value)) savedArrays(v, found, depth + 1, seen);
}

/**
 * Run a training step's forward (and backward) pass with the dead intermediates of module chains
 * handed back to the buffer pool as the pass goes (see dropIntermediate): the caller's promise,
 * as for BackwardOptions.releaseActivations, that it reads no tensor computed inside the model
 * other than its output, and that the model's modules keep none for later. Values are unchanged.
 */
export function withActivationRelease<T>(fn: () => T): T {
  const previous = releasing;
  releasing = true;
  if (!previous) {
    keptBySomeNode = new WeakSet();
    producedUnrecorded = new WeakSet();
    // A pass begins: the buffer pool keeps what the last step took (src/kernels/buffer_pool.ts).
    markForward();
  }
  try {
    return fn();
  } finally {
    releasing = previous;
  }
}

/** Whether withActivationRelease is running: ops may then take what they keep from the buffer pool too. */
export function releasingActivations(): boolean {
  return releasing;
}

/**
 * In a chain of modules (a Sequential, a residual block) after `next` was computed from `prev`:
 * while withActivationRelease runs, prev's array goes back to the buffer pool when it is a dead
 * intermediate: computed by a recorded op (or, with no graph recorded, in an array an op allocated
 * for its output), not the chain's `input`, not shared with `next` (an
 * in-place layer, a view), not a parameter's or data's, and kept by no recorded node (a float32
 * convolution's saved input waits for the backward pass instead). Otherwise nothing happens.
 */
export function dropIntermediate(prev: Tensor, next: Tensor, input: Tensor): void {
  if (!releasing || prev === input) return;
  const buffer = prev.data.buffer;
  if (prev.gradFn === null && !producedUnrecorded.has(buffer)) return;
  if (buffer === input.data.buffer || buffer === next.data.buffer || notActivations.has(buffer) || keptBySomeNode.has(buffer)) return;
  recycle(prev.data);
}

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
 * `owned` lists arrays of `saved` that only the node refers to (see GradNode.owned); `borrowed`,
 * arrays of `saved` that are some input's values: those of inputs that recorded ops computed are
 * kept as the node's borrowed arrays (see GradNode.borrowed), the others (parameters, data, and
 * views of them) never are.
 */
export function record<Saved>(
  op: string,
  inputs: readonly (Tensor | null)[],
  output: Tensor,
  saved: Saved,
  owned?: readonly (Float32Array | CodeArray)[],
  borrowed?: readonly (Float32Array | null | undefined)[],
): Tensor {
  const profiler = activeProfiler();
  const recording = gradEnabled && inputs.some((t) => t !== null && t.requiresGrad);
  if (releasing && !recording) {
    // An output in an array of its own, or over an input that was such an output (an in-place op).
    const over = inputs.find((t) => t !== null && t.data.buffer === output.data.buffer);
    if (!over || producedUnrecorded.has(over.data.buffer)) producedUnrecorded.add(output.data.buffer);
  }
  if (recording) {
    output.requiresGrad = true;
    for (const t of inputs) {
      // An output over an input's array (a view, an identity tap, an in-place op): when that array
      // is a parameter's or data's (or already such an alias), so is the output's.
      if (t && t.data.buffer === output.data.buffer && (t.gradFn === null || notActivations.has(t.data.buffer))) notActivations.add(t.data.buffer);
    }
    const activations = borrowed?.filter(
      (a): a is Float32Array => !!a && !notActivations.has(a.buffer) && inputs.some((t) => t !== null && t.data === a && t.gradFn !== null),
    );
    if (releasing) {
      const found = new Set<ArrayBufferView>();
      savedArrays(saved, found);
      for (const a of found) keptBySomeNode.add(a.buffer);
    }
    output.gradFn = {
      op,
      inputs: inputs.map((t) => t?.handle ?? null),
      saved,
      owned,
      ...(activations?.length ? { borrowed: activations } : {}),
      scope: profiler?.scope(),
    } as GradNode<Saved>;
  }
  profiler?.forwardOp(op);
  return output;
}

/** Whether an op needs to keep anything for backward at all. */
export function needsGrad(...inputs: (Tensor | null)[]): boolean {
  return gradEnabled && inputs.some((t) => t !== null && t.requiresGrad);
}
