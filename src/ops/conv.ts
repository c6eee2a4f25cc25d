/**
 * 2-D convolution and transposed convolution (NCHW) as GEMMs, with stride, padding, dilation and
 * groups (depthwise when groups = channels). conv2d's GEMMs read the column matrix straight from
 * the images (columnsGemm: no im2col buffer) and write their results straight into NCHW: the
 * forward, the weight gradient over the whole batch, and for stride 1 the input gradient as a
 * forward convolution of the output gradient with the rotated kernel (other strides fold W^T dY
 * back with col2im). 3x3 stride-1 convolutions run as Winograd products where winogradTile
 * chooses them (src/kernels/winograd.ts). Saved state is just the input (and the weight, for
 * the input gradient).
 */
import { record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import {
  channelBiasAdd, channelSum, col2im, col2imBatch, columnsGemm, convOutputSize, freshArray, gemm, im2col, inputGradientGeometry, moveRows, recycle, rotatedKernel, takeBuffer, takeZeroed, winogradFits, winogradForward, winogradTile, winogradWeightGradient, type WinogradShape,
  type ColumnSource, type ConvGeometry,
} from '../kernels/index.js';
import { Tensor, formatShape, type GradHandle } from '../tensor/index.js';
import { productOperands } from './saved.js';

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  outputPadding?: number | [number, number];
}

function pair(v: number | [number, number] | undefined, fallback: number, name: string, op: string, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : v;
  if (!p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new InvalidArgumentError(`${op}: ${name} is ${JSON.stringify(v)}; expected an integer >= ${min} or a pair of them`);
  }
  return p;
}

interface ConvSaved {
  groups: number;
  /** Geometry of one group of one image, in the direction of a forward convolution. */
  geometry: ConvGeometry;
  /** The input's values, kept only when the weight needs a gradient. */
  xData: Float32Array | null;
  /** The weight's values, kept only when the input needs a gradient. */
  weightData: Float32Array | null;
}

function saveConv(x: Tensor, weight: Tensor, groups: number, geometry: ConvGeometry): ConvSaved {
  const { aData: xData, bData: weightData } = productOperands(x, weight);
  return { groups, geometry, xData, weightData };
}

/** Column matrices are built for chunks of images of at most this many floats (2 MB), so the
 *  GEMM reads them from cache. */
const MAX_COLUMN_FLOATS = 1 << 19;

function kSizeOf(g: ConvGeometry): number {
  return g.channels * g.kernelH * g.kernelW;
}

/**
 * Run `fn` over chunks of images [n0, n0 + nc) with a column buffer sized for the chunk, so each
 * convolution is a few large GEMMs ([OC x K] by [K x nc*P]) rather than one per image.
 */
function forEachChunk(batch: number, g: ConvGeometry, fn: (n0: number, nc: number, col: Float32Array) => void): void {
  const perImage = kSizeOf(g) * g.outH * g.outW;
  const chunk = Math.max(1, Math.min(batch, Math.floor(MAX_COLUMN_FLOATS / Math.max(1, perImage))));
  const col = freshArray(chunk * perImage);
  for (let n0 = 0; n0 < batch; n0 += chunk) {
    const nc = Math.min(chunk, batch - n0);
    fn(n0, nc, col.subarray(0, nc * perImage));
  }
}

/** The view of NCHW data starting at image n0, channel c0. */
function imageAt(data: Float32Array, n0: number, channels: number, c0: number, plane: number): Float32Array {
  return data.subarray((n0 * channels + c0) * plane);
}

/** The column matrix of group `grp`'s channels of NCHW data with `channels` channels. */
function groupColumns(data: Float32Array, grp: number, batch: number, g: ConvGeometry, channels: number): ColumnSource {
  const plane = g.height * g.width;
  return { x: data.subarray(grp * g.channels * plane), geometry: g, batch, imageStride: channels * plane };
}

