/**
 * The differentiable quantized GEMM layer op. Forward: weights and activations quantized per the
 * recipe (codes + scale), one low-precision GEMM with the recipe's accumulation, bias in float32.
 * Backward:
 * - errors quantized (recipe `errors` set, the FP8 scheme): the output gradient is scaled (the
 *   layer's dynamic scale, a per-tensor scale, or none under a global loss scale) and quantized;
 *   the input gradient and the weight gradient are low-precision GEMMs of those codes with the
 *   saved weight and activation codes; the weight gradient is then quantized per `weightGradients`.
 * - errors null (SFP8): both gradients are float32 GEMMs of the float32 output gradient with the
 *   dequantized forward operands (straight-through quantizers); a convolution's run through
 *   conv2d's own float32 gradients (conv2dGradients), the fp32 recipe's arithmetic.
 * The op saves the operands' codes, not float32 copies.
 */
import { record, registerGradient } from '../autograd/index.js';
import { channelBiasAdd, channelSum, dequantize, recycle, takeBuffer, type LowpOperand } from '../kernels/index.js';
import type { GemmCompute, GemmLayer } from '../nn/index.js';
import { Tensor, type GradHandle } from '../tensor/index.js';
import { layerGemms, type LayerGemms } from './gemm_kernels.js';
import type { LayerQuantState } from './layer_state.js';

interface Saved {
  state: LayerQuantState;
  gemms: LayerGemms;
  x: LowpOperand;
  w: LowpOperand;
}

const FP32: { accumulation: 'fp32' } = { accumulation: 'fp32' };

/**
 * An operand's values as float32: the array itself, or its codes decoded and divided by their
 * scale into an array from the buffer pool (listed in `taken`, to go back once used).
 */
function values(o: LowpOperand, taken: Float32Array[]): Float32Array {
  if (o instanceof Float32Array) return o;
  const out = dequantize(o.codes, o.format, o.scale ?? 1, takeBuffer(o.codes.length));
  taken.push(out);
  return out;
}

function quantizedGemm(state: LayerQuantState, layer: GemmLayer, x: Tensor): Tensor {
  const gemms = layerGemms(layer, x);
  const w = state.quantize('weights', layer.weight.data);
  const xq = state.quantize('activations', x.data);
  state.observer?.(state.name, 'w', w);
  state.observer?.(state.name, 'x', xq);
  const out = new Tensor(gemms.forward(xq, w, state.gemmOptions(0)), gemms.outputShape);
  if (layer.bias) channelBiasAdd(out.data, layer.bias.data, { batch: gemms.outputShape[0], channels: gemms.channels, plane: gemms.plane });
  return record('quantizedGemm', [x, layer.weight, layer.bias], out, { state, gemms, x: xq, w } satisfies Saved);
}

registerGradient<Saved>('quantizedGemm', (node, g) => {
  const { state, gemms, x, w } = node.saved;
  const [input, weight, bias] = node.inputs as [GradHandle, GradHandle, GradHandle | null];
  const quantizedErrors = state.quantizers.errors !== undefined;
  const e = quantizedErrors ? state.quantize('errors', g) : g;
  state.observer?.(state.name, quantizedErrors ? 'e' : 'dy', e);
  const options = (role: number) => (quantizedErrors ? state.gemmOptions(role) : FP32);
  let gx: Float32Array | null = null;
  let gw: Float32Array | null = null;
  if (!quantizedErrors && gemms.floatBackward) {
    const taken: Float32Array[] = [];
    const grads = gemms.floatBackward(g, weight.requiresGrad ? values(x, taken) : null, input.requiresGrad ? values(w, taken) : null);
    for (const a of taken) recycle(a);
    gx = grads.gx;
    gw = grads.gw;
  } else {
    gx = input.requiresGrad ? gemms.inputGrad(e, w, options(1)) : null;
    if (weight.requiresGrad) gw = gemms.weightGrad(e, x, options(2));
  }
  if (gw) {
    const q = state.quantize('weight_gradients', gw);
    // The optimizer sees exactly the values the weight-gradient codes hold (decoded in place).
    if (!(q instanceof Float32Array)) gw = dequantize(q.codes, q.format, q.scale ?? 1, gw);
  }
  const gb = bias?.requiresGrad ? Float32Array.from(channelSum(g, { batch: gemms.outputShape[0], channels: gemms.channels, plane: gemms.plane })) : null;
  return [gx, gw, gb];
});


/** The GemmCompute a recipe installs on a layer: every GEMM of the layer through quantizedGemm. */
export function recipeCompute(state: LayerQuantState): GemmCompute {
  const run = (layer: GemmLayer, x: Tensor) => quantizedGemm(state, layer, x);
  return { name: `recipe ${state.recipe.name}`, conv2d: run, convTranspose2d: run, linear: run };
}
