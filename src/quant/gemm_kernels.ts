/**
 * The three GEMMs of each GEMM layer kind (forward, input gradient, weight gradient) over the
 * low-precision kernels, so that one quantized op serves Conv2d, ConvTranspose2d and Linear.
 * Results are divided by both operands' scales (the kernels' contract).
 */
import { InvalidArgumentError } from '../errors.js';
import {
  convOutputSize,
  lowpConv2dBackwardData,
  lowpConv2dBackwardWeight,
  lowpConv2dForward,
  lowpConvGeometry,
  lowpGemm,
  type LowpConvShape,
  type LowpGemmOptions,
  type LowpOperand,
} from '../kernels/index.js';
import { Conv2d, ConvTranspose2d, Linear, type GemmLayer } from '../nn/index.js';
import { conv2dGradients } from '../ops/index.js';
import { formatShape, type Tensor } from '../tensor/index.js';

export interface LayerGemms {
  outputShape: number[];
  /** Channels the bias adds to, and positions per channel per example. */
  channels: number;
  plane: number;
  forward(x: LowpOperand, w: LowpOperand, o: LowpGemmOptions): Float32Array;
  inputGrad(e: LowpOperand, w: LowpOperand, o: LowpGemmOptions): Float32Array;
  weightGrad(e: LowpOperand, x: LowpOperand, o: LowpGemmOptions): Float32Array;
  /**
   * Convolutions only: both gradients of a float32 backward (SFP8's) from the float32 output
   * gradient and the dequantized forward operands, through conv2d's own float32 path, so that
   * such a backward is the fp32 recipe's given the same operands (Winograd where it applies).
   */
  floatBackward?(g: Float32Array, x: Float32Array | null, w: Float32Array | null): { gx: Float32Array | null; gw: Float32Array | null };
}

function pair(v: number | [number, number] | undefined, fallback: number): [number, number] {
  return v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : v;
}

function convShape(layer: Conv2d, x: Tensor): LowpConvShape {
  const [batch, channels, height, width] = x.shape;
  const [outChannels, cig, kernelH, kernelW] = layer.weight.shape;
  const groups = layer.options.groups ?? 1;
  if (x.rank !== 4 || channels !== cig * groups) {
    throw new InvalidArgumentError(`${layer.describe()}: input ${formatShape(x.shape)}; expected [N, ${cig * groups}, H, W]`);
  }
  const [strideH, strideW] = pair(layer.options.stride, 1);
  const [padH, padW] = pair(layer.options.padding, 0);
  const [dilationH, dilationW] = pair(layer.options.dilation, 1);
  const outH = convOutputSize(height, kernelH, strideH, padH, dilationH);
  const outW = convOutputSize(width, kernelW, strideW, padW, dilationW);
  if (outH < 1 || outW < 1) throw new InvalidArgumentError(`${layer.describe()}: input ${formatShape(x.shape)} is smaller than the kernel`);
  return { batch, channels, height, width, outChannels, kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW, groups, outH, outW };
}

/** A transposed convolution is the input-gradient GEMM of the convolution from its output to its input. */
function transposedShape(layer: ConvTranspose2d, x: Tensor): LowpConvShape {
  const [batch, inChannels, height, width] = x.shape;
  const [wIn, ocg, kernelH, kernelW] = layer.weight.shape;
  const groups = layer.options.groups ?? 1;
  if (x.rank !== 4 || inChannels !== wIn) throw new InvalidArgumentError(`${layer.describe()}: input ${formatShape(x.shape)}; expected [N, ${wIn}, H, W]`);
  const [strideH, strideW] = pair(layer.options.stride, 1);
  const [padH, padW] = pair(layer.options.padding, 0);
  const [dilationH, dilationW] = pair(layer.options.dilation, 1);
  const [outPadH, outPadW] = pair(layer.options.outputPadding, 0);
  const outH = (height - 1) * strideH - 2 * padH + dilationH * (kernelH - 1) + outPadH + 1;
  const outW = (width - 1) * strideW - 2 * padW + dilationW * (kernelW - 1) + outPadW + 1;
  // The convolution C with input [N, ocg*groups, outH, outW] and output [N, inChannels, H, W].
  return {
    batch, channels: ocg * groups, height: outH, width: outW, outChannels: inChannels, kernelH, kernelW,
    strideH, strideW, padH, padW, dilationH, dilationW, groups, outH: height, outW: width,
  };
}

export function layerGemms(layer: GemmLayer, x: Tensor): LayerGemms {
  if (layer instanceof Conv2d) {
    const s = convShape(layer, x);
    return {
      outputShape: [s.batch, s.outChannels, s.outH, s.outW],
      channels: s.outChannels,
      plane: s.outH * s.outW,
      forward: (xo, wo, o) => lowpConv2dForward(xo, wo, s, o),
      inputGrad: (e, wo, o) => lowpConv2dBackwardData(e, wo, s, o),
      weightGrad: (e, xo, o) => lowpConv2dBackwardWeight(e, xo, s, o),
      floatBackward: (g, xf, wf) =>
        conv2dGradients({ g, x: xf, weight: wf, batch: s.batch, channels: s.channels, outChannels: s.outChannels, groups: s.groups, geometry: lowpConvGeometry(s) }),
    };
  }
  if (layer instanceof ConvTranspose2d) {
    const s = transposedShape(layer, x);
    return {
      outputShape: [s.batch, s.channels, s.height, s.width],
      channels: s.channels,
      plane: s.height * s.width,
      forward: (xo, wo, o) => lowpConv2dBackwardData(xo, wo, s, o),
      inputGrad: (e, wo, o) => lowpConv2dForward(e, wo, s, o),
      weightGrad: (e, xo, o) => lowpConv2dBackwardWeight(xo, e, s, o),
    };
  }
  if (layer instanceof Linear) {
    if (x.rank !== 2 || x.shape[1] !== layer.inFeatures) {
      throw new InvalidArgumentError(`${layer.describe()}: input ${formatShape(x.shape)}; expected [N, ${layer.inFeatures}]`);
    }
    const n = x.shape[0];
    const inF = layer.inFeatures;
    const outF = layer.outFeatures;
    return {
      outputShape: [n, outF],
      channels: outF,
      plane: 1,
      forward: (xo, wo, o) => lowpGemm(n, outF, inF, xo, wo, { ...o, transB: true }),
      inputGrad: (e, wo, o) => lowpGemm(n, inF, outF, e, wo, o),
      weightGrad: (e, xo, o) => lowpGemm(outF, inF, n, e, xo, { ...o, transA: true }),
    };
  }
  throw new InvalidArgumentError(`quantized GEMM: unsupported layer ${layer.describe()}`);
}
