import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gemmBench, lowpBench, trainBench } from '../../src/bench/index.js';
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

  test('train options: refused outside the train group, checked values', async () => {
    const g = await runOctet(['bench', 'gemm', '--model', 'resnet20']);
    assert.equal(g.code, 1);
    assert.match(g.stderr, /--model applies to the train benchmark alone/);
    assert.match((await runOctet(['bench', 'train', '--batch', '0'])).stderr, /--batch "0"; expected an integer >= 1/);
    assert.match((await runOctet(['bench', 'train', '--input', '28x28'])).stderr, /--input "28x28"; expected CxHxW/);
    assert.match((await runOctet(['bench', 'train', '--model', 'resnet21'])).stderr, /unknown model "resnet21"/);
  });

  test('train rows for a named model: the three recipes, ratios, the peer where present, and a profile (speed not asserted)', () => {
    const rows = trainBench(1, { model: 'resnet20', batch: 2, input: [1, 8, 8], steps: 1, rounds: 1, profileSteps: 1 });
    assert.deepEqual(rows.map((r) => `${r.recipe}/${r.acc}`), ['fp32/fp32', 'fp8/fp32', 'fp8/e6m9/64']);
    for (const r of rows) {
      assert.deepEqual([r.bench, r.model, r.input, r.classes, r.batch], ['train', 'resnet20', '1x8x8', 10, 2]);
      assert.ok(r.images_per_s > 0 && r.ratio_fp32 > 0);
      assert.equal(r.ratio_fp32_direct, null);
      if (r.torch_images_per_s === null) assert.equal(r.ratio_torch, null);
      else assert.equal(r.torch_params, r.params);
      assert.ok(r.profile && r.profile.by_kind.length > 0 && r.profile.by_layer.some((l) => l.layer === 'layer2.0.conv1'));
    }
    assert.equal(rows[0].ratio_fp32, 1);
  });
});
