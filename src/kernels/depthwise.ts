/**
 * Depthwise convolution in float32, direct (groups = channels, one output channel per input
 * channel, weight [C, 1, KH, KW]): the forward, the strided input gradient and the weight gradient
 * of such a layer without the per-channel GEMMs of the column path, and with their values bit for
 * bit, because the column path's sums are exactly these chains (native/depthwise.h):
 * - forward: each output is the fused multiply-add chain over the taps in order, from +0;
 * - strided input gradient: for each tap in order, then each output in order, the rounded product
 *   w * dy added into the image (col2im's order; the caller zeroes it). The stride-1 input
 *   gradient is the forward of dY with the rotated kernel;
 * - weight gradient: per tap, the fused chain over the batch and the output positions in order.
 * Taps in the padding are skipped (an fma with a zero product leaves a sum begun at +0 unchanged).
 * Native when the core is built; these references otherwise, and in the tests.
 * `g.channels` is all C channels here (not a group's).
 */
import { fma32 } from './block_sparse.js';
import type { ColumnGeometry, ConvGeometry } from './conv_geometry.js';
import { nativeCore } from './native.js';
import { kernelThreads } from './threads.js';

/** A convolution the depthwise kernels compute: every group one channel in and one out. */
export function isDepthwise(g: ConvGeometry): boolean {
  return g.groups > 1 && g.groups === g.channels && g.outChannels === g.channels;
}

/** The depthwise kernels' geometry: the column geometry with all C channels. */
export function depthwiseGeometry(g: ConvGeometry): ColumnGeometry {
  return {
    channels: g.channels, height: g.height, width: g.width, kernelH: g.kernelH, kernelW: g.kernelW, strideH: g.strideH, strideW: g.strideW,
    padH: g.padH, padW: g.padW, dilationH: g.dilationH, dilationW: g.dilationW, outH: g.outH, outW: g.outW,
  };
}

function inside(g: ColumnGeometry, ih: number, iw: number): boolean {
  return ih >= 0 && ih < g.height && iw >= 0 && iw < g.width;
}

export function depthwiseForwardReference(x: Float32Array, w: Float32Array, y: Float32Array, g: ColumnGeometry, batch: number): void {
  const taps = g.kernelH * g.kernelW;
  for (let k = 0; k < batch * g.channels; k++) {
    const c = k % g.channels;
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        let acc = 0;
        for (let i = 0; i < g.kernelH; i++) {
          for (let j = 0; j < g.kernelW; j++) {
            const ih = oh * g.strideH - g.padH + i * g.dilationH, iw = ow * g.strideW - g.padW + j * g.dilationW;
            if (inside(g, ih, iw)) acc = fma32(w[c * taps + i * g.kernelW + j], x[(k * g.height + ih) * g.width + iw], acc);
          }
        }
        y[(k * g.outH + oh) * g.outW + ow] = acc;
      }
    }
  }
}

export function depthwiseInputGradientReference(dy: Float32Array, w: Float32Array, gx: Float32Array, g: ColumnGeometry, batch: number): void {
  const taps = g.kernelH * g.kernelW;
  for (let k = 0; k < batch * g.channels; k++) {
    const c = k % g.channels;
    for (let i = 0; i < g.kernelH; i++) {
      for (let j = 0; j < g.kernelW; j++) {
        const wv = w[c * taps + i * g.kernelW + j];
        for (let oh = 0; oh < g.outH; oh++) {
          for (let ow = 0; ow < g.outW; ow++) {
            const ih = oh * g.strideH - g.padH + i * g.dilationH, iw = ow * g.strideW - g.padW + j * g.dilationW;
            if (!inside(g, ih, iw)) continue;
            const at = (k * g.height + ih) * g.width + iw;
            gx[at] = Math.fround(gx[at] + Math.fround(wv * dy[(k * g.outH + oh) * g.outW + ow]));
          }
        }
      }
    }
  }
}

export function depthwiseWeightGradientReference(dy: Float32Array, x: Float32Array, gw: Float32Array, g: ColumnGeometry, batch: number): void {
  const taps = g.kernelH * g.kernelW;
  for (let c = 0; c < g.channels; c++) {
    for (let t = 0; t < taps; t++) {
      const i = Math.floor(t / g.kernelW), j = t % g.kernelW;
      let acc = 0;
      for (let n = 0; n < batch; n++) {
        const k = n * g.channels + c;
        for (let oh = 0; oh < g.outH; oh++) {
          for (let ow = 0; ow < g.outW; ow++) {
            const ih = oh * g.strideH - g.padH + i * g.dilationH, iw = ow * g.strideW - g.padW + j * g.dilationW;
            if (inside(g, ih, iw)) acc = fma32(dy[(k * g.outH + oh) * g.outW + ow], x[(k * g.height + ih) * g.width + iw], acc);
          }
        }
      }
      gw[c * taps + t] = acc;
    }
  }
}

/** y [N, C, OH, OW] (every element written) = the depthwise convolution of x [N, C, H, W] with w [C, 1, KH, KW]. */
export function depthwiseForward(x: Float32Array, w: Float32Array, y: Float32Array, g: ColumnGeometry, batch: number): void {
  const native = nativeCore();
  if (native) native.depthwiseForward(x, w, y, { geometry: g, batch, threads: kernelThreads() });
  else depthwiseForwardReference(x, w, y, g, batch);
}

/** Adds the input gradient of dy [N, C, OH, OW] into gx [N, C, H, W] (zeroed by the caller for a gradient). */
export function depthwiseInputGradient(dy: Float32Array, w: Float32Array, gx: Float32Array, g: ColumnGeometry, batch: number): void {
  const native = nativeCore();
  if (native) native.depthwiseInputGradient(dy, w, gx, { geometry: g, batch, threads: kernelThreads() });
  else depthwiseInputGradientReference(dy, w, gx, g, batch);
}

/** gw [C, 1, KH, KW] (every element written) from dy [N, C, OH, OW] and x [N, C, H, W]. */
export function depthwiseWeightGradient(dy: Float32Array, x: Float32Array, gw: Float32Array, g: ColumnGeometry, batch: number): void {
  const native = nativeCore();
  if (native) native.depthwiseWeightGradient(dy, x, gw, { geometry: g, batch, threads: kernelThreads() });
  else depthwiseWeightGradientReference(dy, x, gw, g, batch);
}
