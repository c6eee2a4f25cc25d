/** What ops keep for their gradient rules, shared by the products (mul, matmul, linear, convolution). */
import type { Tensor } from '../tensor/index.js';

/** A product's operands as its gradient needs them: each one's values only for the other's gradient. */
export interface ProductOperands {
  aData: Float32Array | null;
  bData: Float32Array | null;
}

export function productOperands(a: Tensor, b: Tensor): ProductOperands {
  return { aData: b.requiresGrad ? a.data : null, bData: a.requiresGrad ? b.data : null };
}

/** The arrays of a product's saved operands, for record's `borrowed`. */
export function operandArrays(saved: ProductOperands): Float32Array[] {
  return [saved.aData, saved.bData].filter((a): a is Float32Array => a !== null);
}
