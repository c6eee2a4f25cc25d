import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cosineWithWarmup } from '../../src/optim/index.js';

describe('cosine schedule with linear warmup', () => {
  const s = { baseLr: 0.1, totalSteps: 110, warmupSteps: 10, minLr: 0.001 };
  test('warmup rises linearly to the base rate', () => {
    assert.ok(Math.abs(cosineWithWarmup(0, s) - 0.01) < 1e-12);
    assert.ok(Math.abs(cosineWithWarmup(4, s) - 0.05) < 1e-12);
    assert.ok(Math.abs(cosineWithWarmup(9, s) - 0.1) < 1e-12);
  });
  test('cosine from the base rate to the minimum: half way is the mean, the end is the minimum', () => {
    assert.ok(Math.abs(cosineWithWarmup(10, s) - 0.1) < 1e-12);
    assert.ok(Math.abs(cosineWithWarmup(60, s) - 0.0505) < 1e-12);
    assert.ok(Math.abs(cosineWithWarmup(35, s) - (0.001 + 0.099 * (1 + Math.cos(Math.PI / 4)) / 2)) < 1e-12);
    assert.ok(Math.abs(cosineWithWarmup(110, s) - 0.001) < 1e-12);
    assert.ok(Math.abs(cosineWithWarmup(500, s) - 0.001) < 1e-12);
  });
  test('no warmup, and bad settings refused', () => {
    assert.equal(cosineWithWarmup(0, { baseLr: 1, totalSteps: 4 }), 1);
    assert.throws(() => cosineWithWarmup(0, { baseLr: 1, totalSteps: 4, warmupSteps: 5 }), /warmup/);
  });
});
