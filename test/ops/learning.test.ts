/**
 * End-to-end checks that ops + autograd learn: XOR with a two-layer network, and a small CNN
 * that overfits 64 real MNIST images to 100% training accuracy.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward, noGrad } from '../../src/autograd/index.js';
import { readMnist } from '../../src/data/index.js';
import * as ops from '../../src/ops/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

/** Kaiming-uniform weights for fan-in `fanIn`. */
function param(shape: number[], fanIn: number, generator: Generator): Tensor {
  const bound = Math.sqrt(6 / fanIn);
  return Tensor.uniform(shape, generator, -bound, bound).requireGrad();
}

/** SGD with momentum, in place. */
function sgdStep(params: Tensor[], velocity: Float32Array[], lr: number, momentum: number): void {
  noGrad(() => {
    params.forEach((p, k) => {
      const g = p.grad!.data;
      const v = velocity[k];
      for (let i = 0; i < p.size; i++) {
        v[i] = momentum * v[i] + g[i];
        p.data[i] -= lr * v[i];
      }
      p.grad = null;
    });
  });
}

function accuracy(logits: Tensor, labels: ArrayLike<number>): number {
  const [n, classes] = logits.shape;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits.data[i * classes + c] > logits.data[i * classes + best]) best = c;
    if (best === labels[i]) correct++;
  }
  return correct / n;
}

describe('learning', () => {
  test('a two-layer network learns XOR', () => {
    const generator = new Generator(4);
    const x = Tensor.from([0, 0, 0, 1, 1, 0, 1, 1], [4, 2]);
    const labels = Int32Array.from([0, 1, 1, 0]);
    const w1 = param([8, 2], 2, generator);
    const b1 = Tensor.zeros([8]).requireGrad();
    const w2 = param([2, 8], 8, generator);
    const b2 = Tensor.zeros([2]).requireGrad();
    const params = [w1, b1, w2, b2];
    const velocity = params.map((p) => new Float32Array(p.size));
    let loss = Infinity;
    for (let step = 0; step < 500 && loss > 0.01; step++) {
      const logits = ops.linear(ops.relu(ops.linear(x, w1, b1)), w2, b2);
      const l = ops.softmaxCrossEntropy(logits, labels);
      loss = l.item();
      backward(l);
      sgdStep(params, velocity, 0.1, 0.9);
    }
    const logits = noGrad(() => ops.linear(ops.relu(ops.linear(x, w1, b1)), w2, b2));
    assert.equal(accuracy(logits, labels), 1, `loss ${loss}`);
    assert.ok(loss < 0.05, `loss ${loss}`);
  });

  test('a small CNN overfits 64 MNIST images to 100%', () => {
    const mnist = readMnist('train');
    const n = 64;
    const x = Tensor.zeros([n, 1, 28, 28]);
    for (let i = 0; i < n * 784; i++) x.data[i] = (mnist.images[i] / 255 - 0.1307) / 0.3081;
    const labels = Int32Array.from(mnist.labels.subarray(0, n));
    const generator = new Generator(7);
    const c1 = param([8, 1, 3, 3], 9, generator);
    const c2 = param([16, 8, 3, 3], 72, generator);
    const fc = param([10, 16 * 7 * 7], 16 * 49, generator);
    const fb = Tensor.zeros([10]).requireGrad();
    const params = [c1, c2, fc, fb];
    const velocity = params.map((p) => new Float32Array(p.size));
    const forward = () => {
      let h = ops.maxPool2d(ops.relu(ops.conv2d(x, c1, null, { padding: 1 })), 2);
      h = ops.maxPool2d(ops.relu(ops.conv2d(h, c2, null, { padding: 1 })), 2);
      return ops.linear(ops.flatten(h), fc, fb);
    };
    let acc = 0;
    let steps = 0;
    for (; steps < 200 && acc < 1; steps++) {
      const logits = forward();
      acc = accuracy(logits, labels);
      backward(ops.softmaxCrossEntropy(logits, labels));
      sgdStep(params, velocity, 0.02, 0.9);
    }
    assert.equal(noGrad(() => accuracy(forward(), labels)), 1, `accuracy ${acc} after ${steps} steps`);
  });
});
