/**
 * How much memory the recorded graph keeps alive for the backward pass: the bytes of every array
 * the ops reachable from `root` put in `saved` (activations, their FP8 codes, ReLU masks, pooling
 * indices), each buffer counted once however many ops share it. Arrays listed in `exclude` (the
 * model's parameters, which live whether or not a graph exists) are left out.
 *
 * This is what a training step holds between the end of the forward pass and the start of the
 * backward pass beyond the model and optimizer state, and what an FP8 recipe is meant to shrink
 * (one byte per saved element instead of four). It counts typed arrays found in `saved` itself and
 * inside plain objects and arrays there; class instances (a layer's quantization state, shared by
 * every step) and functions are not walked.
 */
import type { Tensor } from '../tensor/index.js';
import { tape } from './backward.js';
import type { GradNode } from './graph.js';

export interface SavedMemory {
  /** Bytes of the distinct buffers the graph's ops saved. */
  bytes: number;
  /** Distinct buffers counted. */
  buffers: number;
  /** Bytes by op name (a buffer shared by ops of two kinds is counted under the first one met). */
  byOp: Record<string, number>;
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || Array.isArray(value);
}

/** Typed arrays in `value`: itself, or inside plain objects and arrays (any depth). */
function collectArrays(value: unknown, out: ArrayBufferView[], seen: Set<object>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (ArrayBuffer.isView(value)) {
    out.push(value);
    return;
  }
  if (!isPlain(value)) return;
  for (const v of Object.values(value)) collectArrays(v, out, seen);
}

export function savedMemory(root: Tensor, exclude: Iterable<ArrayBufferView> = []): SavedMemory {
  const skip = new Set<ArrayBufferLike>();
  for (const a of exclude) skip.add(a.buffer);
  const counted = new Set<ArrayBufferLike>();
  const byOp: Record<string, number> = {};
  let bytes = 0;
  for (const handle of tape(root)) {
    const node = handle.gradFn as GradNode | null;
    if (!node) continue;
    const arrays: ArrayBufferView[] = [];
    collectArrays(node.saved, arrays, new Set());
    for (const a of arrays) {
      if (skip.has(a.buffer) || counted.has(a.buffer)) continue;
      counted.add(a.buffer);
      // The whole buffer stays alive while a view of it is held.
      bytes += a.buffer.byteLength;
      byOp[node.op] = (byOp[node.op] ?? 0) + a.buffer.byteLength;
    }
  }
  return { bytes, buffers: counted.size, byOp };
}
