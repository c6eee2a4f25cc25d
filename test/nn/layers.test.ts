import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BatchNorm2d, Dropout, Flatten, MaxPool2d, NamedSequential, ReLU, Sequential, Upsample } from '../../src/nn/index.js';
import { Tensor } from '../../src/tensor/index.js';

describe('layers', () => {
  test('BatchNorm2d: affine parameters and running statistics as PyTorch names them; eval uses running stats', () => {
    const bn = new BatchNorm2d(2);
    assert.deepEqual(bn.namedParameters().map(([n]) => n), ['weight', 'bias']);
    assert.deepEqual(bn.namedBuffers().map(([n]) => n), ['running_mean', 'running_var']);
    const x = Tensor.from([1, 3, 5, 7], [1, 2, 1, 2]);
    bn.call(x);
    assert.deepEqual(Array.from(bn.runningMean.data), [Math.fround(0.2), Math.fround(0.6)]);
    bn.eval();
    const y = bn.call(x);
    assert.ok(Math.abs(y.data[0] - (1 - 0.2) / Math.sqrt(bn.runningVar.data[0] + 1e-5)) < 1e-6);
  });

  test('Dropout is the identity in eval mode and reproducible from its seed in training', () => {
    const x = Tensor.ones([100]);
    const a = new Dropout(0.5, 9).call(x);
    const b = new Dropout(0.5, 9).call(x);
    assert.deepEqual(a.data, b.data);
    assert.ok(a.data.some((v) => v === 0) && a.data.some((v) => v === 2));
    const d = new Dropout(0.5, 9);
    d.eval();
    assert.equal(d.call(x), x);
  });

  test('Sequential names children 0, 1, ...; NamedSequential keeps the names given', () => {
    const seq = new Sequential(new MaxPool2d(2), new Flatten());
    assert.deepEqual(seq.namedChildren().map(([n]) => n), ['0', '1']);
    assert.deepEqual(seq.call(Tensor.from([1, 2, 3, 4], [1, 1, 2, 2])).shape, [1, 1]);
    const named = new NamedSequential([['up', new Upsample({ scaleFactor: 2 })], ['act', new ReLU()]]);
    assert.deepEqual(named.namedChildren().map(([n]) => n), ['up', 'act']);
    assert.deepEqual(named.call(Tensor.from([-1], [1, 1, 1, 1])).data, new Float32Array(4));
  });
});
