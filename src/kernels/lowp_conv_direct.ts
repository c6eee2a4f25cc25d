/**
 * The low-precision convolutions' direct path (native/direct_conv.h): where a convolution's
 * products are exact in float32 (the operands' significands together fit 24 bits, as for FP8 x
 * FP8), it runs as a direct convolution instead of a GEMM over the column matrix. Each output is
 * the same chain as the GEMM's, in the contract's k order (t = (c * KH + i) * KW + j, from +0), so
 * the bits are the GEMM's (tested against the reference on every shape class); only the speed
 * differs. At small channel counts (ResNet-20's 16-64) the column matrix costs more to build and
 * pack than its products, which is where this path wins.
 *
 * It serves the forward and the stride-1 input gradient (the forward of the output gradient with
 * the rotated kernel), one group at a time, writing NCHW directly: under float32 accumulation
 * (fused multiply-adds), and under an emulated accumulator with nearest rounding on AVX-512 (each
 * addition rounded as lowpGemm's fast tiles round it, chunks folded as the contract says; where a
 * value leaves the accumulator's normal range the kernel declines and the GEMM computes the whole
 * result). And the weight gradient, under both, at any stride, dilation and padding (each weight
 * one chain over the batch's positions in order, lanes over output channels). The
 * scales are divided out once over the whole result, as the GEMM path does per chunk. It stands
 * aside where results are keyed by their GEMM position (stochastic draws or output rounding), for
 * the aligned accumulators (hopper-fp8 and its kind), and without the addon.
 */
import type { ConvGeometry } from './conv_geometry.js';
import { alignedOf, finishProduct, nativeAccumulator, nativeOperand, runsOnSgemm, type LowpGemmOptions, type NativeOperand } from './lowp_gemm.js';
import { keyedByPosition, type Backend, type GemmOperand } from './lowp_conv_columns.js';
import { nativeCore } from './native.js';
import { resolveThreads } from './threads.js';

/** A group's two operands (weights or output gradient, then images) as the direct kernels take them, or null where their products are not exact or the kernels cannot read them. */
function operands(a: GemmOperand, x: GemmOperand): { a: NativeOperand; x: NativeOperand } | null {
  const an = nativeOperand(a.op), xn = nativeOperand(x.op);
  if (!an || !xn || an.significandBits + xn.significandBits > 24) return null;
  return { a: an, x: xn };
}

/** Whether the direct kernel is on (OCTET_LOWP_DIRECT=0 turns it off, to compare the two paths' speed; the bits are the same). */
function enabled(): boolean {
  return process.env.OCTET_LOWP_DIRECT !== '0';
}

/** One stride-1 convolution of a group, as the direct kernel sees it. */
export interface DirectGroup {
  /** Input images of the group: planes of height x width, images xImageStride apart. */
  x: GemmOperand;
  /** Weights [outChannels][channels * kernelH * kernelW]. */
  w: GemmOperand;
  /** Where the group's first output plane goes; images yImageStride apart. */
  y: Float32Array;
  geometry: { channels: number; height: number; width: number; outChannels: number; kernelH: number; kernelW: number; padH: number; padW: number; outH: number; outW: number };
  xImageStride: number;
  yImageStride: number;
}

/**
 * Whether the direct weight gradient applies under these options: the addon, float32 or emulated
 * accumulation (not an aligned one), nothing keyed by position; any stride, dilation and padding.
 */
export function directGradientApplies(b: Backend, options: LowpGemmOptions): boolean {
  return b.fast && enabled() && nativeCore() !== null && !alignedOf(options.accumulation) && !keyedByPosition(options);
}

/** Whether the direct forward (or input gradient) applies: as the weight gradient, at stride 1, dilation 1 and padding below the kernel. */
export function directApplies(b: Backend, s: ConvGeometry, options: LowpGemmOptions): boolean {
  return directGradientApplies(b, options) && s.strideH === 1 && s.strideW === 1 && s.dilationH === 1 && s.dilationW === 1 && s.padH < s.kernelH && s.padW < s.kernelW;
}

/*
 * Where the direct kernels are faster than the GEMM over the column matrix: a measured crossover
 * (batch 64, 2 threads, AMD Zen 5; docs/benchmarks.md, 2026-12-06 late; time direct / GEMM).
 * Float32 accumulation: the GEMM multiplies bfloat16 pairs, two products per lane, but packs every
 * column element, which only `output channels` products reuse; the direct kernels pack nothing and
 * multiply one product per lane. Forward and input gradient: 16 output channels 0.26-0.36, 32:
 * 0.44-0.70, 64: 0.61-0.93, 128: 1.35-1.39, 256: 1.74-1.89, 512: 1.9-2.2. Weight gradient: 16-32
 * output channels 0.52-0.75, 64 at stride 2 or with 64 or more output positions 0.63-0.92, 64 at
 * 7x7 and stride 1 1.17, 128 and more 1.1-1.9.
 * Emulated accumulators (e6m9 in chunks of 64): every addition costs the rounding's four steps
 * on both paths, so packing weighs less and the crossover moves up. Forward and input gradient:
 * 16 channels 0.27-0.41, 32: 0.48-0.53, 64: 0.65-0.76, 128: 0.82-0.84, 256: 1.05-1.07, 512:
 * 1.46-1.54. Weight gradient: 16-64 channels 0.44-0.79 (64 at 7x7: 0.76), 128 at 16x16: 0.64,
 * 256 at 8x8: 0.85, 512 at 4x4: 1.28.
 */

