/** Shapes: sizes, strides, equality, broadcasting. */
import { InvalidArgumentError } from '../errors.js';

export type Shape = readonly number[];

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(shape: Shape, where: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new InvalidArgumentError(`${where}: shape [${shape.join(', ')}] has a dimension ${d}; expected non-negative integers`);
    }
  }
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Row-major strides. */
export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/** NumPy broadcasting of two shapes, or an error naming the op and both shapes. */
export function broadcastShapes(a: Shape, b: Shape, op: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new InvalidArgumentError(
        `${op}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast (dimension ${i} is ${da} vs ${db}); ` +
          'expected equal sizes or 1',
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * For each element of `outShape`, the index of the element of `inShape` (broadcast into it) that
 * it reads. Returns null when the shapes are equal (identity).
 */
export function broadcastIndex(inShape: Shape, outShape: Shape): Int32Array | null {
  if (shapesEqual(inShape, outShape)) return null;
  const n = shapeSize(outShape);
  const index = new Int32Array(n);
  const rank = outShape.length;
  const inStrides = stridesOf(inShape);
  // stride of each output axis in the input (0 where broadcast)
  const strides = outShape.map((_, i) => {
    const k = i - (rank - inShape.length);
    return k < 0 || inShape[k] === 1 ? 0 : inStrides[k];
  });
  const counter = new Array<number>(rank).fill(0);
  let at = 0;
  for (let flat = 0; flat < n; flat++) {
    index[flat] = at;
    for (let axis = rank - 1; axis >= 0; axis--) {
      counter[axis]++;
      at += strides[axis];
      if (counter[axis] < outShape[axis]) break;
      at -= strides[axis] * outShape[axis];
      counter[axis] = 0;
    }
  }
  return index;
}