/** Whether the column matrix is the image itself (1x1 kernel, stride 1, no padding). */
function colIsImage(g: ConvGeometry): boolean {
  return g.kernelH === 1 && g.kernelW === 1 && g.strideH === 1 && g.strideW === 1 && g.padH === 0 && g.padW === 0;
}

function columns(image: Float32Array, g: ConvGeometry, scratch: Float32Array): Float32Array {
  if (colIsImage(g)) return image;
  im2col(image, scratch, g);
  return scratch;
}

function checkConvInputs(op: string, x: Tensor, weight: Tensor, bias: Tensor | null, groups: number, transposed: boolean): void {
  if (x.rank !== 4 || weight.rank !== 4) {
    throw new InvalidArgumentError(
      `${op}: input ${formatShape(x.shape)} and weight ${formatShape(weight.shape)}; expected [N, C, H, W] and a 4-D weight`,
    );
  }
  if (!Number.isInteger(groups) || groups < 1) throw new InvalidArgumentError(`${op}: groups is ${groups}; expected a positive integer`);
  const channels = x.shape[1];
  const expectedWeightIn = transposed ? channels : channels / groups;
  const weightIn = transposed ? weight.shape[0] : weight.shape[1];
  if (channels % groups !== 0 || weightIn !== expectedWeightIn || (!transposed && weight.shape[0] % groups !== 0)) {
    throw new InvalidArgumentError(
      `${op}: input ${formatShape(x.shape)} with groups=${groups} does not fit weight ${formatShape(weight.shape)}; ` +
        (transposed ? `expected [${channels}, C_out/groups, KH, KW]` : `expected [C_out, ${channels / groups}, KH, KW] with C_out divisible by groups`),
    );
  }
  const outChannels = transposed ? weight.shape[1] * groups : weight.shape[0];
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outChannels)) {
    throw new InvalidArgumentError(`${op}: bias ${formatShape(bias.shape)}; expected [${outChannels}]`);
  }
}

function addBias(out: Float32Array, bias: Tensor | null, batch: number, channels: number, plane: number): void {
  if (bias) channelBiasAdd(out, bias.data, { batch, channels, plane });
}

function biasGrad(g: Float32Array, batch: number, channels: number, plane: number): Float32Array {
  return Float32Array.from(channelSum(g, { batch, channels, plane }));
}

/**
 * The Winograd product for one group's convolution (x with `channels` channels per image, the
 * output with outChannels), or null where winogradTile keeps the direct product or the batch is
 * too large for the kernels' offsets.
 */
function winogradPlan(g: ConvGeometry, batch: number, ocg: number, channels: number, outChannels: number): WinogradShape | null {
  const tile = winogradTile(g, ocg);
  if (!tile) return null;
  const shape: WinogradShape = {
    tile, batch, channels: g.channels, height: g.height, width: g.width, outChannels: ocg, padH: g.padH, padW: g.padW,
    xImageStride: channels * g.height * g.width, yImageStride: outChannels * g.outH * g.outW,
  };
  return winogradFits(shape) ? shape : null;
}

/**
 * One group's convolution y_g = w_g * x_g on the SGEMM with implicit columns, written into NCHW
 * `out` (outChannels channels per image, the group's from channel grp * ocg). x holds `channels`
 * channels per image.
 */
function columnsConvolution(x: Float32Array, grp: number, batch: number, g: ConvGeometry, channels: number, w: Float32Array, ocg: number, out: Float32Array, outChannels: number): void {
  const plane = g.outH * g.outW;
  columnsGemm(ocg, batch * plane, g.channels * g.kernelH * g.kernelW, w, groupColumns(x, grp, batch, g, channels), out.subarray(grp * ocg * plane), {
    outImages: { plane, imageStride: outChannels * plane },
  });
}

