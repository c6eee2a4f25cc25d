import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkSeed, drawU32, mix32, seedKey } from '../../src/formats/index.js';

describe('counter-based generator', () => {
  test('mix32 is the MurmurHash3 finalizer (published test vectors) and unsigned', () => {
    assert.equal(mix32(0), 0);
    // Known values of fmix32 for 1 and 0xffffffff.
    assert.equal(mix32(1), 0x514e28b7);
    assert.equal(mix32(0xffffffff), 0x81f16f39);
  });

  test('mix32 has no collisions on a large sample (it is a bijection)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200_000; i++) seen.add(mix32(i * 7919));
    assert.equal(seen.size, 200_000);
  });

  test('draws are a pure function of key and counter', () => {
    const key = seedKey(123);
    assert.equal(drawU32(key, 5), drawU32(key, 5));
    assert.notEqual(drawU32(key, 5), drawU32(key, 6));
    assert.notEqual(seedKey(1), seedKey(2));
    assert.notEqual(seedKey(1), seedKey(2 ** 32 + 1), 'high bits of the seed count');
  });

  test('draws are uniform: chi-square over 64 buckets, and each bit is fair', () => {
    const n = 256_000;
    const buckets = new Array<number>(64).fill(0);
    const ones = new Array<number>(32).fill(0);
    for (const seed of [0, 1, 99]) {
      const key = seedKey(seed);
      for (let i = 0; i < n / 3; i++) {
        const d = drawU32(key, i);
        buckets[d >>> 26]++;
        for (let b = 0; b < 32; b++) ones[b] += (d >>> b) & 1;
      }
    }
    const total = buckets.reduce((a, b) => a + b, 0);
    const expected = total / 64;
    const chi2 = buckets.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    // 63 degrees of freedom: p = 0.001 at about 103.4.
    assert.ok(chi2 < 103.4, `chi-square ${chi2}`);
    for (const count of ones) assert.ok(Math.abs(count / total - 0.5) < 0.01, `bit frequency ${count / total}`);
  });

  test('seeds must be non-negative safe integers', () => {
    assert.equal(checkSeed(0), 0);
    assert.throws(() => seedKey(-1), /seed is -1/);
    assert.throws(() => seedKey(1.5), /seed is 1.5/);
    assert.throws(() => checkSeed(2 ** 53, '--seed'), /--seed is 9007199254740992/);
  });
});
