/**
 * SqueezeNet 1.0 and 1.1 (Iandola et al. 2016) as torchvision builds them: fire modules (a 1x1
 * squeeze, then 1x1 and 3x3 expands concatenated), max pools with ceil mode, and a convolutional
 * classifier. Initialization as torchvision: Kaiming-uniform convolutions with zero bias, the final
 * convolution N(0, 0.01).
 */
import { InvalidArgumentError } from '../../errors.js';
import { concat } from '../../ops/index.js';
import { Generator, Tensor } from '../../tensor/index.js';
import { Conv2d } from '../gemm_layers.js';
import { kaimingUniform, normal } from '../init.js';
import { AdaptiveAvgPool2d, Dropout, Flatten, MaxPool2d, ReLU, Sequential } from '../layers.js';
import { Module } from '../module.js';
import type { ClassifierConfig } from './resnet.js';

// Every ReLU here follows a convolution, whose output nothing else reads or keeps (a convolution
// keeps its input): it runs in place, as torchvision's ReLU(inplace=True).
const reluInPlace = (): ReLU => new ReLU({ inPlace: true });

class Fire extends Module {
  private readonly squeeze: Conv2d;
  private readonly squeezeActivation: ReLU;
  private readonly expand1x1: Conv2d;
  private readonly expand1x1Activation: ReLU;
  private readonly expand3x3: Conv2d;
  private readonly expand3x3Activation: ReLU;

  constructor(inC: number, squeeze: number, expand1x1: number, expand3x3: number, generator: Generator) {
    super();
    this.squeeze = this.registerModule('squeeze', new Conv2d(inC, squeeze, 1, { generator }));
    this.squeezeActivation = this.registerModule('squeeze_activation', reluInPlace());
    this.expand1x1 = this.registerModule('expand1x1', new Conv2d(squeeze, expand1x1, 1, { generator }));
    this.expand1x1Activation = this.registerModule('expand1x1_activation', reluInPlace());
    this.expand3x3 = this.registerModule('expand3x3', new Conv2d(squeeze, expand3x3, 3, { padding: 1, generator }));
    this.expand3x3Activation = this.registerModule('expand3x3_activation', reluInPlace());
  }

  protected forward(x: Tensor): Tensor {
    const s = this.squeezeActivation.call(this.squeeze.call(x));
    return concat([this.expand1x1Activation.call(this.expand1x1.call(s)), this.expand3x3Activation.call(this.expand3x3.call(s))], 1);
  }
}

export type SqueezeNetVersion = '1_0' | '1_1';

export class SqueezeNet extends Module {
  private readonly features: Sequential;
  private readonly classifier: Sequential;
  private readonly flatten = new Flatten();

  constructor(version: SqueezeNetVersion, config: ClassifierConfig) {
    super();
    const g = new Generator(config.seed);
    const pool = () => new MaxPool2d(3, { stride: 2, ceilMode: true });
    const fire = (inC: number, s: number, e: number) => new Fire(inC, s, e, e, g);
    let layers: Module[];
    if (version === '1_0') {
      layers = [
        new Conv2d(config.inChannels, 96, 7, { stride: 2, generator: g }), reluInPlace(), pool(),
        fire(96, 16, 64), fire(128, 16, 64), fire(128, 32, 128), pool(),
        fire(256, 32, 128), fire(256, 48, 192), fire(384, 48, 192), fire(384, 64, 256), pool(),
        fire(512, 64, 256),
      ];
    } else if (version === '1_1') {
      layers = [
        new Conv2d(config.inChannels, 64, 3, { stride: 2, generator: g }), reluInPlace(), pool(),
        fire(64, 16, 64), fire(128, 16, 64), pool(),
        fire(128, 32, 128), fire(256, 32, 128), pool(),
        fire(256, 48, 192), fire(384, 48, 192), fire(384, 64, 256), fire(512, 64, 256),
      ];
    } else {
      throw new InvalidArgumentError(`SqueezeNet: version ${String(version)}; expected 1_0 or 1_1`);
    }
    this.features = this.registerModule('features', new Sequential(...layers));
    const finalConv = new Conv2d(512, config.classes, 1, { generator: g });
    this.classifier = this.registerModule(
      'classifier',
      new Sequential(new Dropout(0.5, config.seed + 1), finalConv, reluInPlace(), new AdaptiveAvgPool2d(1)),
    );
    for (const [, m] of this.namedModules()) {
      if (!(m instanceof Conv2d)) continue;
      if (m === finalConv) normal(m.weight, g, 0.01);
      else kaimingUniform(m.weight, g);
      m.bias?.data.fill(0);
    }
  }

  protected forward(x: Tensor): Tensor {
    return this.flatten.call(this.classifier.call(this.features.call(x)));
  }
}
