/** The model zoo. */
export { MODELS, buildModel, modelInfo, modelNames } from './registry.js';
export type { ModelInfo, ModelOptions, Task } from './registry.js';
export { CifarResNet, ResNet, resnet101, resnet18 } from './resnet.js';
export type { ClassifierConfig, ResNetConfig } from './resnet.js';
export { SqueezeNet } from './squeezenet.js';
export type { SqueezeNetVersion } from './squeezenet.js';
export { UNet } from './unet.js';
export type { UNetConfig } from './unet.js';
export { FastSCNN } from './fastscnn.js';
export type { FastScnnConfig } from './fastscnn.js';
