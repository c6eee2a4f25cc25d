/**
 * Batch normalization over (N, H, W) per channel, as PyTorch's BatchNorm2d: training mode
 * normalizes with the batch statistics (biased variance) and updates the running statistics
 * (unbiased variance) with `momentum`; eval mode uses the running statistics.
 */
import { record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import { Tensor, formatShape } from '../tensor/index.js';

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

interface BatchNormSaved {
  /** Normalized input. */
  xhat: Float32Array;
  /** 1 / sqrt(var + eps) per channel. */
  invStd: Float32Array;
  training: boolean;
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
  const out = Tensor.zeros(x.shape);
  const xhat = new Float32Array(x.size);
  const invStd = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let mean: number;
    let variance: number;
    if (options.training) {
      let s = 0;
      for (let n = 0; n < batch; n++) {
        const base = (n * channels + c) * plane;
        for (let p = 0; p < plane; p++) s += x.data[base + p];
      }
      mean = s / count;
      let v = 0;
      for (let n = 0; n < batch; n++) {
        const base = (n * channels + c) * plane;
        for (let p = 0; p < plane; p++) {
          const d = x.data[base + p] - mean;
          v += d * d;
        }
      }
      variance = v / count;
      runningMean.data[c] = (1 - momentum) * runningMean.data[c] + momentum * mean;
      runningVar.data[c] = (1 - momentum) * runningVar.data[c] + momentum * (v / (count - 1));
    } else {
      mean = runningMean.data[c];
      variance = runningVar.data[c];
    }
    const inv = 1 / Math.sqrt(variance + eps);
    invStd[c] = inv;
    const gamma = weight ? weight.data[c] : 1;
    const beta = bias ? bias.data[c] : 0;
    for (let n = 0; n < batch; n++) {
      const base = (n * channels + c) * plane;
      for (let p = 0; p < plane; p++) {
        const h = (x.data[base + p] - mean) * inv;
        xhat[base + p] = h;
        out.data[base + p] = h * gamma + beta;
      }
    }
  }
  return record('batchNorm2d', [x, weight, bias], out, { xhat, invStd, training: options.training } satisfies BatchNormSaved);
}

registerGradient<BatchNormSaved>('batchNorm2d', (node, g) => {
  const [x, weight, bias] = node.inputs as [Tensor, Tensor | null, Tensor | null];
  const { xhat, invStd, training } = node.saved;
  const [batch, channels, height, width] = x.shape;
  const plane = height * width;
  const count = batch * plane;
  const gx = x.requiresGrad ? new Float32Array(x.size) : null;
  const gw = weight?.requiresGrad ? new Float32Array(channels) : null;
  const gb = bias?.requiresGrad ? new Float32Array(channels) : null;
  for (let c = 0; c < channels; c++) {
    let sumG = 0;
    let sumGX = 0;
    for (let n = 0; n < batch; n++) {
      const base = (n * channels + c) * plane;
      for (let p = 0; p < plane; p++) {
        sumG += g[base + p];
        sumGX += g[base + p] * xhat[base + p];
      }
    }
    if (gw) gw[c] = sumGX;
    if (gb) gb[c] = sumG;
    if (!gx) continue;
    const scale = (weight ? weight.data[c] : 1) * invStd[c];
    for (let n = 0; n < batch; n++) {
      const base = (n * channels + c) * plane;
      for (let p = 0; p < plane; p++) {
        gx[base + p] = training
          ? (scale / count) * (count * g[base + p] - sumG - xhat[base + p] * sumGX)
          : scale * g[base + p];
      }
    }
  }
  return [gx, gw, gb];
});
