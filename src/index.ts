/** Octet's public API. */
export * from './errors.js';
export {
  PRESETS,
  ROUNDINGS,
  allocCodes,
  checkRounding,
  decodeCode,
  defineFormat,
  encodeValue,
  formatNames,
  layoutOf,
  makeQTensor,
  resolveFormat,
  decodeReference,
  encodeReference,
  quantizeReference,
  E8M0,
  decodeE8M0,
  encodeE8M0,
} from './formats/index.js';
export type { CastOptions, CodeArray, Format, FormatLike, FormatSpec, QTensor, Rounding, ScaleFormat, SpecialValues } from './formats/index.js';
export {
  decode,
  encode,
  gemm,
  im2col,
  col2im,
  convGeometry,
  transposedConvGeometry,
  kernelThreads,
  lowpConv2dBackwardData,
  lowpConv2dBackwardWeight,
  lowpConv2dForward,
  lowpGemm,
  lowpGemmReference,
  blockQuantize,
  blockQuantizeReference,
  blockScaledGemm,
  blockScaledGemmReference,
  blockConv2dForward,
  blockConv2dBackwardData,
  blockConv2dBackwardWeight,
  nativeCore,
  nativeUnavailableReason,
  quantize,
  setKernelThreads,
  bsrFromDense,
  bsrToDense,
  bsrTranspose,
  bsrGemm,
  bsrLowpGemm,
  bsrSampledGemm,
  bsrConv2dForward,
} from './kernels/index.js';
export type {
  FastCastOptions,
  GemmOptions,
  ColumnGeometry,
  ConvAlgorithm,
  ConvGeometry,
  ConvOptions,
  LowpGemmOptions,
  LowpOperand,
  LowpOutput,
  NativeInfo,
  BlockGemmOptions,
  BlockQTensor,
  BlockSpec,
  ConvBlocks,
  ScaleKind,
  BsrMatrix,
  BsrGemmOptions,
  BsrLowpOptions,
  CodedImages,
} from './kernels/index.js';
export * from './sparse/index.js';
export * from './tensor/index.js';
export * from './autograd/index.js';
export * from './ops/index.js';
export * from './data/index.js';
export * from './nn/index.js';
export * from './optim/index.js';
export * from './quant/index.js';
export * from './train/index.js';
