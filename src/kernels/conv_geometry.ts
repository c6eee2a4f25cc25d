/**
 * The geometry of a 2-D convolution, resolved and checked once from (input shape, weight shape,
 * options) and then passed to every layer that computes with it: the float32 ops, the
 * low-precision kernels, Winograd and the native calls.
 *
 * A transposed convolution is described by the forward convolution it is the adjoint of: from
 * its output (as that convolution's input) to its input (as that convolution's output). Its
 * forward pass is that convolution's input gradient, and the other way round.
 */
import { InvalidArgumentError } from '../errors.js';

/** One value for both axes, or [height, width]. */
export type Pair = number | readonly [number, number];

/** A convolution's options as a user writes them (PyTorch's names and defaults). */
export interface ConvOptions {
  /** Default 1. */
  stride?: Pair;
  /** Zero padding on each side; default 0. */
  padding?: Pair;
  /** Default 1. */
  dilation?: Pair;
  /** Default 1; depthwise when groups = channels. */
  groups?: number;
  /** Transposed convolutions only: extra rows and columns on one side of the output; default 0. */
  outputPadding?: Pair;
}

/**
 * A convolution NCHW -> NCHW: x [batch, channels, height, width], weight [outChannels,
 * channels / groups, kernelH, kernelW], y [batch, outChannels, outH, outW], with outH =
 * floor((height + 2 padH - dilationH (kernelH - 1) - 1) / strideH) + 1 (and so outW).
 */
export interface ConvGeometry {
  readonly batch: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly outChannels: number;
  readonly groups: number;
  readonly kernelH: number;
  readonly kernelW: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
  readonly dilationH: number;
  readonly dilationW: number;
  readonly outH: number;
  readonly outW: number;
}

/**
 * The column matrix of one image (im2col's layout, what the native convolution kernels take):
 * `channels` is the number of input channels whose windows form its rows, one group's or fewer.
 * Padding may be negative inside the kernels (a crop: the phases of a strided input gradient).
 */
export type ColumnGeometry = Omit<ConvGeometry, 'batch' | 'outChannels' | 'groups'>;

