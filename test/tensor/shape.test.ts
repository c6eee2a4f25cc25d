import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { broadcastIndex, broadcastShapes, shapeSize, stridesOf } from '../../src/tensor/index.js';

describe('shapes', () => {
  test('sizes and row-major strides', () => {
    assert.equal(shapeSize([]), 1);
    assert.equal(shapeSize([2, 0, 3]), 0);
    assert.deepEqual(stridesOf([2, 3, 4]), [12, 4, 1]);
  });

  test('broadcasting follows NumPy, and the index map reads the broadcast element', () => {
    assert.deepEqual(broadcastShapes([3, 1], [1, 4], 'add'), [3, 4]);
    assert.deepEqual(broadcastShapes([2, 3, 4], [3, 1], 'mul'), [2, 3, 4]);
    assert.throws(() => broadcastShapes([2, 3], [4], 'add'), /add: shapes \[2, 3\] and \[4\] do not broadcast \(dimension 1 is 3 vs 4\)/);
    assert.equal(broadcastIndex([2, 3], [2, 3]), null);
    // Element (i, j) of [2, 3] reads element (i, 0) of [2, 1].
    assert.deepEqual(Array.from(broadcastIndex([2, 1], [2, 3])!), [0, 0, 0, 1, 1, 1]);
    assert.deepEqual(Array.from(broadcastIndex([3], [2, 3])!), [0, 1, 2, 0, 1, 2]);
  });
});
