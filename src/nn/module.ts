/**
 * Module: a node of a model tree with named parameters, buffers and child modules. Names follow
 * PyTorch's dotted paths (`layer1.0.conv1.weight`), so parameter names, counts and checkpoints
 * line up with the PyTorch versions of the same networks.
 */
import { InvalidArgumentError } from '../errors.js';
import { activeProfiler } from '../autograd/index.js';
import type { Tensor } from '../tensor/index.js';

/** Called after a module's forward pass while a trace is active (see summary.ts). */
export type ForwardTrace = (module: Module, inputs: readonly Tensor[], output: Tensor) => void;

let activeTrace: ForwardTrace | null = null;

/** Run `fn` with `trace` called after every module's forward pass. */
export function withForwardTrace<T>(trace: ForwardTrace, fn: () => T): T {
  const previous = activeTrace;
  activeTrace = trace;
  try {
    return fn();
  } finally {
    activeTrace = previous;
  }
}

const NAME = /^[A-Za-z0-9_]+$/;

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** The computation, on already-checked inputs. Callers use `call`. */
  protected abstract forward(...inputs: Tensor[]): Tensor;

  /** A short description of the layer for summaries, e.g. `Conv2d(3, 64, k=3, s=1)`. */
  describe(): string {
    return this.constructor.name;
  }

  /** Multiply-accumulates of one forward pass that produced `output` (0 for layers without any). */
  macs(_inputs: readonly Tensor[], _output: Tensor): number {
    return 0;
  }

  call(...inputs: Tensor[]): Tensor {
    const profiler = activeProfiler();
    let output: Tensor;
    if (!profiler) {
      output = this.forward(...inputs);
    } else {
      profiler.enterScope(this);
      try {
        output = this.forward(...inputs);
      } finally {
        profiler.exitScope();
      }
    }
    activeTrace?.(this, inputs, output);
    return output;
  }

  protected registerParameter(name: string, tensor: Tensor): Tensor {
    this.checkName(name);
    tensor.requiresGrad = true;
    this.params.set(name, tensor);
    return tensor;
  }

  protected registerBuffer(name: string, tensor: Tensor): Tensor {
    this.checkName(name);
    this.buffers.set(name, tensor);
    return tensor;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    this.checkName(name);
    this.children.set(name, module);
    return module;
  }

  private checkName(name: string): void {
    if (!NAME.test(name)) throw new InvalidArgumentError(`Module: name "${name}" must be letters, digits or _`);
    if (this.params.has(name) || this.buffers.has(name) || this.children.has(name)) {
      throw new InvalidArgumentError(`Module: "${name}" is registered twice in ${this.constructor.name}`);
    }
  }

  /** Direct children in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** This module and all below it, depth first, with dotted paths ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  namedParameters(): [string, Tensor][] {
    return this.collect((m) => m.params);
  }

  namedBuffers(): [string, Tensor][] {
    return this.collect((m) => m.buffers);
  }

  /** Parameters then buffers, with their paths: everything a checkpoint stores. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  private collect(pick: (m: Module) => Map<string, Tensor>): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, module] of this.namedModules()) {
      for (const [name, t] of pick(module)) out.push([path ? `${path}.${name}` : name, t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Number of trainable scalars (buffers such as running statistics are not counted). */
  numParameters(): number {
    return this.parameters().reduce((n, t) => n + t.size, 0);
  }

  /** Set training mode on this module and all below it. */
  train(flag = true): this {
    for (const [, m] of this.namedModules()) m.training = flag;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clear the gradients of every parameter. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }
}
