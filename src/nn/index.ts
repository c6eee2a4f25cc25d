/** Modules, layers, initialization, summaries and the model zoo. */
export { Module, withForwardTrace } from './module.js';
export type { ForwardTrace } from './module.js';
export { Conv2d, ConvTranspose2d, FLOAT32_COMPUTE, GemmLayer, Linear, float32Compute, probedFloat32Compute, useFloat32Compute } from './gemm_layers.js';
export type { Conv2dConfig, ConvTranspose2dConfig, GemmCompute, LinearConfig } from './gemm_layers.js';
export {
  AdaptiveAvgPool2d,
  AvgPool2d,
  BatchNorm2d,
  Dropout,
  Flatten,
  Hardswish,
  Identity,
  MaxPool2d,
  NamedSequential,
  ReLU,
  ReLU6,
  Sequential,
  Upsample,
} from './layers.js';
export { defaultLayerInit, fans, kaimingNormal, kaimingUniform, normal, uniform, withoutInit } from './init.js';
export type { FanMode } from './init.js';
export { summarize } from './summary.js';
export type { ModelSummary, SummaryRow } from './summary.js';
export * from './models/index.js';
