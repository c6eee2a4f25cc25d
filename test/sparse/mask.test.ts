/**
 * Block masks: exact counts per layer and globally, the lowest-scored blocks pruned (checked
 * against scores computed here from the definition), edge blocks, filters, the cubic schedule,
 * and the errors for bad shapes and sparsities.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyMask, blockMask, blockScores, cubicSparsity, expandMask, globalBlockMasks, maskSparsity, parseBlockShape,
} from '../../src/sparse/index.js';
import { uniform } from '../helpers/random.js';

test('block shapes parse; anything else is refused with what is allowed', () => {
  assert.deepEqual(parseBlockShape('8x8'), { name: '8x8', rows: 8, cols: 8 });
  assert.deepEqual(parseBlockShape('filter'), { name: 'filter', rows: 1, cols: 0 });
  assert.deepEqual(parseBlockShape('4x16'), { name: '4x16', rows: 4, cols: 16 });
  for (const bad of ['8', '0x4', '8x', 'x8', '8X8', 'channel']) assert.throws(() => parseBlockShape(bad), /is not RxC with positive integers .* or "filter"/);
});

test('scores are mean magnitudes per block, edge blocks over their own size', () => {
  const w = Float32Array.from({ length: 5 * 6 }, (_, i) => (i % 2 ? -1 : 1) * (i + 1));
  const s = blockScores(w, 5, 6, parseBlockShape('4x4'), 'l1');
  // Block (1, 1): rows 4, cols 4..5 -> entries 29, 30 (1-based values), mean 29.5.
  assert.equal(s.length, 4);
  assert.equal(s[3], (29 + 30) / 2);
  const s2 = blockScores(w, 5, 6, parseBlockShape('4x4'), 'l2');
  assert.ok(Math.abs(s2[3] - Math.sqrt((29 * 29 + 30 * 30) / 2)) < 1e-12);
});

test('a layer loses exactly round(sparsity x blocks) blocks, the lowest-scored ones', () => {
  const shape = parseBlockShape('8x8');
  for (const [rows, cols] of [[64, 576], [37, 70], [16, 27]]) {
    const w = uniform(rows * cols, rows);
    const scores = blockScores(w, rows, cols, shape);
    for (const sparsity of [0, 0.5, 0.75, 0.9, 0.999]) {
      const keep = blockMask(w, rows, cols, shape, sparsity);
      const dropped = keep.length - keep.reduce((a, b) => a + b, 0);
      assert.equal(dropped, Math.round(sparsity * keep.length), `${rows}x${cols} at ${sparsity}`);
      let maxDropped = -Infinity, minKept = Infinity;
      keep.forEach((k, b) => (k ? (minKept = Math.min(minKept, scores[b])) : (maxDropped = Math.max(maxDropped, scores[b]))));
      assert.ok(maxDropped <= minKept, 'every dropped block scores at most every kept one');
      assert.ok(Math.abs(maskSparsity(keep) - dropped / keep.length) < 1e-15);
    }
  }
  // Where the blocks divide the view, the element sparsity is exactly the block sparsity.
  const w = uniform(64 * 576, 1);
  const mask = expandMask(blockMask(w, 64, 576, shape, 0.75), 64, 576, shape);
  assert.equal(mask.reduce((a, b) => a + b, 0), 64 * 576 / 4);
  const pruned = applyMask(Float32Array.from(w), mask);
  pruned.forEach((v, i) => assert.equal(v === 0, mask[i] === 0 || w[i] === 0));
});

test('filter pruning drops whole output channels (rows of the view)', () => {
  const w = uniform(32 * 27, 2);
  const shape = parseBlockShape('filter');
  const keep = blockMask(w, 32, 27, shape, 0.25);
  assert.equal(keep.length, 32);
  const mask = expandMask(keep, 32, 27, shape);
  for (let i = 0; i < 32; i++) for (let t = 0; t < 27; t++) assert.equal(mask[i * 27 + t], keep[i]);
  assert.equal(keep.reduce((a, b) => a + b, 0), 24);
});

test('global pruning ranks every block of every layer together, with an exact total', () => {
  const shape = parseBlockShape('4x4');
  const small = uniform(16 * 16, 3).map((v) => v * 0.01);
  const large = uniform(16 * 32, 4);
  const [a, b] = globalBlockMasks([{ weight: small, rows: 16, cols: 16 }, { weight: large, rows: 16, cols: 32 }], shape, 0.5);
  const dropped = a.length + b.length - a.reduce((s, x) => s + x, 0) - b.reduce((s, x) => s + x, 0);
  assert.equal(dropped, Math.round(0.5 * (a.length + b.length)));
  // The small layer's blocks score lower, so they go first: all 16 of them, then 8 of the other's.
  assert.equal(a.reduce((s, x) => s + x, 0), 0);
  assert.equal(b.reduce((s, x) => s + x, 0), 32 - 8);
});

test('sparsities outside [0, 1) and wrong sizes are refused by value', () => {
  const w = uniform(8 * 8, 1);
  for (const bad of [1, 1.5, -0.1, Number.NaN]) assert.throws(() => blockMask(w, 8, 8, parseBlockShape('4x4'), bad), /sparsity is .*; expected a fraction in \[0, 1\)/);
  assert.throws(() => blockMask(w, 8, 9, parseBlockShape('4x4'), 0.5), /the weight has 64 values; expected 8 x 9 = 72/);
  assert.throws(() => expandMask(new Uint8Array(3), 8, 8, parseBlockShape('4x4')), /the pattern has 3 blocks; expected 2 x 2/);
});

test('the cubic schedule runs from the initial to the final sparsity over the step range', () => {
  assert.equal(cubicSparsity(0, 10, 110, 0, 0.9), 0);
  assert.equal(cubicSparsity(10, 10, 110, 0, 0.9), 0);
  assert.equal(cubicSparsity(110, 10, 110, 0, 0.9), 0.9);
  assert.equal(cubicSparsity(500, 10, 110, 0, 0.9), 0.9);
  assert.ok(Math.abs(cubicSparsity(60, 10, 110, 0, 0.9) - 0.9 * (1 - 0.125)) < 1e-12);
  let previous = -1;
  for (let s = 10; s <= 110; s++) {
    const v = cubicSparsity(s, 10, 110, 0.1, 0.8);
    assert.ok(v >= previous);
    previous = v;
  }
  assert.throws(() => cubicSparsity(0, 10, 10, 0, 0.5), /pruning steps 10 to 10: expected integers with 0 <= start < end/);
  assert.throws(() => cubicSparsity(0, 0, 10, 0, 1), /final sparsity is 1; expected a fraction in \[0, 1\)/);
});
