/**
 * Batch normalization over (N, H, W) per channel, as PyTorch's BatchNorm2d: training mode
 * normalizes with the batch statistics (biased variance) and updates the running statistics
 * (unbiased variance) with `momentum`; eval mode uses the running statistics.
 *
 * For backward it keeps the normalized input: as float32, or, with `saveAs`, as codes of a
 * low-precision format scaled per tensor by a power of two (amax to the top binade below the
 * format's largest value), decoded again in backward. That is the only change: the forward
 * output is computed from the float32 values either way.
 */
import { needsGrad, record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError, NonFiniteError } from '../errors.js';
import { resolveFormat, type QTensor } from '../formats/index.js';
import { absMax, batchNormBackward, batchNormBackwardCodes, batchNormForward, channelMeanVar, encodeScaled, recycle, takeBuffer, takeCodes } from '../kernels/index.js';
import { Tensor, formatShape, type GradHandle } from '../tensor/index.js';

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
  /** Format of the normalized input kept for backward (nearest rounding); default float32. */
  saveAs?: string | null;
  /**
   * Write the output over x's values (as PyTorch's in-place layers): the caller's promise that
   * nothing reads x afterwards or kept it for backward. Batch norm keeps the normalized input,
   * not x, so its own gradient is unaffected.
   */
  inPlace?: boolean;
}

interface BatchNormSaved {
  /** Normalized input, as float32 or as scaled codes. */
  xhat: Float32Array | QTensor;
  /** 1 / sqrt(var + eps) per channel. */
  invStd: Float32Array;
  training: boolean;
  /** The affine weight's values (the input's gradient is scaled by them). */
  weightData: Float32Array | null;
}

export function batchNorm2d(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  runningMean: Tensor,
  runningVar: Tensor,
  options: BatchNormOptions,
): Tensor {
  if (x.rank !== 4) throw new InvalidArgumentError(`batchNorm2d: input ${formatShape(x.shape)}; expected [N, C, H, W]`);
  const [batch, channels, height, width] = x.shape;
  for (const [name, t] of [['weight', weight], ['bias', bias], ['runningMean', runningMean], ['runningVar', runningVar]] as const) {
    if (t && (t.rank !== 1 || t.shape[0] !== channels)) {
      throw new InvalidArgumentError(`batchNorm2d: ${name} ${formatShape(t.shape)}; expected [${channels}]`);
    }
  }
  const momentum = options.momentum ?? 0.1;
  const eps = options.eps ?? 1e-5;
  const plane = height * width;
  const count = batch * plane;
  if (options.training && count < 2) {
    throw new InvalidArgumentError(`batchNorm2d: training needs more than one value per channel; got input ${formatShape(x.shape)}`);
  }
  const shape = { batch, channels, plane };
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  if (options.training) {
    channelMeanVar(x.data, shape, mean, variance);
    // A NaN or Inf in the batch would make the running statistics NaN for good, and the model's
    // output the same for every input from then on: refuse it before they change.
    const bad = mean.findIndex((m, c) => !Number.isFinite(m) || !Number.isFinite(variance[c]));
    if (bad >= 0) {
      throw new NonFiniteError(
        `batchNorm2d: channel ${bad} of the batch holds NaN or Inf (mean ${mean[bad]}, variance ${variance[bad]}); ` +
          'the running statistics are left as they were. Check the input data for non-finite values, or lower the learning rate if training diverged',
      );
    }
    for (let c = 0; c < channels; c++) {
      runningMean.data[c] = (1 - momentum) * runningMean.data[c] + momentum * mean[c];
      runningVar.data[c] = (1 - momentum) * runningVar.data[c] + momentum * ((variance[c] * count) / (count - 1));
    }
  } else {
    mean.set(runningMean.data);
    variance.set(runningVar.data);
  }
  const invStd = Float32Array.from(variance, (v) => 1 / Math.sqrt(v + eps));
  // Both written completely by the kernel (which reads each x before writing its output).
  const out = options.inPlace ? new Tensor(x.data, x.shape) : new Tensor(takeBuffer(x.size), x.shape);
  const xhat = takeBuffer(x.size);
  batchNormForward(x.data, mean, invStd, weight?.data ?? null, bias?.data ?? null, xhat, out.data, shape);
  const saved = options.saveAs && needsGrad(x, weight, bias) ? compact(xhat, options.saveAs) : xhat;
  if (saved !== xhat || !needsGrad(x, weight, bias)) recycle(xhat);
  const node = { xhat: saved, invStd, training: options.training, weightData: weight?.data ?? null } satisfies BatchNormSaved;
  // Either form is the node's alone: the backward pass hands it back to the pool once the rule has run.
  return record('batchNorm2d', [x, weight, bias], out, node, [saved instanceof Float32Array ? saved : saved.codes]);
}

/** xhat as codes of `format`, scaled so its amax lands in the format's top binade; float32 kept when amax is 0 or not finite. */
function compact(xhat: Float32Array, format: string): Float32Array | QTensor {
  const f = resolveFormat(format);
  const amax = absMax(xhat);
  if (!(amax > 0) || !Number.isFinite(amax)) return xhat;
  const scale = 2 ** Math.min(100, Math.max(-100, Math.floor(Math.log2(f.maxFinite / amax))));
  return encodeScaled(xhat, scale, f, {}, takeCodes(f, xhat.length)).coded;
}

registerGradient<BatchNormSaved>('batchNorm2d', (node, g) => {
  const [x, weight, bias] = node.inputs as [GradHandle, GradHandle | null, GradHandle | null];
  const { xhat, invStd, training, weightData } = node.saved;
  const [batch, channels, height, width] = x.shape;
  const sumG = new Float64Array(channels);
  const sumGX = new Float64Array(channels);
  // gx in place of g (the kernel reads a channel's g before writing its gx; g is this op's alone).
  const gx = x.requiresGrad ? g : null;
  const shape = { batch, channels, plane: height * width };
  if (xhat instanceof Float32Array) batchNormBackward(g, xhat, invStd, weightData, training, gx, sumG, sumGX, shape);
  else batchNormBackwardCodes(g, xhat, invStd, weightData, training, gx, sumG, sumGX, shape);
  return [gx, weight?.requiresGrad ? Float32Array.from(sumGX) : null, bias?.requiresGrad ? Float32Array.from(sumG) : null];
});
