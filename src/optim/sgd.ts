/**
 * SGD with momentum as PyTorch's torch.optim.SGD (dampening 0):
 *   g <- g + weightDecay * p;  b <- momentum * b + g (b = g at the first step);
 *   p <- p - lr * (nesterov ? g + momentum * b : b)
 */
import { InvalidArgumentError } from '../errors.js';
import type { Tensor } from '../tensor/index.js';
import { Optimizer, type OptimizerBaseOptions } from './optimizer.js';

export interface SgdOptions extends OptimizerBaseOptions {
  momentum?: number;
  nesterov?: boolean;
}

export class SGD extends Optimizer {
  readonly momentum: number;
  readonly nesterov: boolean;

  constructor(params: readonly (readonly [string, Tensor])[], options: SgdOptions) {
    super(params, options, ['momentum_buffer']);
    this.momentum = options.momentum ?? 0;
    this.nesterov = options.nesterov ?? false;
    if (!(this.momentum >= 0 && this.momentum < 1)) throw new InvalidArgumentError(`SGD: momentum is ${this.momentum}; expected 0 <= momentum < 1`);
  }

  protected update(name: string, p: Float32Array, g: Float32Array, t: number): void {
    const b = this.slot(name, 'momentum_buffer');
    const { momentum, lr, weightDecay } = this;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] + weightDecay * p[i];
      b[i] = t === 1 ? gi : momentum * b[i] + gi;
    }
    this.storeMoment(b);
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] + weightDecay * p[i];
      p[i] -= lr * (this.nesterov ? gi + momentum * b[i] : b[i]);
    }
  }
}
