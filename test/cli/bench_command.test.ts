import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gemmBench } from '../../src/bench/index.js';
import { runOctet } from '../helpers/cli_io.js';

describe('octet bench', () => {
  test('gemm rows carry the fields the issue asks for (speed not asserted)', () => {
    const [row] = gemmBench([1], [{ m: 40, n: 50, k: 60, label: 'tiny' }]);
    assert.equal(row.bench, 'gemm');
    assert.deepEqual([row.m, row.n, row.k, row.threads], [40, 50, 60, 1]);
    assert.ok(row.gflops > 0);
    if (row.numpy_gflops !== undefined) assert.ok(row.ratio_numpy! > 0);
  });

  test('unknown groups and bad thread lists are refused', async () => {
    const r = await runOctet(['bench', 'matmul']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown benchmark "matmul"; choose from gemm, codec/);
    const t = await runOctet(['bench', 'gemm', '--threads', '0,2']);
    assert.match(t.stderr, /--threads "0,2"; expected positive integers/);
  });
});
