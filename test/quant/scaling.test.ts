import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveFormat } from '../../src/formats/index.js';
import { DynamicScale, LossScaler, TensorScaler, amaxOf, scaleFromAmax } from '../../src/quant/index.js';

const E5M2 = resolveFormat('e5m2');

describe('per-tensor scaling', () => {
  test('scale = max / (amax * 2^margin), rounded down to a power of two', () => {
    assert.equal(scaleFromAmax(1, E5M2, 0, false), 57344);
    assert.equal(scaleFromAmax(1, E5M2, 0, true), 32768);
    assert.equal(scaleFromAmax(4, E5M2, 8, true), 32);
  });

  test('all-zero, Inf and NaN amax give no scale, and the scaler keeps its previous one', () => {
    for (const amax of [0, NaN, Infinity]) assert.equal(scaleFromAmax(amax, E5M2, 0, true), null);
    const s = new TensorScaler({ mode: 'current', margin: 0, powerOfTwo: true, granularity: 'tensor' }, E5M2);
    assert.equal(s.next(0), 1);
    assert.equal(s.next(2), 16384);
    assert.equal(s.next(amaxOf(new Float32Array(8))), 16384);
    assert.equal(s.next(amaxOf(Float32Array.of(1, NaN))), 16384);
    assert.ok(Number.isFinite(s.next(2 ** -16)));
  });

  test('an amax below the format\'s tiny values is scaled up; scales stay finite down to the smallest float32', () => {
    assert.equal(scaleFromAmax(2 ** -20, E5M2, 0, true), 2 ** 35);
    const tiny = scaleFromAmax(2 ** -149, E5M2, 0, true)!;
    assert.equal(tiny, 2 ** 100);
    assert.ok(scaleFromAmax(3e38, E5M2, 0, true)! > 0);
  });

  test('delayed scaling uses the max of the previous amaxes; the first step uses its own', () => {
    const s = new TensorScaler({ mode: 'delayed', history: 2, margin: 0, powerOfTwo: true }, E5M2);
    assert.equal(s.next(1), 32768);
    assert.equal(s.next(4), 32768); // history [1]
    assert.equal(s.next(1), 8192); // history [1, 4]
    assert.equal(s.next(1), 8192); // history [4, 1]
    assert.equal(s.next(1), 32768); // history [1, 1]
  });

  test('amaxOf reports NaN for any non-finite value', () => {
    assert.equal(amaxOf(Float32Array.of(-3, 2)), 3);
    assert.ok(Number.isNaN(amaxOf(Float32Array.of(1, -Infinity))));
  });
});

describe('dynamic scales', () => {
  test('grow after growthInterval clean steps, back off on overflow and restart the count', () => {
    const d = new DynamicScale({ init: 8, growthInterval: 2, growthFactor: 2, backoffFactor: 0.5 });
    assert.equal(d.update(false), null);
    assert.equal(d.update(false), 'grow');
    assert.equal(d.scale, 16);
    assert.equal(d.update(false), null);
    assert.equal(d.update(true), 'backoff');
    assert.equal(d.scale, 8);
    assert.equal(d.update(false), null);
  });

  test('loss scalers: none is 1, static never moves, dynamic moves', () => {
    assert.equal(new LossScaler({ mode: 'none' }).scale, 1);
    const fixed = new LossScaler({ mode: 'static', scale: 128 });
    fixed.update(true);
    assert.equal(fixed.scale, 128);
    const dyn = new LossScaler({ mode: 'dynamic', init: 1024, growthInterval: 5, growthFactor: 2, backoffFactor: 0.25 });
    dyn.update(true);
    assert.equal(dyn.scale, 256);
  });
});
