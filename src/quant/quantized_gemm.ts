/** The GemmCompute a recipe installs on a layer: its product through the quantized GEMM op, under the layer's policy. */
import type { GemmCompute } from '../nn/index.js';
import { quantizedGemm } from '../ops/index.js';
import type { LayerQuantState } from './layer_state.js';

export function recipeCompute(state: LayerQuantState): GemmCompute {
  return { name: `recipe ${state.recipe.name}`, run: (x, weight, bias, product) => quantizedGemm(x, weight, bias, product, state) };
}
