/** Forward semantics of normalization, pooling, upsampling, dropout, loss and shape ops. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../src/autograd/index.js';
import { recycle } from '../../src/kernels/index.js';
import * as ops from '../../src/ops/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';
import { randomTensor } from '../helpers/tensors.js';

function close(actual: ArrayLike<number>, expected: number[], tolerance = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `${i}: ${actual[i]} vs ${expected[i]}`);
}

describe('batchNorm2d', () => {
  test('training normalizes per channel and updates the running statistics (unbiased variance)', () => {
    const x = Tensor.from([1, 2, 3, 4, 10, 20, 30, 40], [2, 2, 1, 2]); // channel 0: 1,2,10,20 ; channel 1: 3,4,30,40
    const rm = Tensor.zeros([2]);
    const rv = Tensor.ones([2]);
    const y = ops.batchNorm2d(x, null, null, rm, rv, { training: true, momentum: 0.1, eps: 0 });
    const c0 = [1, 2, 10, 20];
    const mean = c0.reduce((a, b) => a + b) / 4;
    const variance = c0.reduce((a, b) => a + (b - mean) ** 2, 0) / 4;
    close([y.data[0], y.data[1], y.data[4], y.data[5]], c0.map((v) => (v - mean) / Math.sqrt(variance)), 1e-5);
    close([rm.data[0]], [0.1 * mean], 1e-5);
    close([rv.data[0]], [0.9 + 0.1 * ((variance * 4) / 3)], 1e-4);
  });

  test('eval uses the running statistics and the affine parameters', () => {
    const y = ops.batchNorm2d(Tensor.from([3], [1, 1, 1, 1]), Tensor.from([2]), Tensor.from([1]), Tensor.from([1]), Tensor.from([4]), { training: false, eps: 0 });
    close(y.data, [2 * ((3 - 1) / 2) + 1]);
  });
});

describe('pooling', () => {
  const x = Tensor.from(Array.from({ length: 16 }, (_, i) => i), [1, 1, 4, 4]);
  test('max pool 2x2', () => close(ops.maxPool2d(x, 2).data, [5, 7, 13, 15]));
  test('max pool 3x3 stride 2 padding 1 (ResNet stem)', () => close(ops.maxPool2d(x, 3, { stride: 2, padding: 1 }).data, [5, 7, 13, 15]));
  test('ceil mode keeps a last partial window (SqueezeNet: 3x3 stride 2 on 4x4 -> 2x2, on 5x5 -> 2x2)', () => {
    close(ops.maxPool2d(x, 3, { stride: 2, ceilMode: true }).data, [10, 11, 14, 15]);
    assert.deepEqual(ops.maxPool2d(Tensor.zeros([1, 1, 5, 5]), 3, { stride: 2, ceilMode: true }).shape, [1, 1, 2, 2]);
    assert.deepEqual(ops.maxPool2d(Tensor.zeros([1, 1, 6, 6]), 3, { stride: 2, ceilMode: true }).shape, [1, 1, 3, 3]);
    assert.deepEqual(ops.maxPool2d(Tensor.zeros([1, 1, 6, 6]), 3, { stride: 2 }).shape, [1, 1, 2, 2]);
    close(ops.avgPool2d(x, 3, { stride: 2, ceilMode: true }).data.subarray(3), [12.5]);
  });
  test('option-A shortcut keeps every second pixel and pads channels on both sides', () => {
    const y = ops.subsamplePadChannels(x, 2, 3);
    assert.deepEqual(y.shape, [1, 3, 2, 2]);
    close(y.data, [0, 0, 0, 0, 0, 2, 8, 10, 0, 0, 0, 0]);
  });
  test('option-A shortcut on recycled buffers: stale contents never leak into the output or the gradient (stride 1 and 2)', () => {
    for (const stride of [1, 2]) {
      const input = randomTensor([3, 4, 70, 66], 5);
      input.requiresGrad = true;
      const outH = Math.ceil(70 / stride), outW = Math.ceil(66 / stride);
      // Pooled arrays of the output's and the input's sizes, full of NaN: the op takes them.
      for (const n of [3 * 7 * outH * outW, input.size]) recycle(new Float32Array(n).fill(NaN));
      const y = ops.subsamplePadChannels(input, stride, 7);
      const g = randomTensor([...y.shape], 6);
      backward(ops.sum(ops.mul(y, g)));
      for (let n = 0; n < 3; n++) {
        for (let c = 0; c < 7; c++) {
          for (let h = 0; h < outH; h++) {
            for (let w = 0; w < outW; w++) {
              const inside = c >= 1 && c < 5;
              const at = ((n * 7 + c) * outH + h) * outW + w;
              assert.equal(y.data[at], inside ? input.data[((n * 4 + c - 1) * 70 + h * stride) * 66 + w * stride] : 0);
            }
          }
        }
      }
      const gx = input.grad!.data;
      for (let n = 0; n < 3; n++) {
        for (let c = 0; c < 4; c++) {
          for (let h = 0; h < 70; h++) {
            for (let w = 0; w < 66; w++) {
              const kept = h % stride === 0 && w % stride === 0;
              const expected = kept ? g.data[((n * 7 + c + 1) * outH + h / stride) * outW + w / stride] : 0;
              assert.equal(gx[((n * 4 + c) * 70 + h) * 66 + w], expected);
            }
          }
        }
      }
    }
  });
  test('average pool counts padding by default, or not', () => {
    const ones = Tensor.ones([1, 1, 3, 3]);
    close(ops.avgPool2d(ones, 3, { stride: 1, padding: 1 }).data.subarray(0, 1), [4 / 9]);
    close(ops.avgPool2d(ones, 3, { stride: 1, padding: 1, countIncludePad: false }).data.subarray(0, 1), [1]);
  });
  test('adaptive average pool: 1x1 is the mean, uneven windows overlap as in PyTorch', () => {
    close(ops.adaptiveAvgPool2d(x, 1).data, [7.5]);
    const row = Tensor.from([0, 1, 2, 3, 4], [1, 1, 1, 5]);
    close(ops.adaptiveAvgPool2d(row, 1, 3).data, [0.5, 2, 3.5]);
  });
  test('NaN propagates through max pooling', () => {
    assert.ok(Number.isNaN(ops.maxPool2d(Tensor.from([1, NaN, 3, 4], [1, 1, 2, 2]), 2).data[0]));
  });
});

describe('upsampling', () => {
  const x = Tensor.from([1, 2, 3, 4], [1, 1, 2, 2]);
  test('nearest x2', () => close(ops.upsampleNearest2d(x, { scaleFactor: 2 }).data, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]));
  test('bilinear 2x2 -> 4x4 (half-pixel centres)', () => {
    close(ops.upsampleBilinear2d(x, { size: [4, 4] }).data, [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]);
  });
  test('bilinear align corners 2x2 -> 3x3', () => close(ops.upsampleBilinear2d(x, { size: [3, 3], alignCorners: true }).data, [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]));
});

describe('dropout', () => {
  test('keeps about 1 - p of the values, scaled by 1 / (1 - p); eval is the identity', () => {
    const x = Tensor.ones([10000]);
    const y = ops.dropout(x, 0.25, true, new Generator(1));
    const kept = y.data.filter((v) => v !== 0);
    assert.ok(Math.abs(kept.length / 10000 - 0.75) < 0.02);
    assert.ok(kept.every((v) => Math.abs(v - 4 / 3) < 1e-6));
    assert.equal(ops.dropout(x, 0.25, false, new Generator(1)), x);
  });
});

describe('softmax cross-entropy', () => {
  test('equal logits give ln C; label smoothing and ignore index follow their definitions', () => {
    close(ops.softmaxCrossEntropy(Tensor.zeros([1, 4]), [2]).data, [Math.log(4)], 1e-6);
    const logits = Tensor.from([2, 0, -1], [1, 3]);
    const logZ = Math.log(Math.exp(2) + 1 + Math.exp(-1));
    const logp = [2 - logZ, 0 - logZ, -1 - logZ];
    const eps = 0.3;
    const expected = -((1 - eps + eps / 3) * logp[0] + (eps / 3) * (logp[1] + logp[2]));
    close(ops.softmaxCrossEntropy(logits, [0], { labelSmoothing: eps }).data, [expected], 1e-5);
    close(ops.softmaxCrossEntropy(Tensor.zeros([2, 3]), [255, 255], { ignoreIndex: 255 }).data, [0]);
  });

  test('per-pixel labels, and clear errors for bad labels', () => {
    const logits = randomTensor([2, 3, 2, 2], 3, -1, 1, false);
    assert.ok(ops.softmaxCrossEntropy(logits, new Int32Array(8)).item() > 0);
    assert.throws(() => ops.softmaxCrossEntropy(logits, new Int32Array(4)), /4 labels for logits \[2, 3, 2, 2\]; expected 8 \(one per pixel\)/);
    assert.throws(() => ops.softmaxCrossEntropy(Tensor.zeros([1, 3]), [3]), /label 3 at position 0 is outside 0..2/);
  });

  test('class weights give PyTorch cross_entropy(weight=...) values and gradients, with and without smoothing', () => {
    // Expected values from torch 1.13: F.cross_entropy(x, y, weight=w, ignore_index=255, label_smoothing=e).
    const x = [0.5, -1.0, 2.0, 1.5, 0.25, -0.75, 0.0, 1.0, -2.0];
    const cases: Array<[number, number, number[]]> = [
      [0, 0.27109840512275696, [0.11686026304960251, 0.026075048372149467, -0.14293532073497772, -0.09385322034358978, 0.06861220300197601, 0.025241021066904068, 0, 0, 0]],
      [0.2, 0.8169651627540588, [0.09853338450193405, -0.06194467470049858, -0.036588724702596664, 0.014452585019171238, -0.0019801058806478977, -0.012472487054765224, 0, 0, 0]],
    ];
    for (const [labelSmoothing, loss, grad] of cases) {
      const logits = Tensor.from(x, [3, 3]).requireGrad();
      const l = ops.softmaxCrossEntropy(logits, [2, 0, 255], { ignoreIndex: 255, weights: [0.5, 2, 1], labelSmoothing });
      close(l.data, [loss], 1e-6);
      backward(l);
      close(logits.grad!.data, grad, 1e-6);
    }
    // Equal weights change nothing; a zero total weight gives 0, not NaN.
    const logits = randomTensor([4, 3], 9, -2, 2, false);
    close(ops.softmaxCrossEntropy(logits, [0, 1, 2, 1], { weights: [3, 3, 3] }).data, Array.from(ops.softmaxCrossEntropy(logits, [0, 1, 2, 1]).data), 1e-6);
    close(ops.softmaxCrossEntropy(logits, [0, 0, 0, 0], { weights: [0, 1, 1] }).data, [0]);
    assert.throws(() => ops.softmaxCrossEntropy(logits, [0, 1, 2, 1], { weights: [1, 1] }), /2 class weights for 3 classes; give one weight per class/);
    assert.throws(() => ops.softmaxCrossEntropy(logits, [0, 1, 2, 1], { weights: [1, -1, 1] }), /class weight 1 is -1; expected a finite number >= 0/);
  });
});

describe('shape ops', () => {
  test('reshape infers -1 and refuses impossible shapes', () => {
    assert.deepEqual(ops.reshape(Tensor.zeros([2, 6]), [3, -1]).shape, [3, 4]);
    assert.throws(() => ops.reshape(Tensor.zeros([2, 6]), [5, -1]), /cannot view \[2, 6\] \(12 elements\) as \[5, -1\]/);
  });
  test('concat along channels', () => {
    const y = ops.concat([Tensor.from([1, 2], [1, 1, 2]), Tensor.from([3, 4, 5, 6], [1, 2, 2])], 1);
    assert.deepEqual(y.shape, [1, 3, 2]);
    close(y.data, [1, 2, 3, 4, 5, 6]);
    assert.throws(() => ops.concat([Tensor.zeros([1, 2]), Tensor.zeros([2, 2])], 1), /differ outside axis 1/);
  });
  test('add refuses shapes that do not broadcast', () => {
    assert.throws(() => ops.add(Tensor.zeros([2, 3]), Tensor.zeros([4])), /add: shapes \[2, 3\] and \[4\] do not broadcast/);
  });
});