/** Output size of a convolution along one axis (PyTorch's formula). */
export function convOutputSize(size: number, kernel: number, stride: number, pad: number, dilation: number): number {
  return Math.floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** A Pair as [height, width], each an integer of at least `min`. */
export function resolvePair(v: Pair | undefined, fallback: number, name: string, op: string, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  const ok = (typeof v !== 'object' || (Array.isArray(v) && v.length === 2)) && p.every((x) => Number.isInteger(x) && x >= min);
  if (!ok) throw new InvalidArgumentError(`${op}: ${name} is ${JSON.stringify(v)}; expected an integer >= ${min} or a pair of them`);
  return p;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function checkRanks(op: string, input: readonly number[], weight: readonly number[]): void {
  if (input.length !== 4 || weight.length !== 4 || ![...input, ...weight].every((v) => Number.isInteger(v) && v >= 0)) {
    throw new InvalidArgumentError(`${op}: input ${shapeText(input)} and weight ${shapeText(weight)}; expected [N, C, H, W] and a 4-D weight`);
  }
}

function resolveGroups(op: string, groups: number | undefined): number {
  const g = groups ?? 1;
  if (!Number.isInteger(g) || g < 1) throw new InvalidArgumentError(`${op}: groups is ${g}; expected a positive integer`);
  return g;
}

/** The geometry of conv2d(x, weight): x [N, C, H, W], weight [OC, C/groups, KH, KW]. */
export function convGeometry(input: readonly number[], weight: readonly number[], options: ConvOptions = {}, op = 'conv2d'): ConvGeometry {
  checkRanks(op, input, weight);
  if (options.outputPadding !== undefined) throw new InvalidArgumentError(`${op}: outputPadding is for transposed convolutions only`);
  const groups = resolveGroups(op, options.groups);
  const [batch, channels, height, width] = input;
  const [outChannels, cig, kernelH, kernelW] = weight;
  if (channels % groups !== 0 || cig !== channels / groups || outChannels % groups !== 0 || kernelH < 1 || kernelW < 1 || outChannels < 1) {
    throw new InvalidArgumentError(
      `${op}: input ${shapeText(input)} with groups=${groups} does not fit weight ${shapeText(weight)}; ` +
        `expected [C_out, ${channels / groups}, KH, KW] with C_out divisible by groups`,
    );
  }
  const [strideH, strideW] = resolvePair(options.stride, 1, 'stride', op, 1);
  const [padH, padW] = resolvePair(options.padding, 0, 'padding', op, 0);
  const [dilationH, dilationW] = resolvePair(options.dilation, 1, 'dilation', op, 1);
  const outH = convOutputSize(height, kernelH, strideH, padH, dilationH);
  const outW = convOutputSize(width, kernelW, strideW, padW, dilationW);
  if (outH < 1 || outW < 1) {
    throw new InvalidArgumentError(`${op}: input ${shapeText(input)} is smaller than the dilated kernel ${kernelH}x${kernelW} after padding`);
  }
  return { batch, channels, height, width, outChannels, groups, kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW, outH, outW };
}

/**
 * The geometry of convTranspose2d(x, weight) (x [N, C_in, H, W], weight [C_in, C_out/groups, KH,
 * KW]) as the convolution it is the adjoint of: input [N, C_out, outH, outW] -> output [N, C_in,
 * H, W], where outH = (H - 1) strideH - 2 padH + dilationH (KH - 1) + outputPaddingH + 1.
 */
export function transposedConvGeometry(input: readonly number[], weight: readonly number[], options: ConvOptions = {}, op = 'convTranspose2d'): ConvGeometry {
  checkRanks(op, input, weight);
  const groups = resolveGroups(op, options.groups);
  const [batch, inChannels, height, width] = input;
  const [wIn, ocg, kernelH, kernelW] = weight;
  if (inChannels % groups !== 0 || wIn !== inChannels || ocg < 1 || kernelH < 1 || kernelW < 1) {
    throw new InvalidArgumentError(
      `${op}: input ${shapeText(input)} with groups=${groups} does not fit weight ${shapeText(weight)}; ` +
        `expected [${inChannels}, C_out/groups, KH, KW] with ${inChannels} divisible by groups`,
    );
  }
  const [strideH, strideW] = resolvePair(options.stride, 1, 'stride', op, 1);
  const [padH, padW] = resolvePair(options.padding, 0, 'padding', op, 0);
  const [dilationH, dilationW] = resolvePair(options.dilation, 1, 'dilation', op, 1);
  const [outPadH, outPadW] = resolvePair(options.outputPadding, 0, 'outputPadding', op, 0);
  if (outPadH >= Math.max(strideH, dilationH) || outPadW >= Math.max(strideW, dilationW)) {
    throw new InvalidArgumentError(`${op}: outputPadding ${outPadH},${outPadW} must be smaller than the stride or the dilation (${strideH},${strideW} / ${dilationH},${dilationW})`);
  }
  const outH = (height - 1) * strideH - 2 * padH + dilationH * (kernelH - 1) + outPadH + 1;
  const outW = (width - 1) * strideW - 2 * padW + dilationW * (kernelW - 1) + outPadW + 1;
  if (outH < 1 || outW < 1) throw new InvalidArgumentError(`${op}: input ${shapeText(input)} gives an output of ${outH}x${outW}`);
  return {
    batch, channels: ocg * groups, height: outH, width: outW, outChannels: inChannels, groups, kernelH, kernelW,
    strideH, strideW, padH, padW, dilationH, dilationW, outH: height, outW: width,
  };
}

/**
 * A geometry given whole (to a kernel), checked: every size a positive integer (paddings >= 0),
 * channels divisible by groups, and the output size the one the rest implies, or that of a
 * transposed convolution's geometry (whose output padding, below stride or dilation, can leave
 * the last rows of the forward convolution's output unused).
 */
export function checkConvGeometry(g: ConvGeometry, op: string): void {
  for (const [name, v] of Object.entries(g)) {
    const min = name.startsWith('pad') ? 0 : 1;
    if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError(`${op}: ${name} is ${v}; expected an integer >= ${min}`);
  }
  if (g.channels % g.groups !== 0 || g.outChannels % g.groups !== 0) {
    throw new InvalidArgumentError(`${op}: ${g.channels} input and ${g.outChannels} output channels are not both divisible by groups=${g.groups}`);
  }
  const fits = (size: number, kernel: number, stride: number, pad: number, dilation: number, out: number): boolean => {
    if (out === convOutputSize(size, kernel, stride, pad, dilation)) return true;
    const outputPadding = size - ((out - 1) * stride - 2 * pad + dilation * (kernel - 1) + 1);
    return outputPadding >= 0 && outputPadding < Math.max(stride, dilation);
  };
  if (!fits(g.height, g.kernelH, g.strideH, g.padH, g.dilationH, g.outH) || !fits(g.width, g.kernelW, g.strideW, g.padW, g.dilationW, g.outW)) {
    const outH = convOutputSize(g.height, g.kernelH, g.strideH, g.padH, g.dilationH);
    const outW = convOutputSize(g.width, g.kernelW, g.strideW, g.padW, g.dilationW);
    throw new InvalidArgumentError(
      `${op}: output ${g.outH}x${g.outW} does not match the geometry (a ${g.height}x${g.width} input, ${g.kernelH}x${g.kernelW} kernel, ` +
        `stride ${g.strideH},${g.strideW}, padding ${g.padH},${g.padW}, dilation ${g.dilationH},${g.dilationW} gives ${outH}x${outW}); ` +
        'resolve it with convGeometry or transposedConvGeometry',
    );
  }
}

/** The column geometry of one group of one image: channels = C / groups. */
export function groupColumns(g: ConvGeometry): ColumnGeometry {
  return {
    channels: g.channels / g.groups, height: g.height, width: g.width, kernelH: g.kernelH, kernelW: g.kernelW, strideH: g.strideH, strideW: g.strideW,
    padH: g.padH, padW: g.padW, dilationH: g.dilationH, dilationW: g.dilationW, outH: g.outH, outW: g.outW,
  };
}
