/**
 * What a GEMM layer computes, as data: a linear map, a convolution or a transposed convolution
 * with its options. A layer hands this to its compute with its input, weight and bias; the
 * float32 compute runs the op for it, and the quantized op (quantized_gemm.ts) runs the product's
 * three GEMMs on the low-precision kernels. Nobody switches on layer classes.
 */
import { InvalidArgumentError } from '../errors.js';
import {
  blockConv2dBackwardData, blockConv2dBackwardWeight, blockConv2dForward, blockScaledProduct, bsrLowpConv2dForward, bsrLowpConv2dInputGradient, bsrLowpConv2dWeightGradient, convGeometry, groupColumns,
  lowpConv2dBackwardData, lowpConv2dBackwardWeight, lowpConv2dForward, lowpGemm, sparseConvWins, sparseInputGradientWins, sparseWeightGradientWins, transposedConvGeometry, zeroPruned,
  type ConvAlgorithm, type ConvBlocks, type ConvGeometry, type ConvOptions, type LowpGemmOptions, type LowpOperand, type SparsePattern,
} from '../kernels/index.js';
import { formatShape, type Tensor } from '../tensor/index.js';
import { conv2d, conv2dGradients, convTranspose2d } from './conv.js';
import { linear } from './matmul.js';

export type GemmProduct =
  | { readonly kind: 'linear' }
  /**
   * `pruned`: the weight's keep pattern where the layer is pruned in blocks: a quantized weight
   * gradient's entries outside its kept blocks are +0 before it is quantized (its scale comes from
   * the kept entries, as a block-sparse product computes only those). `sparse`: the same pattern
   * where the forward and gradients may run on the block-sparse kernel (absent with `kernels:
   * 'dense'`, which keeps every product dense).
   */
  | { readonly kind: 'conv2d'; readonly options: ConvOptions; readonly sparse?: SparsePattern; readonly pruned?: SparsePattern }
  | { readonly kind: 'convTranspose2d'; readonly options: ConvOptions };

/** The float32 op of a product; `algorithm` chooses how float32 convolutions run (default: defaultConvAlgorithm()). */
export function runProduct(x: Tensor, weight: Tensor, bias: Tensor | null, product: GemmProduct, algorithm?: ConvAlgorithm): Tensor {
  switch (product.kind) {
    case 'linear':
      return linear(x, weight, bias);
    case 'conv2d':
      return conv2d(x, weight, bias, { ...product.options, algorithm, sparse: product.sparse });
    case 'convTranspose2d':
      return convTranspose2d(x, weight, bias, { ...product.options, algorithm });
  }
}

/**
 * A GEMM's options: the low-precision GEMM's, and with `blocks` the operands quantized in blocks
 * along that GEMM's K from their float32 values (src/kernels/block_gemm.ts), by role: x the
 * layer's input, w its weight, e the output gradient.
 */
export type ProductOptions = LowpGemmOptions & {
  blocks?: ConvBlocks;
  /**
   * Weight gradient only: nothing reads its entries outside a pruned weight's kept blocks (the
   * recipe does not quantize weight gradients by their amax), so a pruned convolution may return
   * them as +0 from the block-sparse kernel.
   */
  prunedGradientUnread?: boolean;
};

/**
 * The three GEMMs of a product on given operands (forward, input gradient, weight gradient), over
 * the low-precision kernels; results are divided by both operands' scales (the kernels' contract).
 */
export interface ProductKernels {
  outputShape: number[];
  /** Channels the bias adds to, and positions per channel per example. */
  channels: number;
  plane: number;
  forward(x: LowpOperand, w: LowpOperand, o: ProductOptions): Float32Array;
  inputGrad(e: LowpOperand, w: LowpOperand, o: ProductOptions): Float32Array;
  weightGrad(e: LowpOperand, x: LowpOperand, o: ProductOptions): Float32Array;
  /**
   * Convolutions only: both gradients of a float32 backward (SFP8's) from the float32 output
   * gradient and the dequantized forward operands, through conv2d's own float32 path, so that
   * such a backward is the fp32 recipe's given the same operands (Winograd where it applies).
   */
  /**
   * Pruned convolutions only: zero a weight gradient's entries outside the kept blocks (in place),
   * as the block-sparse weight gradient leaves them: before a quantized weight gradient takes its
   * scale, and for comparisons with dense shadow products.
   */
  zeroPruned?(dw: Float32Array): Float32Array;
  floatBackward?(
    g: Float32Array, x: Float32Array | null, w: Float32Array | null, algorithm: ConvAlgorithm, prunedGradientUnread: boolean,
  ): { gx: Float32Array | null; gw: Float32Array | null };
}

/**
 * A pruned weight's forward on the block-sparse kernel where it gives the dense product's bits
 * (bsrLowpConv2dForward: codes, float32 accumulation) and sparseConvWins chooses it; else null.
 */
function sparseForward(s: ConvGeometry, sparse: SparsePattern | undefined, xo: LowpOperand, wo: LowpOperand, o: ProductOptions): Float32Array | null {
  if (!sparse || o.blocks || s.groups !== 1 || !sparseConvWins(sparse, 'direct')) return null;
  return bsrLowpConv2dForward(sparse, wo, xo, groupColumns(s), s.batch, o);
}

/**
 * A pruned weight's input gradient on the sparse kernel where it gives the dense product's bits
 * (bsrLowpConv2dInputGradient: codes, float32 accumulation, finite values) and
 * sparseInputGradientWins chooses it; else null.
 */