/** y = conv2d(x, weight) + bias; x [N, C, H, W], weight [OC, C/groups, KH, KW]. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, options: Conv2dOptions = {}): Tensor {
  const groups = options.groups ?? 1;
  checkConvInputs('conv2d', x, weight, bias, groups, false);
  const [batch, channels, height, width] = x.shape;
  const [outChannels, , kernelH, kernelW] = weight.shape;
  const [strideH, strideW] = pair(options.stride, 1, 'stride', 'conv2d', 1);
  const [padH, padW] = pair(options.padding, 0, 'padding', 'conv2d', 0);
  const [dilationH, dilationW] = pair(options.dilation, 1, 'dilation', 'conv2d', 1);
  const outH = convOutputSize(height, kernelH, strideH, padH, dilationH);
  const outW = convOutputSize(width, kernelW, strideW, padW, dilationW);
  if (outH < 1 || outW < 1) {
    throw new InvalidArgumentError(`conv2d: input ${formatShape(x.shape)} is smaller than the dilated kernel ${kernelH}x${kernelW} after padding`);
  }
  const cg = channels / groups;
  const ocg = outChannels / groups;
  const geometry: ConvGeometry = { channels: cg, height, width, kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW, outH, outW };
  const kSize = kSizeOf(geometry);
  const plane = outH * outW;
  // Every element is written below: each group's GEMM puts its rows straight into NCHW.
  const out = new Tensor(takeBuffer(batch * outChannels * plane), [batch, outChannels, outH, outW]);
  const shape = winogradPlan(geometry, batch, ocg, channels, outChannels);
  for (let grp = 0; grp < groups; grp++) {
    const wg = weight.data.subarray(grp * ocg * kSize, (grp + 1) * ocg * kSize);
    if (shape) winogradForward(x.data.subarray(grp * cg * height * width), wg, out.data.subarray(grp * ocg * plane), shape);
    else columnsConvolution(x.data, grp, batch, geometry, channels, wg, ocg, out.data, outChannels);
  }
  addBias(out.data, bias, batch, outChannels, outH * outW);
  return record('conv2d', [x, weight, bias], out, saveConv(x, weight, groups, geometry));
}

/**
 * What conv2dGradients needs: the output gradient and the operands its gradients read; each
 * gradient is computed when the operand it reads is given (as conv2d saves them).
 */
export interface Conv2dGradientInputs {
  /** Output gradient [N, OC, OH, OW]. */
  g: Float32Array;
  /** Input values [N, C, H, W]: given, the weight gradient is computed. */
  x: Float32Array | null;
  /** Weight values [OC, C/groups, KH, KW]: given, the input gradient is computed. */
  weight: Float32Array | null;
  batch: number;
  channels: number;
  outChannels: number;
  groups: number;
  /** One group's geometry (channels = C / groups). */
  geometry: ConvGeometry;
}

/**
 * conv2d's two gradients in float32, as its gradient rule computes them (Winograd where
 * winogradTile chooses it, else the SGEMM on implicit columns, col2im for strided input
 * gradients): also the backward of SFP8's quantized convolutions, whose backward is float32.
 */
