/**
 * Fast-SCNN (Poudel et al. 2019) with the structure of the widely used PyTorch implementation
 * (Tramac/Fast-SCNN-pytorch, aux = false): learning to downsample (conv + two depthwise-separable
 * convs, /8), global feature extractor (MobileNetV2 bottlenecks 64-96-128 with expansion 6, three
 * each, then pyramid pooling over 1, 2, 3 and 6 bins), feature fusion (upsampled low-resolution
 * branch through a depthwise conv, added to the high-resolution branch), classifier (two
 * depthwise-separable convs, dropout 0.1, 1x1 conv) and bilinear upsampling to the input size.
 * Unlike that implementation, the first convolution pads by 1 so every input multiple of 32 gives
 * matching branch sizes; parameter counts are unchanged. PyTorch's default initialization.
 */
import { add, concat, relu, upsampleBilinear2d } from '../../ops/index.js';
import { Generator, Tensor } from '../../tensor/index.js';
import { Conv2d } from '../gemm_layers.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Dropout, NamedSequential, ReLU, Sequential } from '../layers.js';
import { Module } from '../module.js';

// Batch norm and ReLU after a convolution (or a batch norm) run in place: their input is an
// output nothing else reads or keeps (a convolution keeps its input, not its output).
const bn = (channels: number): BatchNorm2d => new BatchNorm2d(channels, { inPlace: true });
const reluInPlace = (): ReLU => new ReLU({ inPlace: true });

/** One Sequential under a fixed name, to keep the reference's parameter paths (`conv.0.weight`). */
const wrapped = (name: string, ...layers: Module[]): NamedSequential => new NamedSequential([[name, new Sequential(...layers)]]);

const convBnRelu = (inC: number, outC: number, kernel: number, stride: number, g: Generator): NamedSequential =>
  wrapped('conv', new Conv2d(inC, outC, kernel, { stride, padding: (kernel - 1) >> 1, bias: false, generator: g }), bn(outC), reluInPlace());

/** Depthwise 3x3 conv, BN, ReLU (the reference's _DWConv). */
const dwConv = (channels: number, outC: number, stride: number, g: Generator): NamedSequential =>
  wrapped('conv', new Conv2d(channels, outC, 3, { stride, padding: 1, groups: channels, bias: false, generator: g }), bn(outC), reluInPlace());

/** Depthwise-separable conv: depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU (_DSConv). */
const dsConv = (channels: number, outC: number, stride: number, g: Generator): NamedSequential =>
  wrapped(
    'conv',
    new Conv2d(channels, channels, 3, { stride, padding: 1, groups: channels, bias: false, generator: g }), bn(channels), reluInPlace(),
    new Conv2d(channels, outC, 1, { bias: false, generator: g }), bn(outC), reluInPlace(),
  );

class LinearBottleneck extends Module {
  private readonly block: Sequential;
  private readonly useShortcut: boolean;

  constructor(inC: number, outC: number, expansion: number, stride: number, g: Generator) {
    super();
    const hidden = inC * expansion;
    this.useShortcut = stride === 1 && inC === outC;
    this.block = this.registerModule(
      'block',
      new Sequential(
        convBnRelu(inC, hidden, 1, 1, g),
        dwConv(hidden, hidden, stride, g),
        new Conv2d(hidden, outC, 1, { bias: false, generator: g }),
        bn(outC),
      ),
    );
  }

  protected forward(x: Tensor): Tensor {
    const out = this.block.call(x);
    return this.useShortcut ? add(x, out) : out;
  }
}

class PyramidPooling extends Module {
  private readonly branches: { pool: AdaptiveAvgPool2d; conv: NamedSequential }[] = [];
  private readonly out: NamedSequential;

  constructor(inC: number, outC: number, g: Generator) {
    super();
    const inter = inC >> 2;
    [1, 2, 3, 6].forEach((bins, i) => {
      this.branches.push({ pool: new AdaptiveAvgPool2d(bins), conv: this.registerModule(`conv${i + 1}`, convBnRelu(inC, inter, 1, 1, g)) });
    });
    this.out = this.registerModule('out', convBnRelu(inC * 2, outC, 1, 1, g));
  }

