/**
 * Looking into a GEMM layer's step without changing it (the numerics lab, src/quant/stats.ts).
 * A probe sees, on the steps it is active, each tensor of the layer (weights, activations, errors,
 * weight gradients) as float32 before any scaling together with the operand a kernel got, and each
 * product (forward, input gradient, weight gradient) together with its float32 shadow: the same
 * product of the unquantized operands in float32. The quantized op (quantized_gemm.ts) calls it;
 * a float32 layer goes through `probedProduct`, which taps its gradients with identity ops. Nothing
 * a probe sees is changed, and an inactive probe costs one property read per op.
 */
import { record, registerGradient } from '../autograd/index.js';
import type { ConvAlgorithm, LowpOperand } from '../kernels/index.js';
import { Tensor } from '../tensor/index.js';
import { runProduct, type GemmProduct } from './gemm_product.js';
import type { GemmPass, OperandClass } from './quantized_gemm.js';

export interface GemmProbe {
  /** Whether this step is looked at; when false nothing below is called. */
  readonly active: boolean;
  /**
   * A tensor of class `cls`: its float32 values before scaling (`raw`) and the operand the kernel
   * got (codes and scale, or `raw` itself where the class stays float32). Valid during the call only.
   */
  tensor(cls: OperandClass, raw: Float32Array, operand: LowpOperand): void;
  /**
   * One product of the layer: what it computed (`result`), the float32 product of the unquantized
   * operands (`shadow`), and the quantized operands' product with float32 accumulation
   * (`operandsOnly`: null when that is `result` itself). Valid during the call only.
   */
  product(pass: GemmPass, result: Float32Array, shadow: Float32Array, operandsOnly: Float32Array | null): void;
}

interface TapSaved {
  see: (g: Float32Array) => void;
}

/** x itself for the forward pass (same values, same array); its gradient is shown to `see` on the way back. */
function tap(x: Tensor, see: (g: Float32Array) => void): Tensor {
  return record('probeTap', [x], new Tensor(x.data, x.shape), { see } satisfies TapSaved);
}

registerGradient<TapSaved>('probeTap', (node, g) => {
  node.saved.see(g);
  return [g];
});

/**
 * A float32 layer's product under a probe: runProduct's values, with the weights and activations
 * shown before it runs and the errors and weight gradients shown as backward reaches them. For a
 * float32 layer there is nothing to compare a product with, so no products are shown.
 */
export function probedProduct(x: Tensor, weight: Tensor, bias: Tensor | null, product: GemmProduct, algorithm: ConvAlgorithm | undefined, probe: GemmProbe): Tensor {
  if (!probe.active) return runProduct(x, weight, bias, product, algorithm);
  probe.tensor('weights', weight.data, weight.data);
  probe.tensor('activations', x.data, x.data);
  const w = weight.requiresGrad ? tap(weight, (g) => probe.tensor('weight_gradients', g, g)) : weight;
  const y = runProduct(x, w, bias, product, algorithm);
  return y.requiresGrad ? tap(y, (g) => probe.tensor('errors', g, g)) : y;
}