export function conv2dGradients(a: Conv2dGradientInputs): { gx: Float32Array | null; gw: Float32Array | null } {
  const { g, x: xData, weight: weightData, batch, channels, outChannels, groups, geometry } = a;
  const cg = channels / groups;
  const ocg = outChannels / groups;
  const plane = geometry.outH * geometry.outW;
  const kSize = kSizeOf(geometry);
  const taps = geometry.kernelH * geometry.kernelW;
  const pixels = geometry.height * geometry.width;
  // Stride 1: the input gradient is a forward convolution of g (written whole); otherwise W^T g
  // folded back by col2im, which adds into gx.
  const dxGeometry = inputGradientGeometry(geometry, ocg);
  const gx = !weightData ? null : dxGeometry ? takeBuffer(batch * channels * pixels) : takeZeroed(batch * channels * pixels);
  const gw = xData ? freshArray(outChannels * kSize) : null;
  // dY_g as [OCg x N*P] for the weight gradient's GEMM (every element written before it is read);
  // Winograd reads g in place.
  const wShape = gw ? winogradPlan(geometry, batch, ocg, channels, outChannels) : null;
  const dxShape = gx && dxGeometry ? winogradPlan(dxGeometry, batch, cg, outChannels, channels) : null;
  const dy = (gw && !wShape) || (gx && !dxGeometry) ? takeBuffer(ocg * batch * plane) : null;
  for (let grp = 0; grp < groups; grp++) {
    if (dy) moveRows(dy, g, { n0: 0, count: batch, channels: outChannels, c0: grp * ocg, rows: ocg, plane }, 'gather');
    if (gw && wShape) {
      winogradWeightGradient(xData!.subarray(grp * cg * pixels), g.subarray(grp * ocg * plane), gw.subarray(grp * ocg * kSize, (grp + 1) * ocg * kSize), wShape);
    } else if (gw) {
      // dW_g = dY_g [OCg x N*P] x col_g^T [N*P x K], summed over the whole batch in one chain per element
      columnsGemm(ocg, kSize, batch * plane, dy!, groupColumns(xData!, grp, batch, geometry, channels), gw.subarray(grp * ocg * kSize, (grp + 1) * ocg * kSize), { transB: true });
    }
    if (gx && dxGeometry) {
      // dX_g = the forward convolution of dY_g with the rotated kernel, straight into NCHW (Winograd
      // reads the weights as that kernel in place)
      if (dxShape) {
        winogradForward(g.subarray(grp * ocg * plane), weightData!.subarray(grp * ocg * kSize, (grp + 1) * ocg * kSize), gx.subarray(grp * cg * pixels), { ...dxShape, flipped: true });
      } else {
        columnsConvolution(g, grp, batch, dxGeometry, outChannels, rotatedKernel(weightData!, grp, ocg, cg, taps), cg, gx, channels);
      }
    } else if (gx) {
      forEachChunk(batch, geometry, (n0, nc, col) => {
        // dcol = W_g^T [K, ocg] x dY_g [ocg, nc*P], folded back into the images
        gemm(kSize, nc * plane, ocg, weightData!.subarray(grp * ocg * kSize, (grp + 1) * ocg * kSize), dy!.subarray(n0 * plane), col, { transA: true, ldb: batch * plane });
        col2imBatch(col, imageAt(gx, n0, channels, grp * cg, pixels), geometry, nc, channels * pixels);
      });
    }
  }
  if (dy) recycle(dy);
  return { gx, gw };
}

registerGradient<ConvSaved>('conv2d', (node, g) => {
  const [x, weight, bias] = node.inputs as [GradHandle, GradHandle, GradHandle | null];
  const { groups, geometry, xData, weightData } = node.saved;
  const [batch, channels] = x.shape;
  const outChannels = weight.shape[0];
  // conv2d saved x only when the weight needs a gradient, the weight only when x does.
  const { gx, gw } = conv2dGradients({ g, x: xData, weight: weightData, batch, channels, outChannels, groups, geometry });
  return [gx, gw, bias?.requiresGrad ? biasGrad(g, batch, outChannels, geometry.outH * geometry.outW) : null];
});

