import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Generator } from '../../src/tensor/index.js';

describe('Generator', () => {
  test('its state (seed, counter) restores the stream exactly', () => {
    const g = new Generator(11);
    for (let i = 0; i < 5; i++) g.nextU32();
    const restored = Generator.fromState(g.state());
    assert.deepEqual([g.nextU32(), g.nextU32()], [restored.nextU32(), restored.nextU32()]);
  });

  test('a permutation holds every index once; draws below n stay below n', () => {
    const p = new Generator(2).permutation(100);
    assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
    const g = new Generator(3);
    for (let i = 0; i < 1000; i++) assert.ok(g.below(7) < 7);
  });

  test('normal draws have mean about 0 and variance about 1', () => {
    const g = new Generator(4);
    const n = 20000;
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < n; i++) {
      const x = g.normal();
      sum += x;
      squares += x * x;
    }
    assert.ok(Math.abs(sum / n) < 0.03);
    assert.ok(Math.abs(squares / n - 1) < 0.05);
  });
});
