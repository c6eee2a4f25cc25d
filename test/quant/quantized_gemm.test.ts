/**
 * What a quantized GEMM layer keeps for backward: its operands' 8-bit codes, not the float32
 * activation it was given, which is freed once the forward pass is done with it (under fp32 the
 * same activation stays alive, as the weight gradient needs it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../src/autograd/index.js';
import { Conv2d } from '../../src/nn/index.js';
import { conv2d, relu, sum } from '../../src/ops/index.js';
import { quantizeReference, resolveFormat } from '../../src/formats/index.js';
import { amaxOf, scaleFromAmax } from '../../src/quant/scaling.js';
import { applyRecipe, presetRecipe } from '../../src/quant/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';
import { isCollected } from '../helpers/collect.js';

async function conv1InputFreed(recipe: string): Promise<{ freed: boolean; grad: Float32Array }> {
  const g = new Generator(5);
  const conv1 = new Conv2d(2, 4, 3, { padding: 1, generator: g });
  const conv2 = new Conv2d(4, 3, 3, { padding: 1, generator: g });
  applyRecipe(conv1, presetRecipe(recipe), { seed: 1 });
  const session = applyRecipe(conv2, presetRecipe(recipe), { seed: 1 });
  const x = Tensor.randn([2, 2, 6, 6], g);
  let h: Tensor | null = relu(conv1.call(x));
  const ref = new WeakRef(h.data);
  const y = sum(conv2.call(h));
  h = null;
  const freed = await isCollected(ref);
  backward(session.scaleLoss(y));
  session.finishBackward();
  return { freed, grad: conv1.weight.grad!.data };
}

describe('quantized GEMM memory', () => {
  test('fp8 keeps the codes of the activation, and the float32 activation is freed', async () => {
    const { freed, grad } = await conv1InputFreed('fp8');
    assert.equal(freed, true);
    assert.ok(grad.every(Number.isFinite) && grad.some((v) => v !== 0));
  });

  test('sfp8 also keeps only codes (its backward uses the dequantized forward operands)', async () => {
    assert.equal((await conv1InputFreed('sfp8')).freed, true);
  });

  test('fp32 keeps the float32 activation for the weight gradient (control)', async () => {
    assert.equal((await conv1InputFreed('fp32')).freed, false);
  });
});

describe('SFP8 backward of a convolution', () => {
  /** x as SFP8's forward quantizes it: E5M2 of x * s, s the power of two putting amax 2^8 below max. */
  function dequantized(x: Float32Array): Float32Array {
    const e5m2 = resolveFormat('e5m2');
    const s = scaleFromAmax(amaxOf(x), e5m2, 8, true)!;
    const q = quantizeReference(Float32Array.from(x, (v) => v * s), e5m2, { rounding: 'nearest' });
    return Float32Array.from(q, (v) => v / s);
  }

  // 16 channels at 3x3 stride 1 (Winograd), a strided one (col2im), a grouped one (the SGEMM).
  const layers: [string, () => Conv2d, number[]][] = [
    ['3x3 stride 1, 16 -> 24 channels', () => new Conv2d(16, 24, 3, { padding: 1, generator: new Generator(7) }), [2, 16, 8, 8]],
    ['3x3 stride 2', () => new Conv2d(4, 6, 3, { padding: 1, stride: 2, generator: new Generator(8) }), [2, 4, 9, 9]],
    ['grouped 3x3', () => new Conv2d(32, 32, 3, { padding: 1, groups: 2, generator: new Generator(9) }), [2, 32, 6, 6]],
  ];
  for (const [name, make, shape] of layers) {
    test(`${name}: the fp32 recipe's conv2d gradients on the dequantized forward operands, bit for bit`, () => {
      const layer = make();
      applyRecipe(layer, presetRecipe('sfp8'), { seed: 1 });
      const x = Tensor.randn(shape, new Generator(10));
      x.requiresGrad = true;
      const y = layer.call(x);
      const gy = Tensor.randn(y.shape as number[], new Generator(11));
      backward(y, { gradient: gy });
      const xr = new Tensor(dequantized(x.data), shape);
      const wr = new Tensor(dequantized(layer.weight.data), layer.weight.shape as number[]);
      xr.requiresGrad = true;
      wr.requiresGrad = true;
      const yr = conv2d(xr, wr, null, { padding: 1, stride: layer.options.stride, groups: layer.options.groups });
      backward(yr, { gradient: gy });
      assert.deepEqual(x.grad!.data, xr.grad!.data, 'input gradient');
      assert.deepEqual(layer.weight.grad!.data, wr.grad!.data, 'weight gradient');
      assert.ok(x.grad!.data.some((v) => v !== 0));
    });
  }
});
