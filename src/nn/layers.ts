/** Layers without a GEMM: normalization, activations, pooling, resampling, dropout, containers. */
import { dropIntermediate } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import {
  adaptiveAvgPool2d,
  avgPool2d,
  batchNorm2d,
  dropout,
  flatten,
  hardswish,
  maxPool2d,
  relu,
  relu6,
  upsampleBilinear2d,
  upsampleNearest2d,
  type AvgPool2dOptions,
  type InPlaceOptions,
  type Pool2dOptions,
  type UpsampleOptions,
} from '../ops/index.js';
import { Generator, Tensor } from '../tensor/index.js';
import { Module } from './module.js';

/** BatchNorm2d as PyTorch's: affine weight 1 and bias 0, running mean 0 and variance 1. */
export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  /**
   * Format in which the normalized input is kept for backward (null: float32). Recipes set it
   * (their `savedActivations`); the forward output does not depend on it.
   */
  savedFormat: string | null = null;

  /** inPlace: write the output over the input (for inputs nothing else reads, as a convolution's output inside a block). */
  constructor(readonly channels: number, readonly options: { momentum?: number; eps?: number; inPlace?: boolean } = {}) {
    super();
    if (!Number.isInteger(channels) || channels < 1) throw new InvalidArgumentError(`BatchNorm2d: channels is ${channels}; expected a positive integer`);
    this.weight = this.registerParameter('weight', Tensor.ones([channels]));
    this.bias = this.registerParameter('bias', Tensor.zeros([channels]));
    this.runningMean = this.registerBuffer('running_mean', Tensor.zeros([channels]));
    this.runningVar = this.registerBuffer('running_var', Tensor.ones([channels]));
  }

  protected forward(x: Tensor): Tensor {
    return batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar, { training: this.training, ...this.options, saveAs: this.savedFormat });
  }

  override describe(): string {
    return `BatchNorm2d(${this.channels})`;
  }
}

/** A layer that applies one function of its input. */
class Elementwise extends Module {
  constructor(private readonly label: string, private readonly fn: (x: Tensor) => Tensor) {
    super();
  }

  protected forward(x: Tensor): Tensor {
    return this.fn(x);
  }

  override describe(): string {
    return this.label;
  }
}

export class ReLU extends Elementwise {
  /** inPlace: write the output over the input (for inputs nothing else reads or kept). */
  constructor(options: InPlaceOptions = {}) {
    super('ReLU', (x) => relu(x, options));
  }
}

export class ReLU6 extends Elementwise {
  constructor() {
    super('ReLU6', relu6);
  }
}

export class Hardswish extends Elementwise {
  constructor() {
    super('Hardswish', hardswish);
  }
}

export class Identity extends Elementwise {
  constructor() {
    super('Identity', (x) => x);
  }
}

export class Flatten extends Elementwise {
  constructor(startDim = 1) {
    super('Flatten', (x) => flatten(x, startDim));
  }
}

export class MaxPool2d extends Elementwise {
  constructor(kernel: number, options: Pool2dOptions = {}) {
    super(`MaxPool2d(k=${kernel}, s=${options.stride ?? kernel}${options.ceilMode ? ', ceil' : ''})`, (x) => maxPool2d(x, kernel, options));
  }
}

export class AvgPool2d extends Elementwise {
  constructor(kernel: number, options: AvgPool2dOptions = {}) {
    super(`AvgPool2d(k=${kernel}, s=${options.stride ?? kernel})`, (x) => avgPool2d(x, kernel, options));
  }
}

export class AdaptiveAvgPool2d extends Elementwise {
  constructor(outH: number, outW = outH) {
    super(`AdaptiveAvgPool2d(${outH}x${outW})`, (x) => adaptiveAvgPool2d(x, outH, outW));
  }
}

export class Upsample extends Elementwise {
  constructor(options: UpsampleOptions & { mode?: 'nearest' | 'bilinear' }) {
    const mode = options.mode ?? 'nearest';
    super(`Upsample(${mode})`, (x) => (mode === 'nearest' ? upsampleNearest2d(x, options) : upsampleBilinear2d(x, options)));
  }
}

/** Inverted dropout with its own seeded generator, so a run's dropout masks are reproducible. */
export class Dropout extends Module {
  readonly generator: Generator;

  constructor(readonly p: number, seed: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new InvalidArgumentError(`Dropout: p is ${p}; expected 0 <= p < 1`);
    this.generator = new Generator(seed);
  }

  protected forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.generator);
  }

  override describe(): string {
    return `Dropout(${this.p})`;
  }
}

/** Children applied in order; named 0, 1, 2, ... as PyTorch's nn.Sequential. */
export class Sequential extends Module {
  private readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((layer, i) => this.registerModule(String(i), layer));
  }

  get length(): number {
    return this.layers.length;
  }

  at(i: number): Module {
    return this.layers[i];
  }

  protected forward(x: Tensor): Tensor {
    return chain(x, this.layers);
  }
}

/** `modules` applied in order to x; each dead intermediate is dropped (dropIntermediate) once the next module has run. */
export function chain(x: Tensor, modules: Iterable<Module>): Tensor {
  let y = x;
  for (const m of modules) {
    const next = m.call(y);
    dropIntermediate(y, next, x);
    y = next;
  }
  return y;
}

/** Children applied in order under the given names (PyTorch's Sequential over an OrderedDict). */
export class NamedSequential extends Module {
  private readonly layers: Module[];

  constructor(entries: readonly (readonly [string, Module])[]) {
    super();
    this.layers = entries.map(([name, layer]) => this.registerModule(name, layer));
  }

  protected forward(x: Tensor): Tensor {
    return chain(x, this.layers);
  }
}
