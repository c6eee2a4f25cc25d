/** The public API, as the README shows it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Generator, Tensor, backward, conv2d, encode, flatten, linear, quantize, relu, resolveFormat, softmaxCrossEntropy } from '../src/index.js';

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
