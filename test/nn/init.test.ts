import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildModel, defaultLayerInit, fans, kaimingNormal, kaimingUniform, withoutInit } from '../../src/nn/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

function moments(t: Tensor): { mean: number; std: number; maxAbs: number } {
  let s = 0;
  let s2 = 0;
  let maxAbs = 0;
  for (const v of t.data) {
    s += v;
    s2 += v * v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  const mean = s / t.size;
  return { mean, std: Math.sqrt(s2 / t.size - mean * mean), maxAbs };
}

describe('initialization (torch.nn.init definitions)', () => {
  const w = Tensor.zeros([64, 32, 3, 3]);
  test('fans: fan_in = dim 1 x receptive field, fan_out = dim 0 x receptive field', () => {
    assert.deepEqual(fans(w), { fanIn: 288, fanOut: 576 });
  });
  test('kaiming normal over fan_out has std sqrt(2 / fan_out)', () => {
    kaimingNormal(w, new Generator(1), 'fan_out');
    const m = moments(w);
    assert.ok(Math.abs(m.std / Math.sqrt(2 / 576) - 1) < 0.02, `std ${m.std}`);
    assert.ok(Math.abs(m.mean) < 0.003);
  });
  test('kaiming uniform has bound sqrt(6 / fan_in) and the matching std', () => {
    kaimingUniform(w, new Generator(2));
    const bound = Math.sqrt(6 / 288);
    const m = moments(w);
    assert.ok(m.maxAbs <= bound && m.maxAbs > bound * 0.99);
    assert.ok(Math.abs(m.std / (bound / Math.sqrt(3)) - 1) < 0.02);
  });
  test("PyTorch's default layer init: weight and bias within 1/sqrt(fan_in)", () => {
    const bias = Tensor.zeros([64]);
    defaultLayerInit(w, bias, new Generator(3));
    const bound = 1 / Math.sqrt(288);
    assert.ok(moments(w).maxAbs <= bound && moments(w).maxAbs > bound * 0.99);
    assert.ok(moments(bias).maxAbs <= bound && moments(bias).maxAbs > 0);
  });

  test('withoutInit builds the same shapes with zero weights, and drawing resumes after it', () => {
    const shapes = withoutInit(() => buildModel('resnet20')).namedParameters();
    const drawn = buildModel('resnet20').namedParameters();
    assert.deepEqual(shapes.map(([n, t]) => [n, t.shape]), drawn.map(([n, t]) => [n, t.shape]));
    assert.ok(shapes[0][1].data.every((v) => v === 0) && drawn[0][1].data.some((v) => v !== 0));
  });
});
