/**
 * Tensor: a shape and a contiguous row-major Float32Array. Autograd's bookkeeping lives on the
 * tensor's `handle` (whether it requires gradients, its gradient, the opaque `gradFn` slot), which
 * the tensor exposes as `requiresGrad`, `grad` and `gradFn`. The recorded graph points at handles,
 * never at tensors, so an activation's values are freed as soon as nothing but the graph refers to
 * the tensor: an op keeps for backward only what it saves explicitly.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Generator } from './random.js';
import { checkShape, formatShape, shapeSize, type Shape } from './shape.js';

/** What autograd records on a tensor an op produced. Opaque to this layer. */
export interface GradFn {
  readonly op: string;
  readonly inputs: readonly (GradHandle | null)[];
}

/** Autograd's view of a tensor: its shape and gradient state, without its values. */
export class GradHandle {
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: GradFn | null = null;

  constructor(readonly shape: readonly number[], readonly size: number) {}
}

/** A zeroed float32 array for a shape, or an error that says how large it was (instead of a RangeError from deep inside). */
function allocate(shape: Shape): Float32Array {
  const size = shapeSize(shape);
  try {
    return new Float32Array(size);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new InvalidArgumentError(
      `Tensor: shape ${formatShape(shape)} needs ${size} float32 values (${(size * 4 / 2 ** 30).toFixed(1)} GiB), more than can be allocated; ` +
        'use a smaller model (width, depth), batch or input size',
    );
  }
}

export class Tensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
  readonly dtype = 'float32' as const;
  readonly handle: GradHandle;
  /** Optional name, for parameters and error messages. */
  name?: string;

  constructor(data: Float32Array, shape: Shape) {
    checkShape(shape, 'Tensor');
    const size = shapeSize(shape);
    if (data.length !== size) {
      throw new InvalidArgumentError(
        `Tensor: ${data.length} values do not fill shape ${formatShape(shape)} (${size} elements)`,
      );
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.handle = new GradHandle(this.shape, size);
  }

  get requiresGrad(): boolean {
    return this.handle.requiresGrad;
  }

  set requiresGrad(flag: boolean) {
    this.handle.requiresGrad = flag;
  }

  get grad(): Tensor | null {
    return this.handle.grad;
  }

  set grad(value: Tensor | null) {
    this.handle.grad = value;
  }

  get gradFn(): GradFn | null {
    return this.handle.gradFn;
  }

  set gradFn(value: GradFn | null) {
    this.handle.gradFn = value;
  }

  static zeros(shape: Shape): Tensor {
    checkShape(shape, 'Tensor');
    return new Tensor(allocate(shape), shape);
  }

  static ones(shape: Shape): Tensor {
    return Tensor.full(shape, 1);
  }

  static full(shape: Shape, value: number): Tensor {
    checkShape(shape, 'Tensor');
    return new Tensor(allocate(shape).fill(value), shape);
  }

  static from(values: ArrayLike<number>, shape?: Shape): Tensor {
    const data = Float32Array.from(values);
    return new Tensor(data, shape ?? [data.length]);
  }

  static scalar(value: number): Tensor {
    return new Tensor(Float32Array.of(value), []);
  }

  static randn(shape: Shape, generator: Generator, std = 1): Tensor {
    const t = Tensor.zeros(shape);
    for (let i = 0; i < t.data.length; i++) t.data[i] = generator.normal() * std;
    return t;
  }

  static uniform(shape: Shape, generator: Generator, lo: number, hi: number): Tensor {
    const t = Tensor.zeros(shape);
    for (let i = 0; i < t.data.length; i++) t.data[i] = lo + generator.uniform() * (hi - lo);
    return t;
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1) {
      throw new InvalidArgumentError(`item() needs a one-element tensor; this one has shape ${formatShape(this.shape)}`);
    }
    return this.data[0];
  }

  /** A tensor sharing this one's data with another shape of the same size (no autograd). */
  view(shape: Shape): Tensor {
    return new Tensor(this.data, shape);
  }

  /** A copy that owns its data and is detached from autograd. */
  clone(): Tensor {
    return new Tensor(Float32Array.from(this.data), this.shape);
  }

  /** The same data, detached from autograd. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  /** Mark as a leaf that collects gradients. */
  requireGrad(flag = true): this {
    this.requiresGrad = flag;
    return this;
  }

  toString(): string {
    return `Tensor${formatShape(this.shape)}${this.name ? ` ${this.name}` : ''}`;
  }
}
