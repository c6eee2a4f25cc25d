/**
 * Weight initializers with PyTorch's definitions (torch.nn.init), drawing from a seeded Generator
 * so a model built twice with the same seed is the same model.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Generator, Tensor } from '../tensor/index.js';

/** fan_in and fan_out as torch.nn.init computes them: dim 1 and dim 0 times the receptive field. */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.rank < 2) throw new InvalidArgumentError(`init: fan of a tensor with shape [${t.shape}] is undefined; expected rank >= 2`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

let drawing = true;

/**
 * Build inside `fn` without drawing initial values (tensors stay zero): for counting parameters
 * and shapes of large models quickly. Not for training.
 */
export function withoutInit<T>(fn: () => T): T {
  const previous = drawing;
  drawing = false;
  try {
    return fn();
  } finally {
    drawing = previous;
  }
}

export function uniform(t: Tensor, generator: Generator, bound: number): void {
  if (!drawing) return;
  for (let i = 0; i < t.size; i++) t.data[i] = (generator.uniform() * 2 - 1) * bound;
}

export function normal(t: Tensor, generator: Generator, std: number): void {
  if (!drawing) return;
  for (let i = 0; i < t.size; i++) t.data[i] = generator.normal() * std;
}

export type FanMode = 'fan_in' | 'fan_out';

/** kaiming_normal_ for a ReLU network: std = sqrt(2 / fan). */
export function kaimingNormal(t: Tensor, generator: Generator, mode: FanMode = 'fan_in'): void {
  const { fanIn, fanOut } = fans(t);
  normal(t, generator, Math.sqrt(2 / (mode === 'fan_in' ? fanIn : fanOut)));
}

/** kaiming_uniform_ with negative slope a: bound = sqrt(6 / ((1 + a^2) fan_in)). */
export function kaimingUniform(t: Tensor, generator: Generator, a = 0): void {
  uniform(t, generator, Math.sqrt(6 / ((1 + a * a) * fans(t).fanIn)));
}

/**
 * PyTorch's default for Conv and Linear layers: weight kaiming_uniform_(a = sqrt(5)), that is
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias from the same range.
 */
export function defaultLayerInit(weight: Tensor, bias: Tensor | null, generator: Generator): void {
  kaimingUniform(weight, generator, Math.sqrt(5));
  if (bias) uniform(bias, generator, 1 / Math.sqrt(fans(weight).fanIn));
}
