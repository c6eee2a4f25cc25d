import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { quantize, zeroWhere } from '../../src/kernels/index.js';
import { AdamW } from '../../src/optim/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { uniform } from '../helpers/random.js';

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

  test('keep masks (a pruner\'s): the kept entries as a full step gives them; after zeroing the pruned ones, the same bits as a full step and the zeroing', () => {
    const n = 4096;
    const keep = Uint8Array.from({ length: n }, (_, i) => (Math.floor(i / 64) % 4 === 1 || i % 50 === 7 ? 1 : 0));
    for (const masterWeights of [undefined, { format: 'bf16', rounding: 'stochastic' as const }]) {
      const run = (masked: boolean) => {
        const w = Tensor.from(Array.from(uniform(n, 31, -1, 1)).map((v, i) => (keep[i] ? v : 0))).requireGrad();
        const b = Tensor.from(Array.from(uniform(8, 32, -1, 1))).requireGrad();
        const opt = new AdamW([['w', w], ['b', b]], { lr: 0.01, masterWeights, seed: 5 });
        for (let step = 0; step < 3; step++) {
          // Gradients nonzero at the pruned entries too (a dense kernel's).
          w.grad = new Tensor(uniform(n, 40 + step, -1, 1), [n]);
          b.grad = new Tensor(uniform(8, 50 + step, -1, 1), [8]);
          opt.stepAll(new Set(), masked ? { keep: new Map([['w', keep]]) } : {});
          if (masked) for (let i = 0; i < n; i++) if (!keep[i]) assert.equal(w.data[i], 0, `pruned entry ${i} left at 0 by the masked step`);
          // The pruner's enforce.
          zeroWhere(w.data, keep);
          opt.zeroSlotsWhere('w', keep);
        }
        return { w: w.data, b: b.data, slots: opt.state().slots };
      };
      const full = run(false), masked = run(true);
      assert.deepEqual(masked.w, full.w);
      assert.deepEqual(masked.b, full.b);
      assert.deepEqual(masked.slots, full.slots);
    }
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

  test('moments in a 16-bit format are kept as its codes: half the bytes, the same steps as rounding float32 moments', () => {
    const n = 50_000; // past the native codec's threshold
    const values = uniform(n, 1, -1, 1);
    const grads = [uniform(n, 2, -0.1, 0.1), uniform(n, 3, -0.1, 0.1), uniform(n, 4, -0.1, 0.1)];
    for (const format of ['bf16', 'e6m9', 'fp16']) {
      const p = new Tensor(Float32Array.from(values), [n]).requireGrad();
      const opt = new AdamW([['w', p]], { lr: 1e-3, moments: { format } });
      assert.equal(opt.stateBytes(), 2 * 2 * n, `${format}: two moments of 2 bytes per element`);
      // The contract by hand: AdamW whose m and v are rounded to the format after every update.
      const ref = Float32Array.from(values);
      const m = new Float32Array(n);
      const v = new Float32Array(n);
      grads.forEach((g, step) => {
        p.grad = new Tensor(g, [n]);
        opt.stepAll();
        const t = step + 1;
        for (let i = 0; i < n; i++) {
          m[i] = 0.9 * m[i] + (1 - 0.9) * g[i];
          v[i] = 0.999 * v[i] + (1 - 0.999) * g[i] * g[i];
        }
        quantize(m, format, {}, m);
        quantize(v, format, {}, v);
        const decay = 1 - 1e-3 * 0.01;
        const c2Sqrt = Math.sqrt(1 - 0.999 ** t);
        for (let i = 0; i < n; i++) ref[i] = ref[i] * decay - ((1e-3 / (1 - 0.9 ** t)) * m[i]) / (Math.sqrt(v[i]) / c2Sqrt + 1e-8);
      });
      assert.deepEqual(p.data, ref, `${format}: parameters`);
      assert.deepEqual(opt.state().slots['w.exp_avg'], m, `${format}: first moment`);
      assert.deepEqual(opt.state().slots['w.exp_avg_sq'], v, `${format}: second moment`);
      // Restored into a fresh optimizer, the next step is the same.
      const p2 = new Tensor(Float32Array.from(p.data), [n]).requireGrad();
      const opt2 = new AdamW([['w', p2]], { lr: 1e-3, moments: { format } });
      opt2.loadState(opt.state());
      p.grad = new Tensor(grads[0], [n]);
      p2.grad = new Tensor(grads[0], [n]);
      opt.stepAll();
      opt2.stepAll();
      assert.deepEqual(p2.data, p.data, `${format}: restored`);
    }
    assert.equal(new AdamW([['w', Tensor.zeros([10])]], { lr: 1, moments: { format: 'e5m2' } }).stateBytes(), 2 * 10, 'one byte per element for 8-bit moments');
    assert.equal(new AdamW([['w', Tensor.zeros([10])]], { lr: 1 }).stateBytes(), 2 * 4 * 10);
  });

  test('stochastic rounding of moments draws anew at every step and for every slot', () => {
    const n = 4096;
    const p = new Tensor(new Float32Array(n), [n]).requireGrad();
    const opt = new AdamW([['w', p]], { lr: 0, weightDecay: 0, betas: [0, 0], moments: { format: 'bf16', rounding: 'stochastic' }, seed: 9 });
    // With betas 0 the moments are g and g^2 rounded: a value between two bf16 neighbours rounds up
    // in about the fraction of the gap it has passed, with other draws at each step.
    const g = new Float32Array(n).fill(1 + 2 ** -9); // a quarter of bf16's gap above 1
    const ups: number[] = [];
    const firsts: Float32Array[] = [];
    for (let step = 0; step < 3; step++) {
      p.grad = new Tensor(g, [n]);
      opt.stepAll();
      const m = opt.state().slots['w.exp_avg'];
      firsts.push(m);
      ups.push(m.filter((x) => x > 1).length / n);
    }
    for (const up of ups) assert.ok(Math.abs(up - 0.25) < 0.03, `fraction rounded up ${up}`);
    assert.notDeepEqual(firsts[0], firsts[1], 'the same draws at two steps');
  });

  test('bad hyperparameters are refused', () => {
    assert.throws(() => new AdamW([], { lr: -1 }), /lr is -1/);
    assert.throws(() => new AdamW([], { lr: 1, betas: [1, 0.9] }), /beta1 is 1/);
  });
});
