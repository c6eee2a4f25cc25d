/** Pooling over NCHW: max, average, and adaptive average (PyTorch's window rules). */
import { record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import { channelSum, convOutputSize, takeBuffer, takeZeroed } from '../kernels/index.js';
import { Tensor, formatShape } from '../tensor/index.js';

export interface Pool2dOptions {
  stride?: number;
  padding?: number;
  /** Round the output size up (PyTorch's ceil_mode); a last window must start inside the input or left padding. */
  ceilMode?: boolean;
}

function pooledSize(size: number, kernel: number, stride: number, padding: number, ceilMode: boolean): number {
  if (!ceilMode) return convOutputSize(size, kernel, stride, padding, 1);
  let out = Math.ceil((size + 2 * padding - kernel) / stride) + 1;
  if ((out - 1) * stride >= size + padding) out--;
  return out;
}

function poolGeometry(op: string, x: Tensor, kernel: number, options: Pool2dOptions) {
  if (x.rank !== 4) throw new InvalidArgumentError(`${op}: input ${formatShape(x.shape)}; expected [N, C, H, W]`);
  const stride = options.stride ?? kernel;
  const padding = options.padding ?? 0;
  if (!Number.isInteger(kernel) || kernel < 1 || !Number.isInteger(stride) || stride < 1 || !Number.isInteger(padding) || padding < 0) {
    throw new InvalidArgumentError(`${op}: kernel ${kernel}, stride ${stride}, padding ${padding}; expected positive integers (padding >= 0)`);
  }
  if (padding * 2 > kernel) throw new InvalidArgumentError(`${op}: padding ${padding} is more than half the kernel ${kernel}`);
  const [batch, channels, height, width] = x.shape;
  const ceilMode = options.ceilMode ?? false;
  const outH = pooledSize(height, kernel, stride, padding, ceilMode);
  const outW = pooledSize(width, kernel, stride, padding, ceilMode);
  if (outH < 1 || outW < 1) throw new InvalidArgumentError(`${op}: input ${formatShape(x.shape)} is smaller than the kernel ${kernel}`);
  return { batch, channels, height, width, stride, padding, outH, outW };
}

/** Max over each window; gradients flow to the first maximum of each window. */
export function maxPool2d(x: Tensor, kernel: number, options: Pool2dOptions = {}): Tensor {
  const { batch, channels, height, width, stride, padding, outH, outW } = poolGeometry('maxPool2d', x, kernel, options);
  const out = Tensor.zeros([batch, channels, outH, outW]);
  const argmax = new Int32Array(out.size);
  for (let plane = 0; plane < batch * channels; plane++) {
    const base = plane * height * width;
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        let best = -Infinity;
        let at = -1;
        for (let i = 0; i < kernel; i++) {
          const ih = oh * stride - padding + i;
          if (ih < 0 || ih >= height) continue;
          for (let j = 0; j < kernel; j++) {
            const iw = ow * stride - padding + j;
            if (iw < 0 || iw >= width) continue;
            const v = x.data[base + ih * width + iw];
            // NaN wins and stays, as in PyTorch.
            if (at < 0 || v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
              best = v;
              at = base + ih * width + iw;
            }
          }
        }
        const o = (plane * outH + oh) * outW + ow;
        out.data[o] = best;
        argmax[o] = at;
      }
    }
  }
  return record('maxPool2d', [x], out, argmax);
}

registerGradient<Int32Array>('maxPool2d', (node, g) => {
  const gx = takeZeroed(node.inputs[0]!.size);
  const argmax = node.saved;
  for (let i = 0; i < g.length; i++) gx[argmax[i]] += g[i];
  return [gx];
});

interface AvgSaved {
  kernel: number;
  stride: number;
  padding: number;
  countIncludePad: boolean;
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /** Divide by the full window including padding (PyTorch's default, true) or by the cells inside. */
  countIncludePad?: boolean;
}

/** Visit each window: fn(output index, input index, 1 / divisor). */
function forEachAvgWindow(shape: readonly number[], outH: number, outW: number, s: AvgSaved, fn: (o: number, i: number, w: number) => void): void {
  const [batch, channels, height, width] = shape;
  for (let plane = 0; plane < batch * channels; plane++) {
    const base = plane * height * width;
    for (let oh = 0; oh < outH; oh++) {
      const h0 = oh * s.stride - s.padding;
      const h1 = Math.min(h0 + s.kernel, height + s.padding);
      const hs = Math.max(h0, 0);
      const he = Math.min(h1, height);
      for (let ow = 0; ow < outW; ow++) {
        const w0 = ow * s.stride - s.padding;
        const w1 = Math.min(w0 + s.kernel, width + s.padding);
        const ws = Math.max(w0, 0);
        const we = Math.min(w1, width);
        const divisor = s.countIncludePad ? (h1 - h0) * (w1 - w0) : (he - hs) * (we - ws);
        const o = (plane * outH + oh) * outW + ow;
        for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) fn(o, base + ih * width + iw, 1 / divisor);
      }
    }
  }
}

