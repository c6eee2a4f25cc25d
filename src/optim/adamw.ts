/**
 * AdamW (Loshchilov & Hutter 2019) as PyTorch's torch.optim.AdamW, step t from 1:
 *   p <- p - lr * weightDecay * p                       (decoupled weight decay)
 *   m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
 *   p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 */
import { InvalidArgumentError } from '../errors.js';
import { adamwApply, adamwMasked, adamwMoments } from '../kernels/index.js';
import type { Tensor } from '../tensor/index.js';
import { Optimizer, type OptimizerBaseOptions } from './optimizer.js';

export interface AdamWOptions extends OptimizerBaseOptions {
  betas?: [number, number];
  eps?: number;
}

export class AdamW extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;

  constructor(params: readonly (readonly [string, Tensor])[], options: AdamWOptions) {
    super(params, { weightDecay: 0.01, ...options }, ['exp_avg', 'exp_avg_sq']);
    [this.beta1, this.beta2] = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    for (const [name, b] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) {
      if (!(b >= 0 && b < 1)) throw new InvalidArgumentError(`AdamW: ${name} is ${b}; expected 0 <= beta < 1`);
    }
    if (!(this.eps > 0)) throw new InvalidArgumentError(`AdamW: eps is ${this.eps}; expected > 0`);
  }

  protected update(name: string, p: Float32Array, g: Float32Array, t: number, keep?: Uint8Array): void {
    const m = this.slot(name, 'exp_avg');
    const v = this.slot(name, 'exp_avg_sq');
    const { beta1, beta2, eps, lr } = this;
    const decay = 1 - lr * this.weightDecay;
    const c1 = 1 - beta1 ** t;
    const c2Sqrt = Math.sqrt(1 - beta2 ** t);
    const stepSize = lr / c1;
    if (keep && !this.storesMoments()) {
      // A pruned weight: its kept entries only, each as the two halves below compute it.
      adamwMasked(p, m, v, g, keep, beta1, beta2, decay, stepSize, c2Sqrt, eps);
      return;
    }
    adamwMoments(m, v, g, beta1, beta2);
    this.storeMoment(m);
    this.storeMoment(v);
    adamwApply(p, m, v, decay, stepSize, c2Sqrt, eps);
  }
}