function sparseInputGrad(s: ConvGeometry, sparse: SparsePattern | undefined, e: LowpOperand, wo: LowpOperand, o: ProductOptions): Float32Array | null {
  if (!sparse || o.blocks || s.groups !== 1 || !sparseInputGradientWins(sparse, 'codes', s.height * s.width)) return null;
  return bsrLowpConv2dInputGradient(sparse, e, wo, groupColumns(s), s.batch, o);
}

/**
 * A pruned weight's gradient on the block-sparse kernel where nothing reads its pruned entries,
 * it gives the dense product's bits at the kept ones (bsrLowpConv2dWeightGradient: codes, float32
 * accumulation) and sparseWeightGradientWins chooses it; else null.
 */
function sparseWeightGrad(s: ConvGeometry, sparse: SparsePattern | undefined, e: LowpOperand, xo: LowpOperand, o: ProductOptions): Float32Array | null {
  if (!sparse || !o.prunedGradientUnread || o.blocks || s.groups !== 1 || !sparseWeightGradientWins(sparse, 'codes')) return null;
  return bsrLowpConv2dWeightGradient(sparse, e, xo, groupColumns(s), s.batch, o);
}

function convKernels(s: ConvGeometry, sparse?: SparsePattern, pruned?: SparsePattern): ProductKernels {
  // The last weight gradient the block-sparse kernel computed (this product's node's own).
  let sparseGradient: Float32Array | null = null;
  return {
    outputShape: [s.batch, s.outChannels, s.outH, s.outW],
    channels: s.outChannels,
    plane: s.outH * s.outW,
    forward: (xo, wo, o) => sparseForward(s, sparse, xo, wo, o) ?? (o.blocks ? blockConv2dForward(xo, wo, s, o.blocks, o) : lowpConv2dForward(xo, wo, s, o)),
    inputGrad: (e, wo, o) => sparseInputGrad(s, sparse, e, wo, o) ?? (o.blocks ? blockConv2dBackwardData(e, wo, s, o.blocks, o) : lowpConv2dBackwardData(e, wo, s, o)),
    weightGrad: (e, xo, o) => {
      sparseGradient = sparseWeightGrad(s, sparse, e, xo, o);
      return sparseGradient ?? (o.blocks ? blockConv2dBackwardWeight(e, xo, s, o.blocks, o) : lowpConv2dBackwardWeight(e, xo, s, o));
    },
    // The block-sparse kernel's gradient is +0 outside the kept blocks already.
    ...(pruned ? { zeroPruned: (dw: Float32Array) => (dw === sparseGradient && sparse === pruned ? dw : zeroPruned(dw, pruned)) } : {}),
    floatBackward: (g, xf, wf, algorithm, prunedGradientUnread) => conv2dGradients({ g, x: xf, weight: wf, geometry: s, algorithm, sparse, prunedGradientUnread }),
  };
}

function swapRoles(o: ProductOptions): ProductOptions {
  return o.blocks ? { ...o, blocks: { ...o.blocks, e: o.blocks.x, x: o.blocks.e } } : o;
}

/**
 * A transposed convolution is the convolution from its output to its input run backwards: its
 * forward is that convolution's input gradient, its input gradient that convolution's forward,
 * and its weight gradient that convolution's with the operands' roles swapped.
 */
function transposedKernels(s: ConvGeometry): ProductKernels {
  const conv = convKernels(s);
  return {
    outputShape: [s.batch, s.channels, s.height, s.width],
    channels: s.channels,
    plane: s.height * s.width,
    // Block roles swap with the operands' places: the transposed convolution's input plays the
    // convolution's output gradient, its output gradient the convolution's input.
    forward: (xo, wo, o) => conv.inputGrad(xo, wo, swapRoles(o)),
    inputGrad: (e, wo, o) => conv.forward(e, wo, swapRoles(o)),
    weightGrad: (e, xo, o) => conv.weightGrad(xo, e, swapRoles(o)),
  };
}

function linearKernels(x: Tensor, weight: Tensor): ProductKernels {
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new InvalidArgumentError(`linear: input ${formatShape(x.shape)} and weight ${formatShape(weight.shape)}; expected [N, in] and [out, in]`);
  }
  const n = x.shape[0];
  const [outF, inF] = weight.shape;
  return {
    outputShape: [n, outF],
    channels: outF,
    plane: 1,
    forward: (xo, wo, o) => (o.blocks ? blockScaledProduct(n, outF, inF, xo, wo, o.blocks.x, o.blocks.w, { ...o, transB: true }) : lowpGemm(n, outF, inF, xo, wo, { ...o, transB: true })),
    inputGrad: (e, wo, o) => (o.blocks ? blockScaledProduct(n, inF, outF, e, wo, o.blocks.e, o.blocks.w, o) : lowpGemm(n, inF, outF, e, wo, o)),
    weightGrad: (e, xo, o) => (o.blocks ? blockScaledProduct(outF, inF, n, e, xo, o.blocks.e, o.blocks.x, { ...o, transA: true }) : lowpGemm(outF, inF, n, e, xo, { ...o, transA: true })),
  };
}

/** The product's kernels for this input and weight, its geometry resolved and checked once. */
export function productKernels(x: Tensor, weight: Tensor, product: GemmProduct): ProductKernels {
  switch (product.kind) {
    case 'linear':
      return linearKernels(x, weight);
    case 'conv2d':
      return convKernels(convGeometry(x.shape, weight.shape, product.options, 'conv2d'), product.sparse, product.pruned ?? product.sparse);
    case 'convTranspose2d':
      return transposedKernels(transposedConvGeometry(x.shape, weight.shape, product.options, 'convTranspose2d'));
  }
}
