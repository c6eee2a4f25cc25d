/** The public API, as the README shows it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Generator, Tensor, applyMask, backward, blockMask, bsrFromDense, bsrGemm, conv2d, encode, expandMask, flatten, gemm, linear, parseBlockShape, quantize, relu,
  resolveFormat, softmaxCrossEntropy,
} from '../src/index.js';

test('the README examples run and give what they say', () => {
  const x = Float32Array.of(1.1, 70000, -3e-6);
  assert.deepEqual(Array.from(encode(x, 'e5m2')), [0x3c, 0x7c, 0x80]);
  assert.deepEqual(Array.from(quantize(x, 'e5m2', { saturate: true })), [1, 57344, -0]);
  assert.equal(resolveFormat('e4m3').maxFinite, 448);
  const g = new Generator(42);
  const images = Tensor.randn([8, 1, 28, 28], g);
  const w = Tensor.randn([16, 1, 3, 3], g, 0.3).requireGrad();
  const fc = Tensor.randn([10, 16 * 28 * 28], g, 0.01).requireGrad();
  const loss = softmaxCrossEntropy(linear(flatten(relu(conv2d(images, w, null, { padding: 1 }))), fc), [0, 1, 2, 3, 4, 5, 6, 7]);
  backward(loss);
  assert.deepEqual(w.grad!.shape, [16, 1, 3, 3]);
  assert.deepEqual(fc.grad!.shape, [10, 12544]);
});

test('the sparsity example of docs/sparsity.md runs: a pruned weight in BSR gives the dense product', () => {
  const g = new Generator(1);
  const weight = Tensor.randn([64, 576], g).data;
  const shape = parseBlockShape('8x8');
  const keep = blockMask(weight, 64, 576, shape, 0.75);
  applyMask(weight, expandMask(keep, 64, 576, shape));
  const x = Tensor.randn([576, 100], g).data;
  const dense = gemm(64, 100, 576, weight, x, new Float32Array(6400));
  const sparse = bsrGemm(bsrFromDense(weight, 64, 576, 8, 8, keep), x, 100);
  for (let i = 0; i < dense.length; i++) assert.ok(sparse[i] === dense[i], `element ${i}`);
});
