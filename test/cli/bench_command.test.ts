import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gemmBench, lowpBench } from '../../src/bench/index.js';
import { runOctet } from '../helpers/cli_io.js';

describe('octet bench', () => {
  test('gemm rows carry the fields the issue asks for (speed not asserted)', () => {
    const [row] = gemmBench([1], [{ m: 40, n: 50, k: 60, label: 'tiny' }]);
    assert.equal(row.bench, 'gemm');
    assert.deepEqual([row.m, row.n, row.k, row.threads], [40, 50, 60, 1]);
    assert.ok(row.gflops > 0);
    if (row.numpy_gflops !== undefined) assert.ok(row.ratio_numpy! > 0);
  });

  test('lowp rows carry the fields the issue asks for', () => {
    const rows = lowpBench([1], [{ m: 20, n: 30, k: 40, label: 'square' }]);
    assert.deepEqual(rows.map((r) => `${r.acc}/${r.chunk}/${r.rounding}`), ['fp32/0/nearest', 'e6m9/0/nearest', 'e6m9/64/nearest', 'e6m9/0/stochastic']);
    for (const r of rows) {
      assert.deepEqual([r.bench, r.a, r.b, r.m, r.n, r.k, r.threads], ['lowp', 'e5m2', 'e5m2', 20, 30, 40, 1]);
      assert.ok(r.gflops > 0 && r.ratio_fp32 > 0);
    }
  });

  test('unknown groups and bad thread lists are refused', async () => {
    const r = await runOctet(['bench', 'matmul']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown benchmark "matmul"; choose from gemm, lowp, codec/);
    const t = await runOctet(['bench', 'gemm', '--threads', '0,2']);
    assert.match(t.stderr, /--threads "0,2"; expected positive integers/);
  });
});
