/**
 * The differentiable quantized GEMM op: a product (gemm_product.ts) whose operands are quantized
 * by a policy (formats, scaling and gradient scaling live in quant/; the op asks, it does not
 * decide). Forward: weights and activations quantized (codes + scale), one low-precision GEMM
 * with the policy's accumulation, bias in float32. Backward:
 * - errors quantized (the FP8 scheme): the output gradient is quantized by the policy (scaled by
 *   the layer's dynamic scale, a per-tensor scale, or none under a global loss scale); the input
 *   gradient and the weight gradient are low-precision GEMMs of those codes with the saved weight
 *   and activation codes; the weight gradient is then quantized as `weight_gradients`.
 * - errors in float32 (SFP8): both gradients are float32 GEMMs of the float32 output gradient with
 *   the dequantized forward operands (straight-through quantizers); a convolution's run through
 *   conv2d's own float32 gradients (conv2dGradients), the fp32 recipe's arithmetic.
 * The op saves the operands' codes, not float32 copies.
 */
import { record, registerGradient, releasingActivations } from '../autograd/index.js';
import { channelBiasAdd, channelSum, dequantize, recycle, takeBuffer, type ConvAlgorithm, type LowpGemmOptions, type LowpOperand } from '../kernels/index.js';
import { Tensor, type GradHandle } from '../tensor/index.js';
import { productKernels, type GemmProduct, type ProductKernels, type ProductOptions } from './gemm_product.js';
import type { GemmProbe } from './gemm_probe.js';

/** The tensors of a GEMM layer a recipe may quantize. */
export type OperandClass = 'weights' | 'activations' | 'errors' | 'weight_gradients';

/** The three GEMMs of a product, as the policy's accumulation options and stream keys name them. */
export type GemmPass = 'forward' | 'inputGradient' | 'weightGradient';

/** What the op hands out: forward operands x and w, quantized errors e, or float32 output gradients dy. */
export type OperandRole = 'x' | 'w' | 'e' | 'dy';

/** How one layer's operands are quantized: the recipe's decisions for that layer (src/quant/). */
export interface QuantizationPolicy {
  /** Whether the errors are quantized (the FP8 scheme) or the backward runs in float32 (SFP8). */
  readonly quantizesErrors: boolean;
  /** How float32 convolutions of a float32 backward run. */
  readonly algorithm: ConvAlgorithm;
  /** Whether nothing reads a pruned weight's gradient outside its kept blocks (weight gradients not quantized by their amax). */
  readonly prunedGradientUnread?: boolean;
  /**
   * x as the GEMM operand of its class: codes and a scale, or x itself where the class stays
   * float32. `pooled`: the codes may go in an array from the buffer pool (the caller hands it back).
   */
  quantize(cls: OperandClass, x: Float32Array, pooled?: boolean): LowpOperand;
  /** Accumulation and stochastic-rounding options of one of the three GEMMs. */
  gemmOptions(pass: GemmPass): ProductOptions;
  /** Sees every operand handed to a kernel; a float32 dy is valid during the call only. */
  observe?(role: OperandRole, operand: LowpOperand): void;
  /** Looks at this layer's tensors and products on the steps it is active (gemm_probe.ts). */
  readonly probe?: GemmProbe | null;
}

interface Saved {
  policy: QuantizationPolicy;
  kernels: ProductKernels;
  x: LowpOperand;
  w: LowpOperand;
  /** Copies of the unquantized operands, kept only on a step an active probe looks at (for the shadow products). */
  shadow: { x: Float32Array; w: Float32Array; probe: GemmProbe } | null;
  /** Whether the operand codes of this step come from the buffer pool (and go back to it). */
  pooled: boolean;
}

const FP32: LowpGemmOptions = { accumulation: 'fp32' };

/**
 * An operand's values as float32: the array itself, or its codes decoded and divided by their
 * scale into an array from the buffer pool (listed in `taken`, to go back once used).
 */
function values(o: LowpOperand, taken: Float32Array[]): Float32Array {
  if (o instanceof Float32Array) return o;
  const out = dequantize(o, takeBuffer(o.codes.length));
  taken.push(out);
  return out;
}

/** y = product(x, weight) + bias with operands quantized by `policy`. */
export function quantizedGemm(x: Tensor, weight: Tensor, bias: Tensor | null, product: GemmProduct, policy: QuantizationPolicy): Tensor {
  const kernels = productKernels(x, weight, product);
  // While activations are released (a training step, an evaluation), the input's and the weight's
  // codes come from the buffer pool and go back after the backward pass as the node's own arrays,
  // or right after the forward when no node is recorded; otherwise they are fresh, and whoever
  // observes them may keep them.
  const pooled = releasingActivations();
  const w = policy.quantize('weights', weight.data, pooled);
  const xq = policy.quantize('activations', x.data, pooled);
  policy.observe?.('w', w);
  policy.observe?.('x', xq);
  const probe = policy.probe?.active ? policy.probe : null;
  const forwardOptions = policy.gemmOptions('forward');
  const out = new Tensor(kernels.forward(xq, w, forwardOptions), kernels.outputShape);
  let shadow: Saved['shadow'] = null;
  if (probe) {
    probe.tensor('weights', weight.data, w);
    probe.tensor('activations', x.data, xq);
    showProduct(probe, 'forward', out.data, kernels.forward(x.data, weight.data, FP32), forwardOptions, () => kernels.forward(xq, w, FP32));
    shadow = { x: x.data.slice(), w: weight.data.slice(), probe };
  }
  if (bias) channelBiasAdd(out.data, bias.data, { batch: kernels.outputShape[0], channels: kernels.channels, plane: kernels.plane });
  const codes = [xq, w].flatMap((o) => (o instanceof Float32Array ? [] : [o.codes]));
  const owned = pooled && codes.length > 0 ? codes : undefined;
  record('quantizedGemm', [x, weight, bias], out, { policy, kernels, x: xq, w, shadow, pooled } satisfies Saved, owned);
  // No node took the codes (evaluation): they are dead now, so back to the pool at once.
  if (owned && out.gradFn === null) for (const a of owned) recycle(a);
  return out;
}

