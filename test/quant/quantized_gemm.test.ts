/**
 * What a quantized GEMM layer keeps for backward: its operands' 8-bit codes, not the float32
 * activation it was given, which is freed once the forward pass is done with it (under fp32 the
 * same activation stays alive, as the weight gradient needs it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../src/autograd/index.js';
import { Conv2d } from '../../src/nn/index.js';
import { relu, sum } from '../../src/ops/index.js';
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
