/** Reductions to a scalar: sum and mean of all elements (summed in double precision). */
import { record, registerGradient } from '../autograd/index.js';
import { Tensor } from '../tensor/index.js';

export function sum(x: Tensor): Tensor {
  let s = 0;
  for (let i = 0; i < x.size; i++) s += x.data[i];
  return record('sum', [x], Tensor.scalar(s), 1);
}

export function mean(x: Tensor): Tensor {
  let s = 0;
  for (let i = 0; i < x.size; i++) s += x.data[i];
  return record('sum', [x], Tensor.scalar(s / Math.max(1, x.size)), 1 / Math.max(1, x.size));
}

registerGradient<number>('sum', (node, g) => [new Float32Array(node.inputs[0]!.size).fill(g[0] * node.saved)]);
