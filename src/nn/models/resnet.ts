/**
 * ResNets as torchvision builds them (He et al. 2015, "v1.5": the stride of a bottleneck sits on
 * its 3x3 convolution), with torchvision's initialization (convolutions Kaiming-normal over
 * fan_out, batch norm 1 and 0, the classifier PyTorch's default), plus the CIFAR variants (3x3
 * stem, no max pool) and the small CIFAR ResNet-20 of He et al. 2016 (section 4.2: 16-32-64
 * channels, 3 blocks per stage, parameter-free shortcuts, option A).
 */
import { dropIntermediate } from '../../autograd/index.js';
import { InvalidArgumentError } from '../../errors.js';
import { add, relu, subsamplePadChannels } from '../../ops/index.js';
import { Generator, Tensor } from '../../tensor/index.js';
import { Conv2d, Linear } from '../gemm_layers.js';
import { kaimingNormal } from '../init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Flatten, MaxPool2d, ReLU, Sequential, chain } from '../layers.js';
import { Module } from '../module.js';

export interface ClassifierConfig {
  classes: number;
  inChannels: number;
  seed: number;
}

function conv(inC: number, outC: number, kernel: number, stride: number, generator: Generator): Conv2d {
  return new Conv2d(inC, outC, kernel, { stride, padding: (kernel - 1) >> 1, bias: false, generator });
}

// Batch norm and ReLU here always follow a convolution, a batch norm or the residual sum, whose
// outputs nothing else reads and no op keeps (a convolution keeps its input, batch norm its
// normalized input, ReLU a bit mask): they run in place, as torchvision's ReLU(inplace=True),
// which saves an activation-sized array per layer.
function batchNorm(channels: number): BatchNorm2d {
  return new BatchNorm2d(channels, { inPlace: true });
}

function reluInPlace(): ReLU {
  return new ReLU({ inPlace: true });
}

/** relu(out + shortcut) over out's array; a shortcut computed from the block's input x is dropped once added. */
function residual(out: Tensor, shortcut: Tensor, x: Tensor, activation: (t: Tensor) => Tensor): Tensor {
  const sum = add(out, shortcut, { inPlace: true });
  dropIntermediate(shortcut, sum, x);
  return activation(sum);
}

class BasicBlock extends Module {
  static readonly expansion = 1;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly relu: ReLU;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm2d;
  private readonly downsample: Module | null;

  constructor(inC: number, planes: number, stride: number, downsample: Module | null, g: Generator) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inC, planes, 3, stride, g));
    this.bn1 = this.registerModule('bn1', batchNorm(planes));
    this.relu = this.registerModule('relu', reluInPlace());
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, 1, g));
    this.bn2 = this.registerModule('bn2', batchNorm(planes));
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
  }

  protected forward(x: Tensor): Tensor {
    const h = this.relu.call(this.bn1.call(this.conv1.call(x)));
    const out = this.bn2.call(this.conv2.call(h));
    dropIntermediate(h, out, x);
    return residual(out, this.downsample ? this.downsample.call(x) : x, x, (t) => this.relu.call(t));
  }
}

class Bottleneck extends Module {
  static readonly expansion = 4;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm2d;
  private readonly conv3: Conv2d;
  private readonly bn3: BatchNorm2d;
  private readonly relu: ReLU;
  private readonly downsample: Module | null;

  constructor(inC: number, planes: number, stride: number, downsample: Module | null, g: Generator) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inC, planes, 1, 1, g));
    this.bn1 = this.registerModule('bn1', batchNorm(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, stride, g));
    this.bn2 = this.registerModule('bn2', batchNorm(planes));
    this.conv3 = this.registerModule('conv3', conv(planes, planes * 4, 1, 1, g));
    this.bn3 = this.registerModule('bn3', batchNorm(planes * 4));
    this.relu = this.registerModule('relu', reluInPlace());
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
  }

  protected forward(x: Tensor): Tensor {
    const h1 = this.relu.call(this.bn1.call(this.conv1.call(x)));
    const h2 = this.relu.call(this.bn2.call(this.conv2.call(h1)));
    dropIntermediate(h1, h2, x);
    const out = this.bn3.call(this.conv3.call(h2));
    dropIntermediate(h2, out, x);
    return residual(out, this.downsample ? this.downsample.call(x) : x, x, (t) => this.relu.call(t));
  }
}

type BlockKind = typeof BasicBlock | typeof Bottleneck;

export interface ResNetConfig extends ClassifierConfig {
  /** `imagenet`: 7x7 stride-2 stem and max pool; `cifar`: 3x3 stride-1 stem, no pool. */
  stem: 'imagenet' | 'cifar';
  /** Channels of the first stage (64 in the paper); smaller values make fast test models. */
  width?: number;
}

export class ResNet extends Module {
  private readonly stem: Module[];
  private readonly stages: Sequential[];
  private readonly head: Module[];

