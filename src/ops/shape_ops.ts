/** Shape ops: reshape, flatten and concat. */
import { record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import { takeBuffer } from '../kernels/index.js';
import { Tensor, formatShape, shapeSize, type Shape } from '../tensor/index.js';

/** The same values in another shape; one dimension may be -1 (inferred). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const known = shape.filter((d) => d !== -1);
  const inferred = shape.length - known.length;
  if (inferred > 1) throw new InvalidArgumentError(`reshape: only one dimension may be -1, got ${formatShape(shape)}`);
  const knownSize = shapeSize(known);
  const target = shape.map((d) => (d === -1 ? (knownSize === 0 ? 0 : x.size / knownSize) : d));
  if (shapeSize(target) !== x.size || !target.every(Number.isInteger)) {
    throw new InvalidArgumentError(`reshape: cannot view ${formatShape(x.shape)} (${x.size} elements) as ${formatShape(shape)}`);
  }
  return record('reshape', [x], new Tensor(x.data, target), null);
}

registerGradient('reshape', (_node, g) => [g]);

/** Collapse dimensions from `startDim` on into one: [N, C, H, W] -> [N, C*H*W]. */
export function flatten(x: Tensor, startDim = 1): Tensor {
  const head = x.shape.slice(0, startDim);
  return reshape(x, [...head, shapeSize(x.shape.slice(startDim))]);
}

interface ConcatSaved {
  axis: number;
  sizes: number[];
}

/** Join tensors along `axis`; all other dimensions must match. */
export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  if (tensors.length === 0) throw new InvalidArgumentError('concat: needs at least one tensor');
  const first = tensors[0];
  const rank = first.rank;
  const ax = axis < 0 ? axis + rank : axis;
  if (ax < 0 || ax >= rank) throw new InvalidArgumentError(`concat: axis ${axis} is out of range for rank ${rank}`);
  for (const t of tensors) {
    if (t.rank !== rank || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new InvalidArgumentError(
        `concat: shapes ${tensors.map((s) => formatShape(s.shape)).join(', ')} differ outside axis ${ax}; expected equal sizes there`,
      );
    }
  }
  const sizes = tensors.map((t) => t.shape[ax]);
  const shape = [...first.shape];
  shape[ax] = sizes.reduce((a, b) => a + b, 0);
  const outer = shapeSize(first.shape.slice(0, ax));
  const inner = shapeSize(first.shape.slice(ax + 1));
  const out = Tensor.zeros(shape);
  const rowOut = shape[ax] * inner;
  let offset = 0;
  for (const t of tensors) {
    const row = t.shape[ax] * inner;
    for (let o = 0; o < outer; o++) out.data.set(t.data.subarray(o * row, (o + 1) * row), o * rowOut + offset);
    offset += row;
  }
  return record('concat', tensors, out, { axis: ax, sizes });
}

registerGradient<ConcatSaved>('concat', (node, g, output) => {
  const { axis, sizes } = node.saved;
  const outer = shapeSize(output.shape.slice(0, axis));
  const inner = shapeSize(output.shape.slice(axis + 1));
  const rowOut = output.shape[axis] * inner;
  let offset = 0;
  return sizes.map((size) => {
    const row = size * inner;
    const gi = new Float32Array(outer * row);
    for (let o = 0; o < outer; o++) gi.set(g.subarray(o * rowOut + offset, o * rowOut + offset + row), o * row);
    offset += row;
    return gi;
  });
});

interface ShortcutSaved {
  stride: number;
  padBefore: number;
}

/**
 * The parameter-free shortcut of He et al. 2016 (option A): keep every `stride`-th row and column
 * of x [N, C, H, W] and zero-pad the channels to `outChannels`, half before and half after.
 */
export function subsamplePadChannels(x: Tensor, stride: number, outChannels: number): Tensor {
  if (x.rank !== 4) throw new InvalidArgumentError(`subsamplePadChannels: input ${formatShape(x.shape)}; expected [N, C, H, W]`);
  const [batch, channels, height, width] = x.shape;
  if (!Number.isInteger(stride) || stride < 1 || !Number.isInteger(outChannels) || outChannels < channels) {
    throw new InvalidArgumentError(
      `subsamplePadChannels: stride ${stride} and outChannels ${outChannels} for ${channels} channels; expected stride >= 1 and outChannels >= ${channels}`,
    );
  }
  const outH = Math.ceil(height / stride);
  const outW = Math.ceil(width / stride);
  const padBefore = Math.floor((outChannels - channels) / 2);
  const out = new Tensor(takeBuffer(batch * outChannels * outH * outW), [batch, outChannels, outH, outW]);
  shortcutCopy(x.shape, outChannels, stride, padBefore, x.data, out.data, 'forward');
  return record('subsamplePadChannels', [x], out, { stride, padBefore } satisfies ShortcutSaved);
}

/**
 * The shortcut's copy between x [N, C, H, W] and its output [N, outChannels, outH, outW]:
 * 'forward' writes every output value (the padded channels as zeros), 'backward' every input
 * value (zeros where the stride skips).
 */
function shortcutCopy(
  inShape: Shape,
  outChannels: number,
  stride: number,
  padBefore: number,
  x: Float32Array,
  y: Float32Array,
  direction: 'forward' | 'backward',
): void {
  const [batch, channels, height, width] = inShape;
  const outH = Math.ceil(height / stride);
  const outW = Math.ceil(width / stride);
  const outPlane = outH * outW;
  const inPlane = height * width;
  if (direction === 'backward' && stride > 1) x.fill(0);
  for (let n = 0; n < batch; n++) {
    if (direction === 'forward') {
      const first = n * outChannels * outPlane;
      y.fill(0, first, first + padBefore * outPlane);
      y.fill(0, first + (padBefore + channels) * outPlane, first + outChannels * outPlane);
    }
    for (let c = 0; c < channels; c++) {
      const inBase = (n * channels + c) * inPlane;
      const outBase = (n * outChannels + c + padBefore) * outPlane;
      if (stride === 1) {
        if (direction === 'forward') y.set(x.subarray(inBase, inBase + inPlane), outBase);
        else x.set(y.subarray(outBase, outBase + outPlane), inBase);
        continue;
      }
      for (let h = 0; h < outH; h++) {
        const o = outBase + h * outW;
        const i = inBase + h * stride * width;
        if (direction === 'forward') for (let w = 0; w < outW; w++) y[o + w] = x[i + w * stride];
        else for (let w = 0; w < outW; w++) x[i + w * stride] = y[o + w];
      }
    }
  }
}

registerGradient<ShortcutSaved>('subsamplePadChannels', (node, g, output) => {
  const x = node.inputs[0]!;
  const gx = takeBuffer(x.size);
  shortcutCopy(x.shape, output.shape[1], node.saved.stride, node.saved.padBefore, gx, g, 'backward');
  return [gx];
});
