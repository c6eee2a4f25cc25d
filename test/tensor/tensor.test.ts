import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Generator, Tensor } from '../../src/tensor/index.js';

describe('Tensor', () => {
  test('creation fills the shape, and a mismatch says how many values were given and needed', () => {
    assert.deepEqual(Array.from(Tensor.full([2, 2], 3).data), [3, 3, 3, 3]);
    assert.equal(Tensor.scalar(5).rank, 0);
    assert.equal(Tensor.scalar(5).item(), 5);
    assert.deepEqual(Tensor.from([1, 2, 3]).shape, [3]);
    assert.throws(() => new Tensor(new Float32Array(5), [2, 3]), /5 values do not fill shape \[2, 3\] \(6 elements\)/);
    assert.throws(() => Tensor.zeros([2, -1]), /shape \[2, -1\] has a dimension -1/);
    assert.throws(() => Tensor.zeros([2, 2]).item(), /one-element tensor; this one has shape \[2, 2\]/);
    assert.throws(() => Tensor.zeros([1e6, 1e6]), /Tensor: shape \[1000000, 1000000\] needs 1000000000000 float32 values .* more than can be allocated/);
  });

  test('view shares data, clone copies it, detach drops the gradient state; the shape is frozen', () => {
    const t = Tensor.from([1, 2, 3, 4], [2, 2]).requireGrad();
    const v = t.view([4]);
    v.data[0] = 9;
    assert.equal(t.data[0], 9);
    const c = t.clone();
    c.data[1] = 7;
    assert.equal(t.data[1], 2);
    assert.equal(c.requiresGrad, false);
    assert.equal(t.detach().requiresGrad, false);
    assert.equal(t.detach().data, t.data);
    assert.throws(() => (t.shape as number[]).push(1));
  });

  test('seeded creation repeats with the seed, and differs between seeds', () => {
    const a = Tensor.randn([100], new Generator(3));
    assert.deepEqual(a.data, Tensor.randn([100], new Generator(3)).data);
    assert.notDeepEqual(a.data, Tensor.randn([100], new Generator(4)).data);
    const u = Tensor.uniform([1000], new Generator(5), -2, 2);
    assert.ok(u.data.every((x) => x >= -2 && x < 2));
  });
});
