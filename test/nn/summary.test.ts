import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildModel, summarize } from '../../src/nn/index.js';
import { Tensor } from '../../src/tensor/index.js';

describe('summary', () => {
  const model = buildModel('resnet20');
  const s = summarize(model, Tensor.zeros([1, 3, 32, 32]));

  test('one row per leaf layer call, in execution order, with PyTorch paths', () => {
    assert.deepEqual(s.rows.slice(0, 4).map((r) => r.name), ['conv1', 'bn1', 'relu', 'layer1.0.conv1']);
    assert.equal(s.rows.at(-1)!.name, 'fc');
    assert.deepEqual(s.rows.at(-1)!.outputShape, [1, 10]);
    assert.equal(s.rows.filter((r) => r.layer.startsWith('Conv2d')).length, 19);
  });

  test('row parameters add up to the model total; MACs are those of ResNet-20 (about 41 M)', () => {
    assert.equal(s.rows.reduce((n, r) => n + r.params, 0), s.totalParams);
    assert.equal(s.totalParams, 269_722);
    // conv MACs by hand: stem 16*32*32*27, stage1 6 convs of 16*32*32*144, stage2 32*16*16*(144 + 5*288),
    // stage3 64*8*8*(288 + 5*576), fc 64*10.
    const expected = 16 * 1024 * 27 + 6 * 16 * 1024 * 144 + 32 * 256 * (144 + 5 * 288) + 64 * 64 * (288 + 5 * 576) + 640;
    assert.equal(s.totalMacs, expected);
  });

  test('summarizing leaves the model in its previous mode and records no graph', () => {
    assert.equal(model.training, true);
    assert.ok(model.parameters().every((p) => p.grad === null));
  });
});