/** Whether a direct convolution (forward, or the input gradient) to this many output channels per group beats the GEMM. */
export function directWins(outChannels: number, options: LowpGemmOptions = {}): boolean {
  return outChannels <= (runsOnSgemm(options) ? 64 : 128);
}

/** Whether the direct weight gradient of this geometry (its groups') beats the GEMM. */
export function directGradientWins(s: ConvGeometry, options: LowpGemmOptions = {}): boolean {
  const oc = s.outChannels / s.groups;
  if (!runsOnSgemm(options)) return oc <= 256 && s.outH * s.outW >= 49;
  return oc <= 32 || (oc <= 64 && (s.strideH > 1 || s.strideW > 1 || s.outH * s.outW >= 64));
}

/**
 * Groups 0 .. count - 1, each built by groupAt when its turn comes (so per-group scratch such as a
 * rotated kernel can be reused), through `run` with the group's two operands as the native kernels
 * take them (`pair` names them: the weights or output gradient first, then the images), into
 * `out`, whose every element the groups write; then the scales divided out and options.output
 * applied: true. False where the operands do not qualify (products not exact, operands the
 * kernels cannot read; a convolution's groups share their tensors' formats and scales, so group 0
 * decides, and nothing is written), or where `run` declines (an emulated accumulator's value left
 * its fast range: the caller's GEMM recomputes the whole result).
 */
function runGroups<G>(
  count: number, groupAt: (g: number) => G, pair: (group: G) => [GemmOperand, GemmOperand],
  run: (a: NativeOperand, x: NativeOperand, group: G, threads: number) => boolean, out: Float32Array, options: LowpGemmOptions,
): boolean {
  if (!nativeCore() || count <= 0) return false;
  const first = groupAt(0);
  const decided = operands(...pair(first));
  if (!decided) return false;
  const threads = resolveThreads(options.threads);
  for (let g = 0; g < count; g++) {
    const group = g === 0 ? first : groupAt(g);
    const r = g === 0 ? decided : operands(...pair(group))!;
    if (!run(r.a, r.x, group, threads)) return false;
  }
  finishProduct(out, decided.a.scale, decided.x.scale, options.output);
  return true;
}

/** The forward (or stride-1 input gradient) of groups 0 .. count - 1 into `out`: runGroups on directConvForward(Lowp). */
export function directConvolution(batch: number, count: number, groupAt: (g: number) => DirectGroup, out: Float32Array, options: LowpGemmOptions): boolean {
  const native = nativeCore();
  const sgemm = runsOnSgemm(options);
  return runGroups(count, groupAt, (group) => [group.w, group.x], (w, x, group, threads) => {
    const o = { ...group.geometry, batch, xImageStride: group.xImageStride, yImageStride: group.yImageStride, threads };
    if (sgemm) {
      native!.directConvForward(x, w, group.y, o);
      return true;
    }
    return native!.directConvForwardLowp(x, w, group.y, { ...o, ...nativeAccumulator(w, x, options) });
  }, out, options);
}

/** One group's weight gradient, as the direct kernel sees it. */
export interface DirectGradientGroup {
  /** The group's output gradient: planes of outH x outW, images dyImageStride apart. */
  dy: GemmOperand;
  /** The group's input images: planes of height x width, images xImageStride apart. */
  x: GemmOperand;
  /** Where the group's [outChannels][channels * kernelH * kernelW] weight gradient goes. */
  dw: Float32Array;
  geometry: ConvGeometry;
  xImageStride: number;
  dyImageStride: number;
}

/** The weight gradient of groups 0 .. count - 1 into `out`: runGroups on directConvWeightGradient(Lowp). geometry.channels and outChannels are the group's. */
export function directWeightGradient(count: number, groupAt: (g: number) => DirectGradientGroup, out: Float32Array, options: LowpGemmOptions): boolean {
  const native = nativeCore();
  const sgemm = runsOnSgemm(options);
  return runGroups(count, groupAt, (group) => [group.dy, group.x], (dy, x, group, threads) => {
    const s = group.geometry;
    const o = {
      batch: s.batch, channels: s.channels, height: s.height, width: s.width, outChannels: s.outChannels, kernelH: s.kernelH, kernelW: s.kernelW,
      padH: s.padH, padW: s.padW, strideH: s.strideH, strideW: s.strideW, dilationH: s.dilationH, dilationW: s.dilationW, outH: s.outH, outW: s.outW,
      xImageStride: group.xImageStride, yImageStride: group.dyImageStride, threads,
    };
    if (sgemm) {
      native!.directConvWeightGradient(dy, x, group.dw, o);
      return true;
    }
    return native!.directConvWeightGradientLowp(dy, x, group.dw, { ...o, ...nativeAccumulator(dy, x, options) });
  }, out, options);
}
