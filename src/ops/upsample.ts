/**
 * Upsampling over NCHW, with PyTorch's index rules:
 * - nearest: source index floor(dst * in / out);
 * - bilinear, alignCorners false: source (dst + 0.5) * in / out - 0.5, clamped at 0;
 *   alignCorners true: dst * (in - 1) / (out - 1).
 */
import { record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import { Tensor, formatShape } from '../tensor/index.js';

export interface UpsampleOptions {
  /** Output size [H, W]; or give scaleFactor. */
  size?: [number, number];
  scaleFactor?: number;
  alignCorners?: boolean;
}

function outputSize(op: string, x: Tensor, options: UpsampleOptions): [number, number] {
  if (x.rank !== 4) throw new InvalidArgumentError(`${op}: input ${formatShape(x.shape)}; expected [N, C, H, W]`);
  const size: [number, number] | undefined =
    options.size ?? (options.scaleFactor !== undefined ? [Math.floor(x.shape[2] * options.scaleFactor), Math.floor(x.shape[3] * options.scaleFactor)] : undefined);
  if (!size || !size.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new InvalidArgumentError(`${op}: give size [H, W] of positive integers or a scaleFactor; got ${JSON.stringify(options)}`);
  }
  return size;
}

/** For each output row/column: the source index pair and the weight of the second. */
interface Taps {
  lo: Int32Array;
  hi: Int32Array;
  w: Float32Array;
}

function nearestTaps(inSize: number, outSize: number): Taps {
  const lo = Int32Array.from({ length: outSize }, (_, d) => Math.min(Math.floor((d * inSize) / outSize), inSize - 1));
  return { lo, hi: lo, w: new Float32Array(outSize) };
}

function bilinearTaps(inSize: number, outSize: number, alignCorners: boolean): Taps {
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const w = new Float32Array(outSize);
  for (let d = 0; d < outSize; d++) {
    let src = alignCorners
      ? outSize > 1 ? (d * (inSize - 1)) / (outSize - 1) : 0
      : Math.max(0, ((d + 0.5) * inSize) / outSize - 0.5);
    src = Math.min(src, inSize - 1);
    lo[d] = Math.floor(src);
    hi[d] = Math.min(lo[d] + 1, inSize - 1);
    w[d] = src - lo[d];
  }
  return { lo, hi, w };
}

interface UpsampleSaved {
  rows: Taps;
  cols: Taps;
}

/** Visit each (output, input, weight) triple of the separable interpolation. */
function forEachTap(shape: readonly number[], s: UpsampleSaved, fn: (o: number, i: number, w: number) => void): void {
  const [batch, channels, height, width] = shape;
  const outH = s.rows.lo.length;
  const outW = s.cols.lo.length;
  for (let plane = 0; plane < batch * channels; plane++) {
    const base = plane * height * width;
    for (let oh = 0; oh < outH; oh++) {
      const h0 = s.rows.lo[oh], h1 = s.rows.hi[oh], wh = s.rows.w[oh];
      for (let ow = 0; ow < outW; ow++) {
        const w0 = s.cols.lo[ow], w1 = s.cols.hi[ow], ww = s.cols.w[ow];
        const o = (plane * outH + oh) * outW + ow;
        fn(o, base + h0 * width + w0, (1 - wh) * (1 - ww));
        if (ww !== 0) fn(o, base + h0 * width + w1, (1 - wh) * ww);
        if (wh !== 0) {
          fn(o, base + h1 * width + w0, wh * (1 - ww));
          if (ww !== 0) fn(o, base + h1 * width + w1, wh * ww);
        }
      }
    }
  }
}

function upsample(op: string, x: Tensor, saved: UpsampleSaved): Tensor {
  const out = Tensor.zeros([x.shape[0], x.shape[1], saved.rows.lo.length, saved.cols.lo.length]);
  forEachTap(x.shape, saved, (o, i, w) => (out.data[o] += x.data[i] * w));
  return record(op, [x], out, saved);
}

export function upsampleNearest2d(x: Tensor, options: UpsampleOptions): Tensor {
  const [outH, outW] = outputSize('upsampleNearest2d', x, options);
  return upsample('upsample2d', x, { rows: nearestTaps(x.shape[2], outH), cols: nearestTaps(x.shape[3], outW) });
}

export function upsampleBilinear2d(x: Tensor, options: UpsampleOptions): Tensor {
  const [outH, outW] = outputSize('upsampleBilinear2d', x, options);
  const align = options.alignCorners ?? false;
  return upsample('upsample2d', x, { rows: bilinearTaps(x.shape[2], outH, align), cols: bilinearTaps(x.shape[3], outW, align) });
}

registerGradient<UpsampleSaved>('upsample2d', (node, g) => {
  const x = node.inputs[0]!;
  const gx = new Float32Array(x.size);
  forEachTap(x.shape, node.saved, (o, i, w) => (gx[i] += g[o] * w));
  return [gx];
});