  constructor(block: BlockKind, blocks: readonly number[], config: ResNetConfig) {
    super();
    const g = new Generator(config.seed);
    const width = config.width ?? 64;
    const imagenet = config.stem === 'imagenet';
    this.stem = [
      this.registerModule('conv1', imagenet ? conv(config.inChannels, width, 7, 2, g) : conv(config.inChannels, width, 3, 1, g)),
      this.registerModule('bn1', batchNorm(width)),
      this.registerModule('relu', reluInPlace()),
    ];
    if (imagenet) this.stem.push(this.registerModule('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 })));
    let inC = width;
    this.stages = blocks.map((count, i) => {
      const planes = width << i;
      const stride = i === 0 ? 1 : 2;
      const layers: Module[] = [];
      for (let b = 0; b < count; b++) {
        const s = b === 0 ? stride : 1;
        const needsProjection = s !== 1 || inC !== planes * block.expansion;
        const downsample = needsProjection
          ? new Sequential(conv(inC, planes * block.expansion, 1, s, g), batchNorm(planes * block.expansion))
          : null;
        layers.push(new block(inC, planes, s, downsample, g));
        inC = planes * block.expansion;
      }
      return this.registerModule(`layer${i + 1}`, new Sequential(...layers));
    });
    this.head = [
      this.registerModule('avgpool', new AdaptiveAvgPool2d(1)),
      this.registerModule('flatten', new Flatten()),
      this.registerModule('fc', new Linear(inC, config.classes, { generator: g })),
    ];
    for (const [, m] of this.namedModules()) if (m instanceof Conv2d) kaimingNormal(m.weight, g, 'fan_out');
  }

  protected forward(x: Tensor): Tensor {
    return chain(x, [...this.stem, ...this.stages, ...this.head]);
  }
}

/** ResNet-20 block: two 3x3 convolutions and the parameter-free shortcut (option A). */
class CifarBlock extends Module {
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm2d;

  constructor(private readonly inC: number, private readonly outC: number, private readonly stride: number, g: Generator) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inC, outC, 3, stride, g));
    this.bn1 = this.registerModule('bn1', batchNorm(outC));
    this.conv2 = this.registerModule('conv2', conv(outC, outC, 3, 1, g));
    this.bn2 = this.registerModule('bn2', batchNorm(outC));
  }

  protected forward(x: Tensor): Tensor {
    const h = relu(this.bn1.call(this.conv1.call(x)), { inPlace: true });
    const out = this.bn2.call(this.conv2.call(h));
    dropIntermediate(h, out, x);
    const shortcut = this.stride !== 1 || this.inC !== this.outC ? subsamplePadChannels(x, this.stride, this.outC) : x;
    return residual(out, shortcut, x, (t) => relu(t, { inPlace: true }));
  }
}

/** He et al. 2016's CIFAR ResNet with 6n+2 layers (n = 3: ResNet-20). */
export class CifarResNet extends Module {
  private readonly body: Module[];

  constructor(depth: number, config: ClassifierConfig & { width?: number }) {
    super();
    if (!Number.isInteger((depth - 2) / 6) || depth < 8) {
      throw new InvalidArgumentError(`CIFAR ResNet: depth ${depth}; expected 6n + 2 (20, 32, 44, 56, 110)`);
    }
    const n = (depth - 2) / 6;
    const g = new Generator(config.seed);
    const width = config.width ?? 16;
    this.body = [
      this.registerModule('conv1', conv(config.inChannels, width, 3, 1, g)),
      this.registerModule('bn1', batchNorm(width)),
      this.registerModule('relu', reluInPlace()),
    ];
    let inC = width;
    for (let stage = 0; stage < 3; stage++) {
      const outC = width << stage;
      const blocks: Module[] = [];
      for (let b = 0; b < n; b++) {
        blocks.push(new CifarBlock(inC, outC, b === 0 && stage > 0 ? 2 : 1, g));
        inC = outC;
      }
      this.body.push(this.registerModule(`layer${stage + 1}`, new Sequential(...blocks)));
    }
    this.body.push(
      this.registerModule('avgpool', new AdaptiveAvgPool2d(1)),
      this.registerModule('flatten', new Flatten()),
      this.registerModule('fc', new Linear(inC, config.classes, { generator: g })),
    );
    for (const [, m] of this.namedModules()) if (m instanceof Conv2d || m instanceof Linear) kaimingNormal(m.weight, g, 'fan_in');
  }

  protected forward(x: Tensor): Tensor {
    return chain(x, this.body);
  }
}

export const resnet18 = (config: ResNetConfig): ResNet => new ResNet(BasicBlock, [2, 2, 2, 2], config);
export const resnet101 = (config: ResNetConfig): ResNet => new ResNet(Bottleneck, [3, 4, 23, 3], config);
