/** Matrix product and the fully connected layer, on the GEMM kernel. */
import { record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import { gemm } from '../kernels/index.js';
import { Tensor, formatShape, type GradHandle } from '../tensor/index.js';
import { operandArrays, productOperands, type ProductOperands } from './saved.js';

/** [m, k] x [k, n] -> [m, n]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new InvalidArgumentError(
      `matmul: got ${formatShape(a.shape)} x ${formatShape(b.shape)}; expected [m, k] x [k, n]`,
    );
  }
  const [m, k] = a.shape;
  const n = b.shape[1];
  const out = Tensor.zeros([m, n]);
  gemm(m, n, k, a.data, b.data, out.data);
  const saved = productOperands(a, b);
  return record('matmul', [a, b], out, saved, undefined, operandArrays(saved));
}

registerGradient<ProductOperands>('matmul', (node, g) => {
  const [a, b] = node.inputs as [GradHandle, GradHandle];
  const { aData, bData } = node.saved;
  const [m, k] = a.shape;
  const n = b.shape[1];
  // dA = G B^T, dB = A^T G
  const ga = a.requiresGrad ? gemm(m, k, n, g, bData!, new Float32Array(m * k), { transB: true }) : null;
  const gb = b.requiresGrad ? gemm(k, n, m, aData!, g, new Float32Array(k * n), { transA: true }) : null;
  return [ga, gb];
});

/** x [N, in] times weight [out, in] transposed, plus bias [out]: y = x W^T + b. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new InvalidArgumentError(
      `linear: input ${formatShape(x.shape)} and weight ${formatShape(weight.shape)}; expected [N, in] and [out, in]`,
    );
  }
  const [batch, inFeatures] = x.shape;
  const outFeatures = weight.shape[0];
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outFeatures)) {
    throw new InvalidArgumentError(`linear: bias ${formatShape(bias.shape)}; expected [${outFeatures}]`);
  }
  const out = Tensor.zeros([batch, outFeatures]);
  if (bias) for (let i = 0; i < batch; i++) out.data.set(bias.data, i * outFeatures);
  gemm(batch, outFeatures, inFeatures, x.data, weight.data, out.data, { transB: true, beta: bias ? 1 : 0 });
  const saved = productOperands(x, weight);
  return record('linear', [x, weight, bias], out, saved, undefined, operandArrays(saved));
}

registerGradient<ProductOperands>('linear', (node, g) => {
  const [x, weight, bias] = node.inputs as [GradHandle, GradHandle, GradHandle | null];
  const { aData: xData, bData: weightData } = node.saved;
  const [batch, inFeatures] = x.shape;
  const outFeatures = weight.shape[0];
  // dx = G W, dW = G^T x, db = sum over the batch of G
  const gx = x.requiresGrad ? gemm(batch, inFeatures, outFeatures, g, weightData!, new Float32Array(batch * inFeatures)) : null;
  const gw = weight.requiresGrad
    ? gemm(outFeatures, inFeatures, batch, g, xData!, new Float32Array(outFeatures * inFeatures), { transA: true })
    : null;
  let gb: Float32Array | null = null;
  if (bias?.requiresGrad) {
    gb = new Float32Array(outFeatures);
    for (let i = 0; i < batch; i++) for (let j = 0; j < outFeatures; j++) gb[j] += g[i * outFeatures + j];
  }
  return [gx, gw, gb];
});
