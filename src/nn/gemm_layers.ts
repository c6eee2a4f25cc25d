/**
 * The layers whose work is a GEMM: Conv2d, ConvTranspose2d and Linear. Each computes through a
 * replaceable `compute` (float32 by default); quantization recipes install theirs there, so every
 * model runs under any recipe without model-specific code.
 */
import { InvalidArgumentError } from '../errors.js';
import { resolvePair, type ConvAlgorithm, type ConvOptions, type Pair, type SparsePattern } from '../kernels/index.js';
import { probedProduct, runProduct, type GemmProbe, type GemmProduct } from '../ops/index.js';
import { Generator, Tensor, formatShape } from '../tensor/index.js';
import { defaultLayerInit } from './init.js';
import { Module } from './module.js';

/** How GEMM layers compute their product: in float32 by default, or as a recipe installs. */
export interface GemmCompute {
  readonly name: string;
  run(x: Tensor, weight: Tensor, bias: Tensor | null, product: GemmProduct): Tensor;
}

/** The float32 compute, with float32 convolutions on `algorithm` (default: defaultConvAlgorithm() at each call). */
export function float32Compute(algorithm?: ConvAlgorithm): GemmCompute {
  return { name: 'float32', run: (x, weight, bias, product) => runProduct(x, weight, bias, product, algorithm) };
}

/** The float32 compute with a probe looking at it on the steps the probe is active (the numerics lab). */
export function probedFloat32Compute(algorithm: ConvAlgorithm | undefined, probe: GemmProbe): GemmCompute {
  return { name: 'float32', run: (x, weight, bias, product) => probedProduct(x, weight, bias, product, algorithm, probe) };
}

export const FLOAT32_COMPUTE: GemmCompute = float32Compute();

/** Give every GEMM layer of `model` the float32 compute with convolutions on `algorithm`. */
export function useFloat32Compute(model: Module, algorithm?: ConvAlgorithm): void {
  const compute = float32Compute(algorithm);
  for (const [, m] of model.namedModules()) if (m instanceof GemmLayer) m.compute = compute;
}

export abstract class GemmLayer extends Module {
  abstract readonly weight: Tensor;
  abstract readonly bias: Tensor | null;
  /** What this layer computes, handed to its compute. */
  abstract readonly product: GemmProduct;
  compute: GemmCompute = FLOAT32_COMPUTE;
  /**
   * The weight's keep pattern where it is pruned in blocks (src/sparse/): handed to the compute
   * with a convolution's product, whose forward and gradients may then run on the block-sparse
   * kernel.
   */
  sparse: SparsePattern | null = null;
  /**
   * The same pattern where the layer is pruned but keeps dense products (`kernels: 'dense'`): a
   * quantized weight gradient is still zeroed outside the kept blocks before it takes its scale.
   */
  pruned: SparsePattern | null = null;

  protected forward(x: Tensor): Tensor {
    const pruned = this.sparse ?? this.pruned;
    const product = pruned && this.product.kind === 'conv2d' ? { ...this.product, sparse: this.sparse ?? undefined, pruned } : this.product;
    return this.compute.run(x, this.weight, this.bias, product);
  }
}

function positive(op: string, values: Record<string, number>): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${op}: ${name} is ${v}; expected a positive integer`);
  }
}

/** A convolution layer's kernel size and groups, checked: positive, channels divisible by groups. */
function convLayerShape(op: string, inChannels: number, outChannels: number, kernel: Pair, groups = 1): { kh: number; kw: number; groups: number } {
  const [kh, kw] = resolvePair(kernel, 1, 'kernel', op, 1);
  positive(op, { inChannels, outChannels, kernelH: kh, kernelW: kw, groups });
  if (inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new InvalidArgumentError(`${op}: ${inChannels} -> ${outChannels} channels do not divide into ${groups} groups`);
  }
  return { kh, kw, groups };
}

export interface Conv2dConfig extends Omit<ConvOptions, 'outputPadding'> {
  bias?: boolean;
  generator: Generator;
}

export class Conv2d extends GemmLayer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly options: ConvOptions;
  readonly product: GemmProduct;

  constructor(readonly inChannels: number, readonly outChannels: number, kernel: Pair, config: Conv2dConfig) {
    super();
    const { kh, kw, groups } = convLayerShape('Conv2d', inChannels, outChannels, kernel, config.groups);
    this.options = { stride: config.stride, padding: config.padding, dilation: config.dilation, groups };
    this.product = { kind: 'conv2d', options: this.options };
    this.weight = this.registerParameter('weight', Tensor.zeros([outChannels, inChannels / groups, kh, kw]));
    this.bias = config.bias === false ? null : this.registerParameter('bias', Tensor.zeros([outChannels]));
    defaultLayerInit(this.weight, this.bias, config.generator);
  }

  override describe(): string {
    const [, , kh, kw] = this.weight.shape;
    const s = resolvePair(this.options.stride, 1, 'stride', 'Conv2d', 1);
    const g = this.options.groups ?? 1;
    return `Conv2d(${this.inChannels}, ${this.outChannels}, k=${kh}x${kw}, s=${s[0]}${g > 1 ? `, g=${g}` : ''})`;
  }

  override macs(_inputs: readonly Tensor[], output: Tensor): number {
    const [, cig, kh, kw] = this.weight.shape;
    return output.size * cig * kh * kw;
  }
}

export interface ConvTranspose2dConfig extends ConvOptions {
  bias?: boolean;
  generator: Generator;
}

export class ConvTranspose2d extends GemmLayer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly options: ConvOptions;
  readonly product: GemmProduct;

  constructor(readonly inChannels: number, readonly outChannels: number, kernel: Pair, config: ConvTranspose2dConfig) {
    super();
    const { kh, kw, groups } = convLayerShape('ConvTranspose2d', inChannels, outChannels, kernel, config.groups);
    this.options = { stride: config.stride, padding: config.padding, dilation: config.dilation, groups, outputPadding: config.outputPadding };
    this.product = { kind: 'convTranspose2d', options: this.options };
    this.weight = this.registerParameter('weight', Tensor.zeros([inChannels, outChannels / groups, kh, kw]));
    this.bias = config.bias === false ? null : this.registerParameter('bias', Tensor.zeros([outChannels]));
    defaultLayerInit(this.weight, this.bias, config.generator);
  }

  override describe(): string {
    const [, , kh, kw] = this.weight.shape;
    return `ConvTranspose2d(${this.inChannels}, ${this.outChannels}, k=${kh}x${kw}, s=${resolvePair(this.options.stride, 1, 'stride', 'ConvTranspose2d', 1)[0]})`;
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
  readonly product: GemmProduct = { kind: 'linear' };

  constructor(readonly inFeatures: number, readonly outFeatures: number, config: LinearConfig) {
    super();
    positive('Linear', { inFeatures, outFeatures });
    this.weight = this.registerParameter('weight', Tensor.zeros([outFeatures, inFeatures]));
    this.bias = config.bias === false ? null : this.registerParameter('bias', Tensor.zeros([outFeatures]));
    defaultLayerInit(this.weight, this.bias, config.generator);
  }

  protected override forward(x: Tensor): Tensor {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) {
      throw new InvalidArgumentError(`Linear: input ${formatShape(x.shape)}; expected [N, ${this.inFeatures}]`);
    }
    return super.forward(x);
  }

  override describe(): string {
    return `Linear(${this.inFeatures}, ${this.outFeatures})`;
  }

  override macs(_inputs: readonly Tensor[], output: Tensor): number {
    return output.size * this.inFeatures;
  }
}
