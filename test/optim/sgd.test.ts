import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SGD } from '../../src/optim/index.js';
import { Tensor } from '../../src/tensor/index.js';

describe('SGD', () => {
  test('momentum and weight decay as torch.optim.SGD, by hand', () => {
    const p = Tensor.from([1]).requireGrad();
    const opt = new SGD([['w', p]], { lr: 0.1, momentum: 0.9, weightDecay: 0.5 });
    p.grad = Tensor.from([2]);
    opt.stepAll(); // g = 2 + 0.5 = 2.5, b = 2.5, p = 1 - 0.25
    assert.ok(Math.abs(p.data[0] - 0.75) < 1e-7);
    p.grad = Tensor.from([1]);
    opt.stepAll(); // g = 1 + 0.375 = 1.375, b = 2.25 + 1.375 = 3.625, p = 0.75 - 0.3625
    assert.ok(Math.abs(p.data[0] - 0.3875) < 1e-6);
  });

  test('nesterov uses g + momentum * b', () => {
    const p = Tensor.from([0]).requireGrad();
    const opt = new SGD([['w', p]], { lr: 1, momentum: 0.5, nesterov: true });
    p.grad = Tensor.from([1]);
    opt.stepAll();
    assert.equal(p.data[0], -1.5);
  });
});
