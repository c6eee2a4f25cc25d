import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AdamW } from '../../src/optim/index.js';
import { Tensor } from '../../src/tensor/index.js';

function param(values: number[], grad: number[]): Tensor {
  const p = Tensor.from(values).requireGrad();
  p.grad = Tensor.from(grad);
  return p;
}

describe('AdamW', () => {
  test('two steps against values computed by hand from the update rule', () => {
    const p = param([1, -2], [0.5, -0.25]);
    const opt = new AdamW([['w', p]], { lr: 0.1, weightDecay: 0.1, betas: [0.9, 0.999], eps: 1e-8 });
    opt.stepAll();
    // step 1: p*(1 - 0.01) - 0.1 * sign(g) (bias-corrected m/sqrt(v) = g/|g|)
    assert.ok(Math.abs(p.data[0] - (0.99 - 0.1)) < 1e-6);
    assert.ok(Math.abs(p.data[1] - (-1.98 + 0.1)) < 1e-6);
    p.grad = Tensor.from([0.5, 0.75]);
    const before = Float32Array.from(p.data);
    opt.stepAll();
    const m = 0.9 * 0.1 * -0.25 + 0.1 * 0.75;
    const v = 0.999 * 0.001 * 0.0625 + 0.001 * 0.5625;
    const expected = before[1] * 0.99 - (0.1 * m) / (1 - 0.81) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8);
    assert.ok(Math.abs(p.data[1] - expected) < 1e-6, `${p.data[1]} vs ${expected}`);
  });

  test('a non-finite gradient or a skipped name leaves the parameter and its moments untouched', () => {
    const a = param([1, 2], [Infinity, 1]);
    const b = param([3], [NaN]);
    const c = param([4], [1]);
    const opt = new AdamW([['a', a], ['b', b], ['c', c]], { lr: 0.1 });
    const report = opt.stepAll(new Set(['c']));
    assert.deepEqual(report.skipped, ['a', 'b', 'c']);
    assert.deepEqual([...a.data, ...b.data, ...c.data], [1, 2, 3, 4]);
    assert.deepEqual(opt.state().slots['a.exp_avg'], new Float32Array(2));
  });

  test('master weights in bf16: every stored value is a bf16 value; stochastic rounding is reproducible', () => {
    const run = () => {
      const p = param([1.001, -0.3], [0.01, 0.02]);
      const opt = new AdamW([['w', p]], { lr: 1e-3, masterWeights: { format: 'bf16', rounding: 'stochastic' }, seed: 4 });
      for (let i = 0; i < 5; i++) opt.stepAll();
      return p.data;
    };
    const a = run();
    for (const v of a) assert.equal(new Uint32Array(Float32Array.of(v).buffer)[0] & 0xffff, 0);
    assert.deepEqual(a, run());
  });

  test('state round trip: a restored optimizer continues identically', () => {
    const p1 = param([0.5, 0.25], [0.1, -0.2]);
    const opt1 = new AdamW([['w', p1]], { lr: 0.01 });
    opt1.stepAll();
    const p2 = param(Array.from(p1.data), [0.1, -0.2]);
    const opt2 = new AdamW([['w', p2]], { lr: 0.01 });
    opt2.loadState(opt1.state());
    opt1.stepAll();
    opt2.stepAll();
    assert.deepEqual(p1.data, p2.data);
    assert.throws(() => new AdamW([['x', p2]], { lr: 0.01 }).loadState(opt1.state()), /slot x.exp_avg is missing/);
  });

  test('bad hyperparameters are refused', () => {
    assert.throws(() => new AdamW([], { lr: -1 }), /lr is -1/);
    assert.throws(() => new AdamW([], { lr: 1, betas: [1, 0.9] }), /beta1 is 1/);
  });
});