export function avgPool2d(x: Tensor, kernel: number, options: AvgPool2dOptions = {}): Tensor {
  const { batch, channels, stride, padding, outH, outW } = poolGeometry('avgPool2d', x, kernel, options);
  const saved: AvgSaved = { kernel, stride, padding, countIncludePad: options.countIncludePad ?? true };
  const out = Tensor.zeros([batch, channels, outH, outW]);
  forEachAvgWindow(x.shape, outH, outW, saved, (o, i, w) => (out.data[o] += x.data[i] * w));
  return record('avgPool2d', [x], out, saved);
}

registerGradient<AvgSaved>('avgPool2d', (node, g, output) => {
  const x = node.inputs[0]!;
  const gx = takeZeroed(x.size);
  forEachAvgWindow(x.shape, output.shape[2], output.shape[3], node.saved, (o, i, w) => (gx[i] += g[o] * w));
  return [gx];
});

/** Window of output cell i of n over an input of size `size`: [floor(i*size/n), ceil((i+1)*size/n)). */
function adaptiveRange(i: number, n: number, size: number): [number, number] {
  return [Math.floor((i * size) / n), Math.ceil(((i + 1) * size) / n)];
}

function forEachAdaptive(shape: readonly number[], outH: number, outW: number, fn: (o: number, i: number, w: number) => void): void {
  const [batch, channels, height, width] = shape;
  for (let plane = 0; plane < batch * channels; plane++) {
    const base = plane * height * width;
    for (let oh = 0; oh < outH; oh++) {
      const [h0, h1] = adaptiveRange(oh, outH, height);
      for (let ow = 0; ow < outW; ow++) {
        const [w0, w1] = adaptiveRange(ow, outW, width);
        const weight = 1 / ((h1 - h0) * (w1 - w0));
        const o = (plane * outH + oh) * outW + ow;
        for (let ih = h0; ih < h1; ih++) for (let iw = w0; iw < w1; iw++) fn(o, base + ih * width + iw, weight);
      }
    }
  }
}

/** Average pooling to a fixed output size (1x1 is global average pooling). */
export function adaptiveAvgPool2d(x: Tensor, outH: number, outW = outH): Tensor {
  if (x.rank !== 4) throw new InvalidArgumentError(`adaptiveAvgPool2d: input ${formatShape(x.shape)}; expected [N, C, H, W]`);
  if (!Number.isInteger(outH) || !Number.isInteger(outW) || outH < 1 || outW < 1) {
    throw new InvalidArgumentError(`adaptiveAvgPool2d: output size ${outH}x${outW}; expected positive integers`);
  }
  const [batch, channels, height, width] = x.shape;
  const out = Tensor.zeros([batch, channels, outH, outW]);
  if (outH === 1 && outW === 1) {
    // Global average pooling: one sum per (n, c) plane.
    const sums = channelSum(x.data, { batch: 1, channels: batch * channels, plane: height * width });
    for (let i = 0; i < sums.length; i++) out.data[i] = sums[i] / (height * width);
  } else {
    forEachAdaptive(x.shape, outH, outW, (o, i, w) => (out.data[o] += x.data[i] * w));
  }
  return record('adaptiveAvgPool2d', [x], out, null);
}

registerGradient('adaptiveAvgPool2d', (node, g, output) => {
  const x = node.inputs[0]!;
  // Recycled arrays (the backward's other gradients come from the pool too): written whole by the
  // global case, zeros for the windows to add into.
  const global = output.shape[2] === 1 && output.shape[3] === 1;
  const gx = global ? takeBuffer(x.size) : takeZeroed(x.size);
  if (global) {
    const plane = x.shape[2] * x.shape[3];
    for (let p = 0; p < g.length; p++) gx.fill(g[p] / plane, p * plane, (p + 1) * plane);
  } else {
    forEachAdaptive(x.shape, output.shape[2], output.shape[3], (o, i, w) => (gx[i] += g[o] * w));
  }
  return [gx];
});