/**
 * Hand a product and its shadows to a probe. The product of the quantized operands with float32
 * accumulation is computed only when the product was accumulated otherwise (`float` forces it:
 * a float32 backward that runs another path, Winograd's, than the GEMM kernels).
 */
function showProduct(probe: GemmProbe, pass: GemmPass, result: Float32Array, shadow: Float32Array, options: LowpGemmOptions, operandsOnly: () => Float32Array, float = false): void {
  const fp32 = !float && options.accumulation === 'fp32';
  const own = fp32 ? null : operandsOnly();
  probe.product(pass, result, shadow, own);
  recycle(shadow);
  if (own) recycle(own);
}

registerGradient<Saved>('quantizedGemm', (node, g) => {
  const { policy, kernels, x, w, shadow, pooled } = node.saved;
  const [input, weight, bias] = node.inputs as [GradHandle, GradHandle, GradHandle | null];
  const quantizedErrors = policy.quantizesErrors;
  const e = quantizedErrors ? policy.quantize('errors', g, pooled) : g;
  policy.observe?.(quantizedErrors ? 'e' : 'dy', e);
  shadow?.probe.tensor('errors', g, e);
  // A pruned weight's gradient is +0 outside its kept blocks before anything reads it (zeroed
  // below where a dense kernel computed it), so the block-sparse kernel may compute it.
  const prunedUnread = policy.prunedGradientUnread === true || kernels.zeroPruned !== undefined;
  const options = (pass: GemmPass): ProductOptions => {
    if (!quantizedErrors) return FP32;
    const o = policy.gemmOptions(pass);
    return pass === 'weightGradient' && prunedUnread ? { ...o, prunedGradientUnread: true } : o;
  };
  let gx: Float32Array | null = null;
  let gw: Float32Array | null = null;
  if (!quantizedErrors && kernels.floatBackward) {
    const taken: Float32Array[] = [];
    const grads = kernels.floatBackward(g, weight.requiresGrad ? values(x, taken) : null, input.requiresGrad ? values(w, taken) : null, policy.algorithm, prunedUnread);
    for (const a of taken) recycle(a);
    gx = grads.gx;
    gw = grads.gw;
  } else {
    gx = input.requiresGrad ? kernels.inputGrad(e, w, options('inputGradient')) : null;
    if (weight.requiresGrad) gw = kernels.weightGrad(e, x, options('weightGradient'));
  }
  if (shadow) {
    const float = !quantizedErrors && kernels.floatBackward !== undefined;
    if (gx) showProduct(shadow.probe, 'inputGradient', gx, kernels.inputGrad(g, shadow.w, FP32), options('inputGradient'), () => kernels.inputGrad(e, w, FP32), float);
    // A pruned weight's gradient may hold +0 outside its kept blocks (the block-sparse kernel's),
    // so every product compared here does.
    const pruned = kernels.zeroPruned ?? ((v: Float32Array) => v);
    if (gw) {
      showProduct(shadow.probe, 'weightGradient', pruned(gw), pruned(kernels.weightGrad(g, shadow.x, FP32)), options('weightGradient'), () => pruned(kernels.weightGrad(e, x, FP32)), float);
    }
  }
  if (gw) {
    // The kept entries' scale: a quantized gradient of a pruned weight is +0 outside its kept blocks
    // first, whichever kernel computed it (the block-sparse one leaves them +0 already).
    if (kernels.zeroPruned && !policy.prunedGradientUnread) kernels.zeroPruned(gw);
    const q = policy.quantize('weight_gradients', gw, pooled);
    shadow?.probe.tensor('weight_gradients', gw, q);
    // The optimizer sees exactly the values the weight-gradient codes hold (decoded in place);
    // the codes are dead then.
    if (!(q instanceof Float32Array)) {
      gw = dequantize(q, gw);
      if (pooled) recycle(q.codes);
    }
  }
  const gb = bias?.requiresGrad ? Float32Array.from(channelSum(g, { batch: kernels.outputShape[0], channels: kernels.channels, plane: kernels.plane })) : null;
  if (pooled && e !== g && !(e instanceof Float32Array)) recycle(e.codes);
  return [gx, gw, gb];
});
