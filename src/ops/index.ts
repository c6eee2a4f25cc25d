/** Differentiable ops: each is a kernel call plus a registered gradient rule. */
export { add, hardswish, mul, relu, relu6, scale, sub } from './elementwise.js';
export type { InPlaceOptions } from './elementwise.js';
export { mean, sum } from './reduce.js';
export { concat, flatten, reshape, subsamplePadChannels } from './shape_ops.js';
export { linear, matmul } from './matmul.js';
export { conv2d, conv2dGradients, convTranspose2d } from './conv.js';
export type { Conv2dGradientInputs } from './conv.js';
export type { Conv2dOptions, ConvTranspose2dOptions } from './conv.js';
export { batchNorm2d } from './norm.js';
export type { BatchNormOptions } from './norm.js';
export { adaptiveAvgPool2d, avgPool2d, maxPool2d } from './pool.js';
export type { AvgPool2dOptions, Pool2dOptions } from './pool.js';
export { upsampleBilinear2d, upsampleNearest2d } from './upsample.js';
export type { UpsampleOptions } from './upsample.js';
export { dropout } from './dropout.js';
export { softmaxCrossEntropy } from './loss.js';
export type { CrossEntropyOptions } from './loss.js';
