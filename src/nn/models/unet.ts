/**
 * U-Net (Ronneberger et al. 2015) as the widely used PyTorch implementation builds it
 * (milesial/Pytorch-UNet, bilinear = false): double 3x3 convolutions with batch norm, padding 1 so
 * the output has the input's size, max-pool down, transposed-convolution up, skip connections by
 * concatenation, a 1x1 classifier. PyTorch's default initialization. Base width and depth are
 * configurable; the reference configuration is width 64, depth 4.
 */
import { InvalidArgumentError } from '../../errors.js';
import { concat } from '../../ops/index.js';
import { Generator, Tensor, formatShape } from '../../tensor/index.js';
import { Conv2d, ConvTranspose2d } from '../gemm_layers.js';
import { BatchNorm2d, MaxPool2d, ReLU, Sequential } from '../layers.js';
import { Module } from '../module.js';

class DoubleConv extends Module {
  private readonly doubleConv: Sequential;

  constructor(inC: number, outC: number, generator: Generator) {
    super();
    this.doubleConv = this.registerModule(
      'double_conv',
      new Sequential(
        // Batch norm and ReLU run in place: each one's input is the layer before's output, which
        // nothing else reads or keeps (a convolution keeps its input, not its output).
        new Conv2d(inC, outC, 3, { padding: 1, bias: false, generator }), new BatchNorm2d(outC, { inPlace: true }), new ReLU({ inPlace: true }),
        new Conv2d(outC, outC, 3, { padding: 1, bias: false, generator }), new BatchNorm2d(outC, { inPlace: true }), new ReLU({ inPlace: true }),
      ),
    );
  }

  protected forward(x: Tensor): Tensor {
    return this.doubleConv.call(x);
  }
}

class Down extends Module {
  private readonly maxpoolConv: Sequential;

  constructor(inC: number, outC: number, generator: Generator) {
    super();
    this.maxpoolConv = this.registerModule('maxpool_conv', new Sequential(new MaxPool2d(2), new DoubleConv(inC, outC, generator)));
  }

  protected forward(x: Tensor): Tensor {
    return this.maxpoolConv.call(x);
  }
}

class Up extends Module {
  private readonly up: ConvTranspose2d;
  private readonly conv: DoubleConv;

  constructor(inC: number, outC: number, generator: Generator) {
    super();
    this.up = this.registerModule('up', new ConvTranspose2d(inC, inC / 2, 2, { stride: 2, generator }));
    this.conv = this.registerModule('conv', new DoubleConv(inC, outC, generator));
  }

  /** x: the deeper features; skip: the encoder's features at the target resolution. */
  protected forward(x: Tensor, skip: Tensor): Tensor {
    return this.conv.call(concat([skip, this.up.call(x)], 1));
  }
}

class OutConv extends Module {
  private readonly conv: Conv2d;

  constructor(inC: number, classes: number, generator: Generator) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(inC, classes, 1, { generator }));
  }

  protected forward(x: Tensor): Tensor {
    return this.conv.call(x);
  }
}

export interface UNetConfig {
  classes: number;
  inChannels: number;
  seed: number;
  /** Channels after the first double convolution (64 in the paper). */
  width?: number;
  /** Number of down (and up) steps (4 in the paper). */
  depth?: number;
}

export class UNet extends Module {
  private readonly inc: DoubleConv;
  private readonly downs: Down[] = [];
  private readonly ups: Up[] = [];
  private readonly outc: OutConv;
  readonly depth: number;

  constructor(config: UNetConfig) {
    super();
    const g = new Generator(config.seed);
    const width = config.width ?? 64;
    this.depth = config.depth ?? 4;
    if (!Number.isInteger(this.depth) || this.depth < 1) throw new InvalidArgumentError(`UNet: depth ${this.depth}; expected a positive integer`);
    this.inc = this.registerModule('inc', new DoubleConv(config.inChannels, width, g));
    for (let i = 0; i < this.depth; i++) this.downs.push(this.registerModule(`down${i + 1}`, new Down(width << i, width << (i + 1), g)));
    for (let i = this.depth; i > 0; i--) this.ups.push(this.registerModule(`up${this.depth - i + 1}`, new Up(width << i, width << (i - 1), g)));
    this.outc = this.registerModule('outc', new OutConv(width, config.classes, g));
  }

  protected forward(x: Tensor): Tensor {
    const multiple = 1 << this.depth;
    if (x.rank !== 4 || x.shape[2] % multiple !== 0 || x.shape[3] % multiple !== 0) {
      throw new InvalidArgumentError(`UNet: input ${formatShape(x.shape)}; expected [N, C, H, W] with H and W multiples of ${multiple} (2^depth)`);
    }
    const skips = [this.inc.call(x)];
    for (const down of this.downs) skips.push(down.call(skips[skips.length - 1]));
    let y = skips.pop()!;
    for (const up of this.ups) y = up.call(y, skips.pop()!);
    return this.outc.call(y);
  }
}
