/**
 * 2-D convolution and transposed convolution (NCHW) as GEMMs, with stride, padding, dilation and
 * groups (depthwise when groups = channels). conv2d's GEMMs read the column matrix straight from
 * the images (columnsGemm: no im2col buffer) and write their results straight into NCHW: the
 * forward, the weight gradient over the whole batch, and for stride 1 the input gradient as a
 * forward convolution of the output gradient with the rotated kernel (other strides fold W^T dY
 * back with col2im). 3x3 stride-1 convolutions run as Winograd products where winogradTile
 * chooses them (src/kernels/winograd.ts). A pruned weight's forward runs on the block-sparse
 * kernel where sparseConvWins says it is faster, and so do its input gradient
 * (sparseInputGradientWins) and its weight gradient (sparseWeightGradientWins) in the backward.
 * Saved state is just the input (and the weight, for the input gradient).
 */
import { record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import {
  bsrConv2dForward, bsrConv2dInputGradient, bsrConv2dWeightGradient, bsrFromPattern, bsrRotatedConv2dInputGradient, bsrStructure, bsrTransposedFromPattern, channelBiasAdd, channelSum, col2im, col2imBatch, columnsGemm, convGeometry, defaultConvAlgorithm, depthwiseForward, depthwiseGeometry,
  depthwiseInputGradient, depthwiseWeightGradient, gemm, groupColumns, im2col, isDepthwise,
  inputGradientGeometry, moveRows, recycle, rotatedKernel, sparseConvWins, sparseInputGradientWins, sparseWeightGradientWins, takeBuffer, takeZeroed, transposedConvGeometry, winogradForward,
  winogradPlan, winogradWeightGradient, type ColumnGeometry, type ColumnSource, type ConvAlgorithm, type ConvGeometry, type ConvOptions,
  type SparsePattern,
} from '../kernels/index.js';
import { Tensor, formatShape, type GradHandle } from '../tensor/index.js';
import { productOperands } from './saved.js';

/** A convolution op's options: its geometry's, and how float32 products run (default: defaultConvAlgorithm()). */
export type ConvOpOptions = ConvOptions & {
  algorithm?: ConvAlgorithm;
  /**
   * The weight's keep pattern where it is pruned in blocks (zeros outside kept blocks): the
   * forward then runs on the block-sparse kernel where sparseConvWins chooses it (one group only),
   * and the pattern goes with the saved state to the gradients (conv2dGradients).
   */
  sparse?: SparsePattern;
};

interface ConvSaved {
  geometry: ConvGeometry;
  algorithm: ConvAlgorithm;
  /** The weight's keep pattern, where the layer is pruned in blocks. */
  sparse?: SparsePattern;
  /** The input's values, kept only when the weight needs a gradient. */
  xData: Float32Array | null;
  /** The weight's values, kept only when the input needs a gradient. */
  weightData: Float32Array | null;
}

function saveConv(x: Tensor, weight: Tensor, geometry: ConvGeometry, algorithm: ConvAlgorithm, sparse?: SparsePattern): ConvSaved {
  const { aData: xData, bData: weightData } = productOperands(x, weight);
  return { geometry, algorithm, xData, weightData, ...(sparse ? { sparse } : {}) };
}

/** Record a convolution: its saved input and weight are borrowed values (GradNode.borrowed). */
function recordConv(op: string, x: Tensor, weight: Tensor, bias: Tensor | null, out: Tensor, saved: ConvSaved): Tensor {
  return record(op, [x, weight, bias], out, saved, undefined, [saved.xData, saved.weightData]);
}

/** Column matrices are built for chunks of images of at most this many floats (2 MB), so the
 *  GEMM reads them from cache. */
const MAX_COLUMN_FLOATS = 1 << 19;

function kSizeOf(g: ColumnGeometry): number {
  return g.channels * g.kernelH * g.kernelW;
}

/**
 * Run `fn` over chunks of images [n0, n0 + nc) with a column buffer sized for the chunk, so each
 * convolution is a few large GEMMs ([OC x K] by [K x nc*P]) rather than one per image.
 */
function forEachChunk(batch: number, g: ColumnGeometry, fn: (n0: number, nc: number, col: Float32Array) => void): void {
  const perImage = kSizeOf(g) * g.outH * g.outW;
  const chunk = Math.max(1, Math.min(batch, Math.floor(MAX_COLUMN_FLOATS / Math.max(1, perImage))));
  // Written whole by fn before it reads it (a GEMM's output), so stale pooled contents do not matter.
  const col = takeBuffer(chunk * perImage);
  for (let n0 = 0; n0 < batch; n0 += chunk) {
    const nc = Math.min(chunk, batch - n0);
    fn(n0, nc, col.subarray(0, nc * perImage));
  }
  recycle(col);
}

/** The view of NCHW data starting at image n0, channel c0. */
function imageAt(data: Float32Array, n0: number, channels: number, c0: number, plane: number): Float32Array {
  return data.subarray((n0 * channels + c0) * plane);
}

/** The column matrix of group `grp`'s channels of NCHW data with `channels` channels. */
function columnSource(data: Float32Array, grp: number, batch: number, g: ColumnGeometry, channels: number): ColumnSource {
  const plane = g.height * g.width;
  return { x: data.subarray(grp * g.channels * plane), geometry: g, batch, imageStride: channels * plane };
}

/** Whether the column matrix is the image itself (1x1 kernel, stride 1, no padding). */
function colIsImage(g: ColumnGeometry): boolean {
  return g.kernelH === 1 && g.kernelW === 1 && g.strideH === 1 && g.strideW === 1 && g.padH === 0 && g.padW === 0;
}

function columns(image: Float32Array, g: ColumnGeometry, scratch: Float32Array): Float32Array {
  if (colIsImage(g)) return image;
  im2col(image, scratch, g);
  return scratch;
}

function checkBias(op: string, bias: Tensor | null, outChannels: number): void {
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
 * One group's convolution y_g = w_g * x_g on the SGEMM with implicit columns, written into NCHW
 * `out` (the group's channels from grp * OC/groups).
 */
function columnsConvolution(x: Float32Array, grp: number, g: ConvGeometry, w: Float32Array, out: Float32Array): void {
  const plane = g.outH * g.outW;
  const ocg = g.outChannels / g.groups;
  const cols = groupColumns(g);
  columnsGemm(ocg, g.batch * plane, kSizeOf(cols), w, columnSource(x, grp, g.batch, cols, g.channels), out.subarray(grp * ocg * plane), {
    outImages: { plane, imageStride: g.outChannels * plane },
  });
}

/** y = conv2d(x, weight) + bias; x [N, C, H, W], weight [OC, C/groups, KH, KW]. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, options: ConvOpOptions = {}): Tensor {
  const { algorithm = defaultConvAlgorithm(), sparse, ...convOptions } = options;
  const geometry = convGeometry(x.shape, weight.shape, convOptions, 'conv2d');
  checkBias('conv2d', bias, geometry.outChannels);
  const { batch, channels, height, width, outChannels, groups, outH, outW } = geometry;
  const cg = channels / groups;
  const ocg = outChannels / groups;
  const kSize = cg * geometry.kernelH * geometry.kernelW;
  const plane = outH * outW;
  // Every element is written below: each group's GEMM puts its rows straight into NCHW.
  const out = new Tensor(takeBuffer(batch * outChannels * plane), [batch, outChannels, outH, outW]);
  const plan = winogradPlan(geometry, algorithm);
  if (sparse && groups === 1 && sparseConvWins(sparse, plan ? 'winograd' : 'direct')) {
    // The direct product's chains with the pruned products left out (src/kernels/block_sparse.ts).
    const bsr = bsrFromPattern(weight.data, sparse, true);
    bsrConv2dForward(bsr, x.data, groupColumns(geometry), batch, { out: out.data });
    recycle(bsr.values);
    addBias(out.data, bias, batch, outChannels, plane);
    return recordConv('conv2d', x, weight, bias, out, saveConv(x, weight, geometry, algorithm, sparse));
  }
  if (!plan && isDepthwise(geometry)) {
    // One channel per group: the direct kernel, the column path's chains without its per-channel GEMMs.
    depthwiseForward(x.data, weight.data, out.data, depthwiseGeometry(geometry), batch);
    addBias(out.data, bias, batch, outChannels, plane);
    return recordConv('conv2d', x, weight, bias, out, saveConv(x, weight, geometry, algorithm));
  }
  for (let grp = 0; grp < groups; grp++) {
    const wg = weight.data.subarray(grp * ocg * kSize, (grp + 1) * ocg * kSize);
    if (plan) winogradForward(x.data.subarray(grp * cg * height * width), wg, out.data.subarray(grp * ocg * plane), plan);
    else columnsConvolution(x.data, grp, geometry, wg, out.data);
  }
  addBias(out.data, bias, batch, outChannels, plane);
  return recordConv('conv2d', x, weight, bias, out, saveConv(x, weight, geometry, algorithm, groups === 1 ? sparse : undefined));
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
  geometry: ConvGeometry;
  algorithm: ConvAlgorithm;
  /**
   * The weight's keep pattern where it is pruned in blocks: the input gradient then runs on the
   * block-sparse kernel where sparseConvWins (strided) or sparseInputGradientWins (stride 1, in
   * place of Winograd) chooses it, and the weight gradient where sparseWeightGradientWins does
   * (see prunedGradientUnread).
   */
  sparse?: SparsePattern;
  /**
   * Whether nothing reads the weight gradient's entries outside the pattern's kept blocks (default
   * true: the optimizer's masks zero them; false where a recipe quantizes weight gradients with a
   * scale from their amax, which those entries would change). Then the weight gradient may run on
   * the block-sparse kernel: the kept entries get the dense direct product's chain, the pruned
   * ones +0.
   */
  prunedGradientUnread?: boolean;
}

/**
 * conv2d's two gradients in float32, as its gradient rule computes them (Winograd where
 * winogradPlan chooses it, else the SGEMM on implicit columns, col2im for strided input
 * gradients): also the backward of SFP8's quantized convolutions, whose backward is float32.
 */
export function conv2dGradients(a: Conv2dGradientInputs): { gx: Float32Array | null; gw: Float32Array | null } {
  const { g, x: xData, weight: weightData, geometry, algorithm, sparse, prunedGradientUnread = true } = a;
  const { batch, channels, outChannels, groups } = geometry;
  const cols = groupColumns(geometry);
  const cg = channels / groups;
  const ocg = outChannels / groups;
  const plane = geometry.outH * geometry.outW;
  const kSize = kSizeOf(cols);
  const taps = geometry.kernelH * geometry.kernelW;
  const pixels = geometry.height * geometry.width;
  // Stride 1: the input gradient is a forward convolution of g (written whole); otherwise W^T g
  // folded back by col2im, which adds into gx.
  const dxGeometry = inputGradientGeometry(geometry);
  const dxPlan = weightData && dxGeometry ? winogradPlan(dxGeometry, algorithm) : null;
  // A pruned weight's input gradient on the sparse kernel (W^T dY folded in as col2im does):
  // strided convolutions by sparseConvWins (the dense strided route's bits), stride-1 ones in
  // place of Winograd by sparseInputGradientWins (never in place of the direct product, whose
  // chain it does not keep: rotatedGx below does that).
  const sparseGx = Boolean(weightData && sparse && groups === 1 && (dxGeometry ? dxPlan && sparseInputGradientWins(sparse) : sparseConvWins(sparse, 'direct')));
  // In place of the direct product (stride 1 without a Winograd plan: --conv direct, 5x5,
  // dilation), kernels of 9 taps or more: the rotated kernel's chains over the kept weights, the
  // direct product's bits, where it wins as against a dense product of one product an instruction
  // (measured on AMD Zen 3: 3x3 at 50% kept 1.6x the dense direct product, 75% pruned 1.8-3.2x,
  // 5x5 2.7x; 1x1 kernels 0.56-1.2x, left dense).
  const rotatedGx = Boolean(weightData && sparse && groups === 1 && dxGeometry && !dxPlan && taps >= 9 && sparseInputGradientWins(sparse, 'codes', pixels, false));
  // Written whole (the stride-1 routes), cleared by the sparse kernel image by image, or zeros to fold into.
  const gx = !weightData ? null : dxGeometry || sparseGx ? takeBuffer(batch * channels * pixels) : takeZeroed(batch * channels * pixels);
  // Zeros from the buffer pool where it has an array (parameter gradients go back to it when the
  // optimizer is done with them: zeroGrad({ release: true })), else fresh.
  const gw = xData ? takeZeroed(outChannels * kSize) : null;
  // dY_g as [OCg x N*P] for the weight gradient's GEMM (every element written before it is read);
  // Winograd reads g in place.
  const wPlan = gw ? winogradPlan(geometry, algorithm) : null;
  if (isDepthwise(geometry) && !wPlan && !dxPlan) {
    // One channel per group: the direct kernels (src/kernels/depthwise.ts), the same values.
    if (gw) depthwiseWeightGradient(g, xData!, gw, depthwiseGeometry(geometry), batch);
    if (gx && dxGeometry) {
      // The stride-1 input gradient: the forward of dY with each channel's kernel rotated.
      const rotated = new Float32Array(weightData!.length);
      for (let c = 0; c < channels; c++) for (let t = 0; t < taps; t++) rotated[c * taps + t] = weightData![c * taps + taps - 1 - t];
      depthwiseForward(g, rotated, gx, depthwiseGeometry(dxGeometry), batch);
    } else if (gx) {
      depthwiseInputGradient(g, weightData!, gx, depthwiseGeometry(geometry), batch);
    }
    return { gx, gw };
  }
  if (sparseGx) {
    const wT = bsrTransposedFromPattern(weightData!, sparse!, true);
    bsrConv2dInputGradient(wT, g, cols, batch, { out: gx!, clear: true });
    recycle(wT.values);
  }
  const rotatedDone = rotatedGx && bsrRotatedConv2dInputGradient(sparse!, g, weightData!, cols, batch, gx!);
  // A pruned weight's gradient at its kept blocks only, on the sparse kernel (the direct chain).
  const sparseGw = gw && prunedGradientUnread && sparse && groups === 1 && sparseWeightGradientWins(sparse, wPlan ? 'winograd' : 'direct');
  if (sparseGw) bsrConv2dWeightGradient(bsrStructure(sparse), xData!, g, cols, batch, { out: gw });
  const denseGw = gw && !sparseGw;
  const dy = (denseGw && !wPlan) || (gx && !dxGeometry && !sparseGx) ? takeBuffer(ocg * batch * plane) : null;
  for (let grp = 0; grp < groups; grp++) {
    if (dy) moveRows(dy, g, { n0: 0, count: batch, channels: outChannels, c0: grp * ocg, rows: ocg, plane }, 'gather');
    if (denseGw && wPlan) {
      winogradWeightGradient(xData!.subarray(grp * cg * pixels), g.subarray(grp * ocg * plane), gw.subarray(grp * ocg * kSize, (grp + 1) * ocg * kSize), wPlan);
    } else if (denseGw) {
      // dW_g = dY_g [OCg x N*P] x col_g^T [N*P x K], summed over the whole batch in one chain per element
      columnsGemm(ocg, kSize, batch * plane, dy!, columnSource(xData!, grp, batch, cols, channels), gw.subarray(grp * ocg * kSize, (grp + 1) * ocg * kSize), { transB: true });
    }
    if (gx && dxGeometry && !sparseGx && !rotatedDone) {
      // dX_g = the forward convolution of dY_g with the rotated kernel, straight into NCHW (Winograd
      // reads the weights as that kernel in place)
      if (dxPlan) {
        winogradForward(g.subarray(grp * ocg * plane), weightData!.subarray(grp * ocg * kSize, (grp + 1) * ocg * kSize), gx.subarray(grp * cg * pixels), { ...dxPlan, flipped: true });
      } else {
        columnsConvolution(g, grp, dxGeometry, rotatedKernel(weightData!, grp, ocg, cg, taps), gx);
      }
    } else if (gx && !dxGeometry && !sparseGx) {
      forEachChunk(batch, cols, (n0, nc, col) => {
        // dcol = W_g^T [K, ocg] x dY_g [ocg, nc*P], folded back into the images
        gemm(kSize, nc * plane, ocg, weightData!.subarray(grp * ocg * kSize, (grp + 1) * ocg * kSize), dy!.subarray(n0 * plane), col, { transA: true, ldb: batch * plane });
        col2imBatch(col, imageAt(gx, n0, channels, grp * cg, pixels), cols, nc, channels * pixels);
      });
    }
  }
  if (dy) recycle(dy);
  return { gx, gw };
}

registerGradient<ConvSaved>('conv2d', (node, g) => {
  const [, , bias] = node.inputs as [GradHandle, GradHandle, GradHandle | null];
  const { geometry, algorithm, xData, weightData, sparse } = node.saved;
  // conv2d saved x only when the weight needs a gradient, the weight only when x does.
  const { gx, gw } = conv2dGradients({ g, x: xData, weight: weightData, geometry, algorithm, sparse });
  return [gx, gw, bias?.requiresGrad ? biasGrad(g, geometry.batch, geometry.outChannels, geometry.outH * geometry.outW) : null];
});

/**
 * Transposed convolution (the adjoint of conv2d with the same geometry): x [N, C_in, H, W],
 * weight [C_in, C_out/groups, KH, KW]; output size (H - 1) * stride - 2 * padding +
 * dilation * (KH - 1) + outputPadding + 1.
 */
export function convTranspose2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, options: ConvOpOptions = {}): Tensor {
  const { algorithm = defaultConvAlgorithm(), ...convOptions } = options;
  // The forward-convolution geometry from the output (as image) to x (as columns).
  const geometry = transposedConvGeometry(x.shape, weight.shape, convOptions, 'convTranspose2d');
  const { batch, channels: outChannels, height: outH, width: outW, outChannels: inChannels, groups } = geometry;
  checkBias('convTranspose2d', bias, outChannels);
  const cols = groupColumns(geometry);
  const ocg = outChannels / groups;
  const cg = inChannels / groups;
  const plane = geometry.outH * geometry.outW;
  const kSize = kSizeOf(cols);
  const out = Tensor.zeros([batch, outChannels, outH, outW]);
  const dcol = new Float32Array(kSize * plane);
  for (let n = 0; n < batch; n++) {
    for (let grp = 0; grp < groups; grp++) {
      const xs = x.data.subarray((n * inChannels + grp * cg) * plane, (n * inChannels + (grp + 1) * cg) * plane);
      const w = weight.data.subarray(grp * cg * kSize, (grp + 1) * cg * kSize);
      const target = out.data.subarray((n * outChannels + grp * ocg) * outH * outW, (n * outChannels + (grp + 1) * ocg) * outH * outW);
      if (colIsImage(cols)) {
        gemm(kSize, plane, cg, w, xs, target, { transA: true });
      } else {
        gemm(kSize, plane, cg, w, xs, dcol, { transA: true });
        col2im(dcol, target, cols);
      }
    }
  }
  addBias(out.data, bias, batch, outChannels, outH * outW);
  return recordConv('convTranspose2d', x, weight, bias, out, saveConv(x, weight, geometry, algorithm));
}

registerGradient<ConvSaved>('convTranspose2d', (node, g) => {
  const [x, weight, bias] = node.inputs as [GradHandle, GradHandle, GradHandle | null];
  const { geometry, xData, weightData } = node.saved;
  const { batch, channels: outChannels, outChannels: inChannels, groups } = geometry;
  const cols = groupColumns(geometry);
  const ocg = outChannels / groups;
  const cg = inChannels / groups;
  const plane = geometry.outH * geometry.outW;
  const outPlane = geometry.height * geometry.width;
  const kSize = kSizeOf(cols);
  const gx = x.requiresGrad ? new Float32Array(x.size) : null;
  const gw = weight.requiresGrad ? new Float32Array(weight.size) : null;
  const scratch = new Float32Array(colIsImage(cols) ? 0 : kSize * plane);
  for (let n = 0; n < batch; n++) {
    for (let grp = 0; grp < groups; grp++) {
      const dy = g.subarray((n * outChannels + grp * ocg) * outPlane, (n * outChannels + (grp + 1) * ocg) * outPlane);
      const col = columns(dy, cols, scratch);
      const xStart = (n * inChannels + grp * cg) * plane;
      if (gx) gemm(cg, plane, kSize, weightData!.subarray(grp * cg * kSize, (grp + 1) * cg * kSize), col, gx.subarray(xStart, xStart + cg * plane));
      if (gw) gemm(cg, kSize, plane, xData!.subarray(xStart, xStart + cg * plane), col, gw.subarray(grp * cg * kSize, (grp + 1) * cg * kSize), { transB: true, beta: 1 });
    }
  }
  return [gx, gw, bias?.requiresGrad ? biasGrad(g, batch, outChannels, outPlane) : null];
});
