import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../src/autograd/index.js';
import type { LowpOperand } from '../../src/kernels/index.js';
import { mul, probedProduct, runProduct, sum, type GemmPass, type GemmProbe, type GemmProduct, type OperandClass } from '../../src/ops/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

class Recorder implements GemmProbe {
  seen: [OperandClass, number[]][] = [];
  products: GemmPass[] = [];
  constructor(public active: boolean) {}
  tensor(cls: OperandClass, raw: Float32Array, operand: LowpOperand): void {
    assert.equal(operand, raw, 'a float32 layer hands the tensor itself');
    this.seen.push([cls, Array.from(raw)]);
  }
  product(pass: GemmPass): void {
    this.products.push(pass);
  }
}

const CONV: GemmProduct = { kind: 'conv2d', options: { padding: 1 } };

function run(probe: Recorder | null): { y: Float32Array; gx: Float32Array; gw: Float32Array; gb: Float32Array; x: Tensor; w: Tensor } {
  const g = new Generator(2);
  const x = Tensor.randn([2, 3, 4, 4], g).requireGrad();
  const w = Tensor.randn([5, 3, 3, 3], g).requireGrad();
  const b = Tensor.randn([5], g).requireGrad();
  const y = probe ? probedProduct(x, w, b, CONV, 'direct', probe) : runProduct(x, w, b, CONV, 'direct');
  const out = Float32Array.from(y.data);
  // A loss whose gradient differs per element, so the taps' gradients are not all ones.
  const weights = Tensor.randn(y.shape, g);
  backward(sum(mul(y, weights)));
  return { y: out, gx: x.grad!.data, gw: w.grad!.data, gb: b.grad!.data, x, w };
}

describe('probes on a float32 GEMM layer', () => {
  test('the probed product gives the same values and gradients, and shows the four tensors', () => {
    const plain = run(null);
    const probe = new Recorder(true);
    const probed = run(probe);
    assert.deepEqual(probed.y, plain.y);
    assert.deepEqual([probed.gx, probed.gw, probed.gb], [plain.gx, plain.gw, plain.gb]);
    assert.deepEqual(probe.seen.map(([cls]) => cls), ['weights', 'activations', 'errors', 'weight_gradients']);
    assert.deepEqual(probe.seen[0][1], Array.from(probed.w.data));
    assert.deepEqual(probe.seen[1][1], Array.from(probed.x.data));
    assert.deepEqual(probe.seen[3][1], Array.from(probed.gw), 'the weight gradient shown is the one the weight gets');
    assert.deepEqual(probe.products, [], 'nothing to compare a float32 product with');
  });

  test('an inactive probe sees nothing', () => {
    const probe = new Recorder(false);
    run(probe);
    assert.deepEqual(probe.seen, []);
  });
});
