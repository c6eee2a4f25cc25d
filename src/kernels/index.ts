/** The hot loops: native fast paths with their TypeScript references. */
export { gemm, gemmReference } from './gemm.js';
export type { GemmOptions } from './gemm.js';
export { columnsGemm, columnsGemmReference } from './columns_gemm.js';
export {
  inputGradientGeometry, moveRows, moveRowsReference, rotatedKernel, rotatedKernelReference, scatterPhase, scatterPhaseReference,
} from './conv_layout.js';
export type { PhaseBlock, RowBlock } from './conv_layout.js';
export type { ColumnSource, ColumnsGemmOptions, GemmInput } from './columns_gemm.js';
export {
  col2im,
  col2imBatch,
  col2imBatchReference,
  col2imReference,
  im2col,
  im2colBatch,
  im2colBatchReference,
  im2colReference,
} from './im2col.js';
export { checkConvGeometry, convGeometry, convOutputSize, groupColumns, resolvePair, transposedConvGeometry } from './conv_geometry.js';
export type { ColumnGeometry, ConvGeometry, ConvOptions, Pair } from './conv_geometry.js';
export { decode, encode, quantize } from './codec.js';
export {
  depthwiseForward, depthwiseForwardReference, depthwiseGeometry, depthwiseInputGradient, depthwiseInputGradientReference, depthwiseWeightGradient,
  depthwiseWeightGradientReference, isDepthwise,
} from './depthwise.js';
export type { FastCastOptions } from './codec.js';
export { DEFAULT_POOL_LIMIT, bufferPoolStats, clearBufferPool, freshArray, markBackward, markForward, recycle, setBufferPoolLimit, takeBuffer, takeCodes, takeZeroed } from './buffer_pool.js';
export type { BufferPoolStats } from './buffer_pool.js';
export { nativeCore, nativeUnavailableReason } from './native.js';
export type { NativeInfo } from './native.js';
export { kernelThreads, setKernelThreads } from './threads.js';
export {
  CONV_ALGORITHMS, defaultConvAlgorithm, winogradForward, winogradForwardReference, winogradPlan, winogradWeightGradient, winogradWeightGradientReference,
} from './winograd.js';
export type { ConvAlgorithm, WinogradPlan } from './winograd.js';
export {
  adamwApply,
  adamwApplyReference,
  adamwMasked,
  adamwMoments,
  adamwMomentsReference,
  addArrays,
  batchNormBackward,
  batchNormBackwardCodes,
  batchNormForward,
  channelBiasAdd,
  channelMeanVar,
  channelSum,
  maskBytes,
  reluBackward,
  reluForward,
  zeroWhere,
  zeroWhereReference,
} from './elementwise.js';
export type { ChannelShape } from './elementwise.js';
export { alignedOf, decodeOperand, lowpGemm, lowpGemmColumns, lowpGemmDecoded, lowpGemmDecodedReference, lowpGemmReference, nativeOperand } from './lowp_gemm.js';
export type { DecodedOperand, LowpGemmOptions, LowpOperand, LowpOutput, NativeOperand } from './lowp_gemm.js';
export { lowpConv2dBackwardData, lowpConv2dBackwardWeight, lowpConv2dForward } from './lowp_conv.js';
export {
  absMax,
  absMaxReference,
  countUnderflowReference,
  dequantize,
  divideByScale,
  encodeScaled,
  encodeScaledReference,
  scaleCountOverflow,
  scaleCountOverflowReference,
} from './quant_stats.js';
export type { ScaledEncoding, UnderflowCount } from './quant_stats.js';
export { countAtMost, countsAndQuantiles, errorEnergy, errorEnergyReference, quantiles, scaledLog2, valueHistogram } from './value_stats.js';
export type { ErrorEnergy, Threshold, ValueHistogram } from './value_stats.js';
export { ALIGNED_MODELS, HOPPER_MODELS, alignedGemm, checkAligned, hopperGemm, isAlignedModel } from './hopper_gemm.js';
export type { AlignedAccumulator, HopperGemmOptions, HopperModel } from './hopper_gemm.js';
export { SCALE_KINDS, blockQuantize, blockQuantizeReference, blockScale, blockScaleAt, dequantizeBlocks } from './block_quant.js';
export type { BlockQTensor, BlockSpec, ScaleKind } from './block_quant.js';
export { blockRuns, blockScaledGemm, blockScaledGemmReference, blockScaledProduct, runKey } from './block_gemm.js';
export type { BlockGemmOptions, ObservedBlockSpec } from './block_gemm.js';
export { blockConv2dBackwardData, blockConv2dBackwardWeight, blockConv2dForward } from './block_conv.js';
export type { ConvBlocks } from './block_conv.js';
export {
  blockGrid, bsrConv2dForward, bsrConv2dForwardReference, bsrDensity, bsrFromDense, bsrFromPattern, bsrGemm, bsrGemmReference, bsrLowpConv2dForward, bsrLowpGemm, bsrSampledGemm,
  bsrSampledGemmReference, bsrToDense, bsrTranspose, bsrTransposedFromPattern, fma32, keptFraction, sparseConvWins, sparseInputGradientWins, sparseWeightGradientWins, bsrStructure, zeroPruned,
} from './block_sparse.js';
export type { BsrGemmOptions, BsrLowpOptions, BsrMatrix, CodedImages, SparsePattern } from './block_sparse.js';
export { bsrConv2dInputGradient, bsrConv2dWeightGradient, bsrLowpConv2dInputGradient, bsrLowpConv2dWeightGradient, bsrRotatedConv2dInputGradient } from './block_sparse_conv.js';
export type { BsrConvOptions, BsrWeightGradientOptions } from './block_sparse_conv.js';
