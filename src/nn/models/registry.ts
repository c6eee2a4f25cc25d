/**
 * The model zoo as data: each entry's task, default configuration (classes, input channels, input
 * size) and builder. Names are those users know from torchvision and the papers.
 */
import { UnknownNameError } from '../../errors.js';
import type { Module } from '../module.js';
import { FastSCNN } from './fastscnn.js';
import { CifarResNet, resnet101, resnet18 } from './resnet.js';
import { SqueezeNet } from './squeezenet.js';
import { UNet } from './unet.js';

export type Task = 'classification' | 'segmentation';

export interface ModelOptions {
  classes?: number;
  inChannels?: number;
  seed?: number;
  /**
   * Base width (channels of the first stage): 64 for the ResNets and UNet, 16 for resnet20.
   * Smaller values build the same topology with fewer channels, for quick tests.
   */
  width?: number;
  /** UNet only: number of down/up steps (4 in the paper). */
  depth?: number;
}

export interface ModelInfo {
  name: string;
  task: Task;
  description: string;
  classes: number;
  inChannels: number;
  /** Input height and width the model is usually trained at. */
  inputSize: [number, number];
  /** Whether `width` changes the model. */
  hasWidth: boolean;
  build(options?: ModelOptions): Module;
}

type Resolved = Required<Pick<ModelOptions, 'classes' | 'inChannels' | 'seed'>> & ModelOptions;

function entry(
  info: Omit<ModelInfo, 'build'>,
  make: (o: Resolved) => Module,
): ModelInfo {
  return {
    ...info,
    build: (options = {}) =>
      make({ ...options, classes: options.classes ?? info.classes, inChannels: options.inChannels ?? info.inChannels, seed: options.seed ?? 0 }),
  };
}

export const MODELS: readonly ModelInfo[] = [
  entry(
    { name: 'resnet18', task: 'classification', description: 'ResNet-18, ImageNet stem (torchvision)', classes: 1000, inChannels: 3, inputSize: [224, 224], hasWidth: true },
    (o) => resnet18({ ...o, stem: 'imagenet' }),
  ),
  entry(
    { name: 'resnet101', task: 'classification', description: 'ResNet-101, bottleneck blocks, ImageNet stem (torchvision)', classes: 1000, inChannels: 3, inputSize: [224, 224], hasWidth: true },
    (o) => resnet101({ ...o, stem: 'imagenet' }),
  ),
  entry(
    { name: 'resnet18-cifar', task: 'classification', description: 'ResNet-18 with a 3x3 stem and no max pool, for 32x32 input', classes: 100, inChannels: 3, inputSize: [32, 32], hasWidth: true },
    (o) => resnet18({ ...o, stem: 'cifar' }),
  ),
  entry(
    { name: 'resnet101-cifar', task: 'classification', description: 'ResNet-101 with a 3x3 stem and no max pool, for 32x32 input', classes: 100, inChannels: 3, inputSize: [32, 32], hasWidth: true },
    (o) => resnet101({ ...o, stem: 'cifar' }),
  ),
  entry(
    { name: 'resnet20', task: 'classification', description: 'CIFAR ResNet-20 of He et al. 2016 (16-32-64 channels, option-A shortcuts)', classes: 10, inChannels: 3, inputSize: [32, 32], hasWidth: true },
    (o) => new CifarResNet(20, o),
  ),
  entry(
    { name: 'squeezenet1_0', task: 'classification', description: 'SqueezeNet 1.0 (torchvision)', classes: 1000, inChannels: 3, inputSize: [224, 224], hasWidth: false },
    (o) => new SqueezeNet('1_0', o),
  ),
  entry(
    { name: 'squeezenet1_1', task: 'classification', description: 'SqueezeNet 1.1 (torchvision)', classes: 1000, inChannels: 3, inputSize: [224, 224], hasWidth: false },
    (o) => new SqueezeNet('1_1', o),
  ),
  entry(
    { name: 'unet', task: 'segmentation', description: 'U-Net, width 64, depth 4, transposed-conv up (milesial/Pytorch-UNet)', classes: 2, inChannels: 3, inputSize: [256, 256], hasWidth: true },
    (o) => new UNet(o),
  ),
  entry(
    { name: 'fastscnn', task: 'segmentation', description: 'Fast-SCNN (Tramac/Fast-SCNN-pytorch, no auxiliary head)', classes: 19, inChannels: 3, inputSize: [512, 1024], hasWidth: false },
    (o) => new FastSCNN(o),
  ),
];

export function modelNames(): string[] {
  return MODELS.map((m) => m.name);
}

export function modelInfo(name: string): ModelInfo {
  const info = MODELS.find((m) => m.name === name);
  if (!info) throw new UnknownNameError(`unknown model "${name}"; choose one of: ${modelNames().join(', ')}`);
  return info;
}

export function buildModel(name: string, options: ModelOptions = {}): Module {
  return modelInfo(name).build(options);
}
