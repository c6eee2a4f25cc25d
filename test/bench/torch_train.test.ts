/** The PyTorch peer of the train bench builds the same architectures (where torch is installed). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runPython } from '../../src/bench/peers.js';
import { torchModelsSource } from '../../src/bench/torch_train.js';
import { TRAIN_BENCH_MODELS, parseInputShape } from '../../src/bench/train_bench.js';
import { buildModel } from '../../src/nn/index.js';

const python = ['python3', '/usr/bin/python3'].find((p) => runPython('import json, torch, torchvision; print(json.dumps(1))', p) !== null);

describe('train bench', () => {
  test('--input parses CxHxW and names what is wrong otherwise', () => {
    assert.deepEqual(parseInputShape('1x28x28'), [1, 28, 28]);
    for (const bad of ['28x28', '1x28x0', '3x32x32.5', 'ax1x1']) assert.throws(() => parseInputShape(bad), /--input .*expected CxHxW/);
  });

  test('every model the bench knows is in the zoo', () => {
    for (const [model, d] of Object.entries(TRAIN_BENCH_MODELS)) assert.ok(buildModel(model, { classes: d.classes, inChannels: d.input[0] }).numParameters() > 0);
  });

  test('the PyTorch peer has the same parameter count as Octet for every bench model', { skip: python ? false : 'torch is not installed' }, () => {
    const rows = Object.entries(TRAIN_BENCH_MODELS).map(([m, d]) => [m, d.input[0], d.classes, buildModel(m, { classes: d.classes, inChannels: d.input[0], seed: 1 }).numParameters()]);
    const out = runPython(
      `${torchModelsSource()}\nimport json\nprint(json.dumps([[m, n, sum(p.numel() for p in build(m, c, k, 0).parameters())] for m, c, k, n in ${JSON.stringify(rows)}]))\n`,
      python,
    ) as [string, number, number][];
    for (const [model, octet, torch] of out) assert.equal(torch, octet, model);
  });
});