/**
 * Transposed convolution (the adjoint of conv2d with the same geometry): x [N, C_in, H, W],
 * weight [C_in, C_out/groups, KH, KW]; output size (H - 1) * stride - 2 * padding +
 * dilation * (KH - 1) + outputPadding + 1.
 */
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  options: ConvTranspose2dOptions = {},
): Tensor {
  const groups = options.groups ?? 1;
  checkConvInputs('convTranspose2d', x, weight, bias, groups, true);
  const [batch, inChannels, height, width] = x.shape;
  const [, ocg, kernelH, kernelW] = weight.shape;
  const [strideH, strideW] = pair(options.stride, 1, 'stride', 'convTranspose2d', 1);
  const [padH, padW] = pair(options.padding, 0, 'padding', 'convTranspose2d', 0);
  const [dilationH, dilationW] = pair(options.dilation, 1, 'dilation', 'convTranspose2d', 1);
  const [outPadH, outPadW] = pair(options.outputPadding, 0, 'outputPadding', 'convTranspose2d', 0);
  if (outPadH >= Math.max(strideH, dilationH) || outPadW >= Math.max(strideW, dilationW)) {
    throw new InvalidArgumentError('convTranspose2d: outputPadding must be smaller than stride or dilation');
  }
  const outH = (height - 1) * strideH - 2 * padH + dilationH * (kernelH - 1) + outPadH + 1;
  const outW = (width - 1) * strideW - 2 * padW + dilationW * (kernelW - 1) + outPadW + 1;
  if (outH < 1 || outW < 1) throw new InvalidArgumentError(`convTranspose2d: output would be ${outH}x${outW}`);
  const outChannels = ocg * groups;
  const cg = inChannels / groups;
  // The forward-convolution geometry from the output (as image) to x (as columns).
  const geometry: ConvGeometry = {
    channels: ocg, height: outH, width: outW, kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW, outH: height, outW: width,
  };
  const plane = height * width;
  const kSize = ocg * kernelH * kernelW;
  const out = Tensor.zeros([batch, outChannels, outH, outW]);
  const dcol = new Float32Array(kSize * plane);
  for (let n = 0; n < batch; n++) {
    for (let grp = 0; grp < groups; grp++) {
      const xs = x.data.subarray((n * inChannels + grp * cg) * plane, (n * inChannels + (grp + 1) * cg) * plane);
      const w = weight.data.subarray(grp * cg * kSize, (grp + 1) * cg * kSize);
      const target = out.data.subarray((n * outChannels + grp * ocg) * outH * outW, (n * outChannels + (grp + 1) * ocg) * outH * outW);
      if (colIsImage(geometry)) {
        gemm(kSize, plane, cg, w, xs, target, { transA: true });
      } else {
        gemm(kSize, plane, cg, w, xs, dcol, { transA: true });
        col2im(dcol, target, geometry);
      }
    }
  }
  addBias(out.data, bias, batch, outChannels, outH * outW);
  return record('convTranspose2d', [x, weight, bias], out, saveConv(x, weight, groups, geometry));
}

registerGradient<ConvSaved>('convTranspose2d', (node, g) => {
  const [x, weight, bias] = node.inputs as [GradHandle, GradHandle, GradHandle | null];
  const { groups, geometry, xData, weightData } = node.saved;
  const [batch, inChannels, height, width] = x.shape;
  const ocg = weight.shape[1];
  const outChannels = ocg * groups;
  const cg = inChannels / groups;
  const plane = height * width;
  const outPlane = geometry.height * geometry.width;
  const kSize = ocg * geometry.kernelH * geometry.kernelW;
  const gx = x.requiresGrad ? new Float32Array(x.size) : null;
  const gw = weight.requiresGrad ? new Float32Array(weight.size) : null;
  const scratch = new Float32Array(colIsImage(geometry) ? 0 : kSize * plane);
  for (let n = 0; n < batch; n++) {
    for (let grp = 0; grp < groups; grp++) {
      const dy = g.subarray((n * outChannels + grp * ocg) * outPlane, (n * outChannels + (grp + 1) * ocg) * outPlane);
      const col = columns(dy, geometry, scratch);
      const xStart = (n * inChannels + grp * cg) * plane;
      if (gx) gemm(cg, plane, kSize, weightData!.subarray(grp * cg * kSize, (grp + 1) * cg * kSize), col, gx.subarray(xStart, xStart + cg * plane));
      if (gw) gemm(cg, kSize, plane, xData!.subarray(xStart, xStart + cg * plane), col, gw.subarray(grp * cg * kSize, (grp + 1) * cg * kSize), { transB: true, beta: 1 });
    }
  }
  return [gx, gw, bias?.requiresGrad ? biasGrad(g, batch, outChannels, outPlane) : null];
});
