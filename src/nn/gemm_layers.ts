/**
 * The layers whose work is a GEMM: Conv2d, ConvTranspose2d and Linear. Each computes through a
 * replaceable `compute` (float32 by default); quantization recipes install theirs there, so every
 * model runs under any recipe without model-specific code.
 */
import { InvalidArgumentError } from '../errors.js';
import {
  conv2d,
  convTranspose2d,
  linear,
  type Conv2dOptions,
  type ConvTranspose2dOptions,
} from '../ops/index.js';
import { Generator, Tensor, formatShape } from '../tensor/index.js';
import { defaultLayerInit } from './init.js';
import { Module } from './module.js';

/** How GEMM layers compute. The float32 one calls the ops directly. */
export interface GemmCompute {
  readonly name: string;
  conv2d(layer: Conv2d, x: Tensor): Tensor;
  convTranspose2d(layer: ConvTranspose2d, x: Tensor): Tensor;
  linear(layer: Linear, x: Tensor): Tensor;
}

export const FLOAT32_COMPUTE: GemmCompute = {
  name: 'float32',
  conv2d: (layer, x) => conv2d(x, layer.weight, layer.bias, layer.options),
  convTranspose2d: (layer, x) => convTranspose2d(x, layer.weight, layer.bias, layer.options),
  linear: (layer, x) => linear(x, layer.weight, layer.bias),
};

export abstract class GemmLayer extends Module {
  abstract readonly weight: Tensor;
  abstract readonly bias: Tensor | null;
  compute: GemmCompute = FLOAT32_COMPUTE;
}

function positive(op: string, values: Record<string, number>): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${op}: ${name} is ${v}; expected a positive integer`);
  }
}

export interface Conv2dConfig extends Conv2dOptions {
  bias?: boolean;
  generator: Generator;
}

function one(v: number | [number, number] | undefined, fallback: number): [number, number] {
  return v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : v;
}

export class Conv2d extends GemmLayer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly options: Conv2dOptions;

  constructor(readonly inChannels: number, readonly outChannels: number, kernel: number | [number, number], config: Conv2dConfig) {
    super();
    const groups = config.groups ?? 1;
    const [kh, kw] = one(kernel, 1);
    positive('Conv2d', { inChannels, outChannels, kernelH: kh, kernelW: kw, groups });
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new InvalidArgumentError(`Conv2d: ${inChannels} -> ${outChannels} channels do not divide into ${groups} groups`);
    }
    this.options = { stride: config.stride, padding: config.padding, dilation: config.dilation, groups };
    this.weight = this.registerParameter('weight', Tensor.zeros([outChannels, inChannels / groups, kh, kw]));
    this.bias = config.bias === false ? null : this.registerParameter('bias', Tensor.zeros([outChannels]));
    defaultLayerInit(this.weight, this.bias, config.generator);
  }

  protected forward(x: Tensor): Tensor {
    return this.compute.conv2d(this, x);
  }

  override describe(): string {
    const [, , kh, kw] = this.weight.shape;
    const s = one(this.options.stride, 1);
    const g = this.options.groups ?? 1;
    return `Conv2d(${this.inChannels}, ${this.outChannels}, k=${kh}x${kw}, s=${s[0]}${g > 1 ? `, g=${g}` : ''})`;
  }

  override macs(_inputs: readonly Tensor[], output: Tensor): number {
    const [, cig, kh, kw] = this.weight.shape;
    return output.size * cig * kh * kw;
  }
}

export interface ConvTranspose2dConfig extends ConvTranspose2dOptions {
  bias?: boolean;
  generator: Generator;
}

export class ConvTranspose2d extends GemmLayer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly options: ConvTranspose2dOptions;

  constructor(readonly inChannels: number, readonly outChannels: number, kernel: number | [number, number], config: ConvTranspose2dConfig) {
    super();
    const groups = config.groups ?? 1;
    const [kh, kw] = one(kernel, 1);
    positive('ConvTranspose2d', { inChannels, outChannels, kernelH: kh, kernelW: kw, groups });
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new InvalidArgumentError(`ConvTranspose2d: ${inChannels} -> ${outChannels} channels do not divide into ${groups} groups`);
    }
    this.options = { stride: config.stride, padding: config.padding, dilation: config.dilation, groups, outputPadding: config.outputPadding };
    this.weight = this.registerParameter('weight', Tensor.zeros([inChannels, outChannels / groups, kh, kw]));
    this.bias = config.bias === false ? null : this.registerParameter('bias', Tensor.zeros([outChannels]));
    defaultLayerInit(this.weight, this.bias, config.generator);
  }

  protected forward(x: Tensor): Tensor {
    return this.compute.convTranspose2d(this, x);
  }

  override describe(): string {
    const [, , kh, kw] = this.weight.shape;
    return `ConvTranspose2d(${this.inChannels}, ${this.outChannels}, k=${kh}x${kw}, s=${one(this.options.stride, 1)[0]})`;
  }

  override macs(inputs: readonly Tensor[]): number {
    const [, ocg, kh, kw] = this.weight.shape;
    return inputs[0].size * ocg * kh * kw;
  }
}

export interface LinearConfig {
  bias?: boolean;
  generator: Generator;
}

export class Linear extends GemmLayer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, config: LinearConfig) {
    super();
    positive('Linear', { inFeatures, outFeatures });
    this.weight = this.registerParameter('weight', Tensor.zeros([outFeatures, inFeatures]));
    this.bias = config.bias === false ? null : this.registerParameter('bias', Tensor.zeros([outFeatures]));
    defaultLayerInit(this.weight, this.bias, config.generator);
  }

  protected forward(x: Tensor): Tensor {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) {
      throw new InvalidArgumentError(`Linear: input ${formatShape(x.shape)}; expected [N, ${this.inFeatures}]`);
    }
    return this.compute.linear(this, x);
  }

  override describe(): string {
    return `Linear(${this.inFeatures}, ${this.outFeatures})`;
  }

  override macs(_inputs: readonly Tensor[], output: Tensor): number {
    return output.size * this.inFeatures;
  }
}
