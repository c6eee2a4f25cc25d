import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward, savedMemory, tape, type GradNode } from '../../src/autograd/index.js';
import { maskBytes } from '../../src/kernels/index.js';
import { buildModel } from '../../src/nn/index.js';
import { linear, mul, relu, softmaxCrossEntropy, sum } from '../../src/ops/index.js';
import { applyRecipe, presetRecipe } from '../../src/quant/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

/** A resnet20 forward pass under a preset recipe: the loss, and the model's parameter arrays. */
function forward(recipe: string): { loss: Tensor; params: Float32Array[] } {
  const model = buildModel('resnet20', { classes: 10, inChannels: 1, seed: 1 });
  applyRecipe(model, presetRecipe(recipe), { seed: 1 });
  const x = Tensor.randn([16, 1, 28, 28], new Generator(3));
  return { loss: softmaxCrossEntropy(model.call(x), Array.from({ length: 16 }, (_, i) => i % 10)), params: model.parameters().map((p) => p.data) };
}

describe('memory the graph keeps for backward', () => {
  test('ReLU keeps a bit per element; linear keeps its input, and the excluded weight is not counted', () => {
    const x = Tensor.randn([5, 300], new Generator(1)).requireGrad();
    const w = Tensor.randn([7, 300], new Generator(2)).requireGrad();
    const r = relu(x);
    const y = sum(linear(r, w));
    const m = savedMemory(y, [w.data]);
    assert.equal(m.byOp.relu, maskBytes(x.size));
    assert.equal(m.byOp.linear, r.data.buffer.byteLength);
    assert.equal(m.bytes, maskBytes(x.size) + r.data.buffer.byteLength);
    // Without the exclusion linear's saved weight counts too.
    assert.equal(savedMemory(y).bytes, m.bytes + w.data.buffer.byteLength);
  });

  test('a buffer saved by two ops (or twice by one) is counted once', () => {
    const a = Tensor.randn([1000], new Generator(4)).requireGrad();
    const h = mul(a, Tensor.full([1000], 2));
    const y = sum(mul(h, h));
    const m = savedMemory(y);
    // The outer mul saves h twice; the inner one saves a constant (needed for a's gradient).
    assert.equal(m.buffers, 2);
    assert.equal(m.bytes, 2 * 4000);
  });

  test('nothing is counted once backward has consumed the graph', () => {
    const x = Tensor.randn([64], new Generator(5)).requireGrad();
    const y = sum(relu(x));
    assert.ok(savedMemory(y).bytes > 0);
    backward(y);
    assert.equal(savedMemory(y).bytes, 0);
  });

  test('fp8 keeps every GEMM operand and batch-norm input as one-byte codes: under 30% of fp32\'s saved bytes', () => {
    const fp32 = forward('fp32');
    const fp8 = forward('fp8');
    const a = savedMemory(fp32.loss, fp32.params);
    const b = savedMemory(fp8.loss, fp8.params);
    assert.ok(b.bytes < 0.3 * a.bytes, `fp8 saved ${b.bytes} bytes against fp32's ${a.bytes}`);
    // Every array the quantized GEMMs and batch norms saved is a code array.
    const seen = new Set<string>();
    for (const handle of tape(fp8.loss)) {
      const node = handle.gradFn as GradNode | null;
      if (node?.op !== 'quantizedGemm' && node?.op !== 'batchNorm2d') continue;
      const saved = node.saved as Record<string, unknown>;
      for (const o of node.op === 'quantizedGemm' ? [saved.x, saved.w] : [saved.xhat]) {
        assert.ok((o as { codes: unknown }).codes instanceof Uint8Array, `${node.op} saved ${Object.prototype.toString.call(o)}`);
      }
      seen.add(node.op);
    }
    assert.deepEqual([...seen].sort(), ['batchNorm2d', 'quantizedGemm']);
  });
});