  protected forward(x: Tensor): Tensor {
    const size: [number, number] = [x.shape[2], x.shape[3]];
    const features = this.branches.map(({ pool, conv }) => upsampleBilinear2d(conv.call(pool.call(x)), { size, alignCorners: true }));
    return this.out.call(concat([x, ...features], 1));
  }
}

class GlobalFeatureExtractor extends Module {
  private readonly stages: Sequential[];
  private readonly ppm: PyramidPooling;

  constructor(g: Generator) {
    super();
    const channels = [64, 96, 128];
    const strides = [2, 2, 1];
    let inC = 64;
    this.stages = channels.map((outC, i) => {
      const blocks: Module[] = [];
      for (let b = 0; b < 3; b++) {
        blocks.push(new LinearBottleneck(inC, outC, 6, b === 0 ? strides[i] : 1, g));
        inC = outC;
      }
      return this.registerModule(`bottleneck${i + 1}`, new Sequential(...blocks));
    });
    this.ppm = this.registerModule('ppm', new PyramidPooling(128, 128, g));
  }

  protected forward(x: Tensor): Tensor {
    let y = x;
    for (const stage of this.stages) y = stage.call(y);
    return this.ppm.call(y);
  }
}

class FeatureFusion extends Module {
  private readonly dwconv: NamedSequential;
  private readonly convLowerRes: Sequential;
  private readonly convHigherRes: Sequential;

  constructor(higherC: number, lowerC: number, outC: number, g: Generator) {
    super();
    this.dwconv = this.registerModule('dwconv', dwConv(lowerC, outC, 1, g));
    this.convLowerRes = this.registerModule('conv_lower_res', new Sequential(new Conv2d(outC, outC, 1, { generator: g }), bn(outC)));
    this.convHigherRes = this.registerModule('conv_higher_res', new Sequential(new Conv2d(higherC, outC, 1, { generator: g }), bn(outC)));
  }

  protected forward(higher: Tensor, lower: Tensor): Tensor {
    const up = upsampleBilinear2d(lower, { size: [higher.shape[2], higher.shape[3]], alignCorners: true });
    return relu(add(this.convHigherRes.call(higher), this.convLowerRes.call(this.dwconv.call(up))));
  }
}

export interface FastScnnConfig {
  classes: number;
  inChannels: number;
  seed: number;
}

export class FastSCNN extends Module {
  private readonly learningToDownsample: NamedSequential;
  private readonly globalFeatureExtractor: GlobalFeatureExtractor;
  private readonly featureFusion: FeatureFusion;
  private readonly classifier: NamedSequential;

  constructor(config: FastScnnConfig) {
    super();
    const g = new Generator(config.seed);
    this.learningToDownsample = this.registerModule(
      'learning_to_downsample',
      new NamedSequential([['conv', convBnRelu(config.inChannels, 32, 3, 2, g)], ['dsconv1', dsConv(32, 48, 2, g)], ['dsconv2', dsConv(48, 64, 2, g)]]),
    );
    this.globalFeatureExtractor = this.registerModule('global_feature_extractor', new GlobalFeatureExtractor(g));
    this.featureFusion = this.registerModule('feature_fusion', new FeatureFusion(64, 128, 128, g));
    this.classifier = this.registerModule(
      'classifier',
      new NamedSequential([
        ['dsconv1', dsConv(128, 128, 1, g)],
        ['dsconv2', dsConv(128, 128, 1, g)],
        ['conv', new Sequential(new Dropout(0.1, config.seed + 1), new Conv2d(128, config.classes, 1, { generator: g }))],
      ]),
    );
  }

  protected forward(x: Tensor): Tensor {
    const higher = this.learningToDownsample.call(x);
    const fused = this.featureFusion.call(higher, this.globalFeatureExtractor.call(higher));
    return upsampleBilinear2d(this.classifier.call(fused), { size: [x.shape[2], x.shape[3]], alignCorners: true });
  }
}
