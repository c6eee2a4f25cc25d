import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { DEFAULT_POOL_LIMIT, bufferPoolStats, clearBufferPool, freshArray, freshCodes, markBackward, markForward, recycle, setBufferPoolLimit, takeBuffer, takeZeroed } from '../../src/kernels/buffer_pool.js';
import { nativeCore } from '../../src/kernels/native.js';

const N = 1 << 14;

describe('buffer pool', () => {
  afterEach(() => {
    clearBufferPool();
    setBufferPoolLimit(DEFAULT_POOL_LIMIT);
  });

  test('fresh arrays are zeros of their length, small or large (prefaulted), and writable', () => {
    for (const n of [10, N, (1 << 18) + 3, 1 << 21]) {
      const a = freshArray(n);
      assert.equal(a.length, n);
      assert.ok(a.every((v) => v === 0));
      a[n - 1] = 5;
      assert.equal(a[n - 1], 5);
    }
    const native = nativeCore();
    if (native) {
      // Whether the system can prefault is the system's; it must never change the array.
      const a = new Float32Array(1 << 20);
      assert.equal(typeof native.prefault(a), 'boolean');
      assert.ok(a.every((v) => v === 0));
      assert.equal(typeof native.prefault(new Float32Array(0)), 'boolean');
      // Code arrays of every width, and views into a larger buffer, are accepted and left as they are.
      for (const codes of [new Uint8Array(1 << 21), new Uint16Array(1 << 20), new Uint32Array(5), new Uint8Array(new ArrayBuffer(64), 3, 40)]) {
        assert.equal(typeof native.prefault(codes), 'boolean');
        assert.ok(codes.every((v) => v === 0));
      }
      assert.throws(() => native.prefault([1, 2] as unknown as Uint8Array), /typed array/);
    }
  });

  test('fresh code arrays have the format\'s width, are zeros (code 0 is +0 in every format), small or large', () => {
    for (const [format, type] of [['e5m2', Uint8Array], ['e6m9', Uint16Array], ['fp32', Uint32Array]] as const) {
      for (const n of [7, 1 << 20, (1 << 20) + 1]) {
        const codes = freshCodes(format, n);
        assert.ok(codes instanceof type, `${format}: ${codes.constructor.name}`);
        assert.equal(codes.length, n);
        assert.ok(codes.every((v) => v === 0));
      }
    }
  });

  test('an array handed back is handed out again for the same length, stale or zeroed as asked', () => {
    clearBufferPool();
    const a = new Float32Array(N).fill(7);
    recycle(a);
    assert.equal(bufferPoolStats().bytes, 4 * N);
    const fresh = bufferPoolStats();
    assert.notEqual(takeBuffer(N + 1), a, 'another length gets a new array');
    assert.equal(bufferPoolStats().fresh, fresh.fresh + 1, 'counted as fresh');
    assert.equal(bufferPoolStats().freshBytes, fresh.freshBytes + 4 * (N + 1));
    const b = takeBuffer(N);
    assert.equal(bufferPoolStats().fresh, fresh.fresh + 1, 'a pooled array is not fresh');
    assert.equal(b, a);
    assert.equal(b[5], 7, 'contents are stale');
    recycle(b);
    const z = takeZeroed(N);
    assert.equal(z, a);
    assert.ok(z.every((v) => v === 0));
    assert.equal(bufferPoolStats().arrays, 0);
  });

  test('views, small arrays and arrays already pooled are not taken', () => {
    clearBufferPool();
    const whole = new Float32Array(2 * N);
    recycle(whole.subarray(0, N));
    recycle(whole.subarray(N));
    recycle(new Float32Array(N - 1));
    assert.equal(bufferPoolStats().arrays, 0);
    recycle(whole);
    recycle(whole);
    assert.equal(bufferPoolStats().arrays, 1);
  });

  test('the pool keeps at most its limit, dropping the longest-unused arrays first', () => {
    clearBufferPool();
    setBufferPoolLimit(3 * 4 * N);
    const arrays = [0, 1, 2, 3].map(() => new Float32Array(N));
    for (const a of arrays) recycle(a);
    assert.equal(bufferPoolStats().arrays, 3);
    const taken = [takeBuffer(N), takeBuffer(N), takeBuffer(N), takeBuffer(N)];
    assert.ok(!taken.includes(arrays[0]), 'the oldest was dropped');
    for (const a of arrays.slice(1)) assert.ok(taken.includes(a));
    setBufferPoolLimit(0);
    recycle(arrays[0]);
    assert.equal(bufferPoolStats().arrays, 0, 'limit 0 switches recycling off');
    assert.throws(() => setBufferPoolLimit(-1), /setBufferPoolLimit: -1 bytes; expected a finite number >= 0/);
  });

  test('a forward pass begins with the pool trimmed to what the last step took of each kind', () => {
    clearBufferPool();
    markForward(); // the first step: nothing known, nothing trimmed
    const a = takeBuffer(N); // the forward pass takes one array of N
    markBackward();
    const b = takeBuffer(2 * N); // the backward pass one of 2N
    const c = new Float32Array(3 * N); // and one of 3N it never took comes back too
    for (const x of [a, b, c]) recycle(x);
    const trimmed = bufferPoolStats().trimmedBytes;
    markForward();
    assert.equal(bufferPoolStats().arrays, 2);
    assert.equal(bufferPoolStats().trimmedBytes - trimmed, 12 * N, 'the 3N array was dropped');
    assert.equal(takeBuffer(N), a);
    assert.equal(takeBuffer(2 * N), b);
    assert.notEqual(takeBuffer(3 * N), c);
    // A second array of N beyond the one a step takes is dropped at the next pass; the step's own stay.
    markBackward();
    recycle(a);
    recycle(new Float32Array(N));
    markForward();
    assert.equal(bufferPoolStats().arrays, 1);
  });
});
