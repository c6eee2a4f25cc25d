/** Inverted dropout: in training, zero each element with probability p and scale the rest by 1/(1-p). */
import { record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import { Tensor, type Generator } from '../tensor/index.js';

export function dropout(x: Tensor, p: number, training: boolean, generator: Generator): Tensor {
  if (!(p >= 0 && p < 1)) throw new InvalidArgumentError(`dropout: p is ${p}; expected 0 <= p < 1`);
  if (!training || p === 0) return x;
  const keep = 1 / (1 - p);
  const mask = new Float32Array(x.size);
  const out = Tensor.zeros(x.shape);
  for (let i = 0; i < x.size; i++) {
    mask[i] = generator.uniform() >= p ? keep : 0;
    out.data[i] = x.data[i] * mask[i];
  }
  return record('dropout', [x], out, mask);
}

registerGradient<Float32Array>('dropout', (node, g) => {
  const out = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) out[i] = g[i] * node.saved[i];
  return [out];
});
