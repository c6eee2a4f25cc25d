import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../../src/autograd/index.js';
import { buildModel, summarize } from '../../../src/nn/index.js';
import { sum } from '../../../src/ops/index.js';
import { Tensor } from '../../../src/tensor/index.js';
import { overfit, randomInput, randomLabels } from '../../helpers/overfit.js';

// Parameter count written out from the paper's tables, block by block (conv weights, BN 2 per channel).
const bn = (c: number) => 2 * c;
const convBnRelu = (i: number, o: number, k: number) => i * o * k * k + bn(o);
const dsConv = (i: number, o: number) => i * 9 + bn(i) + i * o + bn(o);
const bottleneck = (i: number, o: number) => convBnRelu(i, 6 * i, 1) + 6 * i * 9 + bn(6 * i) + 6 * i * o + bn(o);
function expectedCount(classes: number): number {
  const ltd = convBnRelu(3, 32, 3) + dsConv(32, 48) + dsConv(48, 64);
  const gfe =
    bottleneck(64, 64) * 3 + bottleneck(64, 96) + bottleneck(96, 96) * 2 + bottleneck(96, 128) + bottleneck(128, 128) * 2 +
    4 * convBnRelu(128, 32, 1) + convBnRelu(256, 128, 1);
  const ffm = 128 * 9 + bn(128) + (128 * 128 + 128 + bn(128)) + (64 * 128 + 128 + bn(128));
  const classifier = 2 * dsConv(128, 128) + 128 * classes + classes;
  return ltd + gfe + ffm + classifier;
}

describe('Fast-SCNN', () => {
  test('parameter count equals the block-by-block count of the paper architecture', () => {
    assert.equal(buildModel('fastscnn').numParameters(), expectedCount(19));
    assert.equal(buildModel('fastscnn', { classes: 11 }).numParameters(), expectedCount(11));
  });

  test('branch resolutions: /8 after learning to downsample, /32 in the global extractor, output at input size', () => {
    const s = summarize(buildModel('fastscnn', { classes: 4 }), Tensor.zeros([1, 3, 64, 96]));
    assert.deepEqual(s.rows.find((r) => r.name === 'learning_to_downsample.dsconv2.conv.5')!.outputShape, [1, 64, 8, 12]);
    assert.deepEqual(s.rows.find((r) => r.name === 'global_feature_extractor.bottleneck3.2.block.3')!.outputShape, [1, 128, 2, 3]);
    assert.deepEqual(s.rows.find((r) => r.name === 'global_feature_extractor.ppm.conv4.conv.2')!.outputShape, [1, 32, 6, 6]);
  });

  test('backward reaches every parameter, and it overfits a tiny segmentation batch', () => {
    const model = buildModel('fastscnn', { classes: 3, inChannels: 1, seed: 5 });
    // In eval mode: in training mode a per-channel shift before a batch norm (a BN bias feeding only
    // a 1x1 conv and another BN, as bottleneck2.0 does) is removed exactly, so its gradient is 0.
    model.eval();
    const y = model.call(randomInput([2, 1, 32, 32], 1));
    assert.deepEqual(y.shape, [2, 3, 32, 32]);
    backward(sum(y));
    for (const [name, p] of model.namedParameters()) assert.ok(p.grad && p.grad.data.some((v) => v !== 0), name);
    model.train();
    // Labels constant over 8x8 blocks: the classifier works at 1/8 resolution, so per-pixel noise
    // could not be fitted by the real network either.
    const blocks = randomLabels(2 * 4 * 4, 3, 3);
    const labels = Int32Array.from({ length: 2 * 32 * 32 }, (_, i) => blocks[Math.floor(i / 1024) * 16 + Math.floor((i % 1024) / 256) * 4 + Math.floor((i % 32) / 8)]);
    const { first, last } = overfit(model, randomInput([2, 1, 32, 32], 2), labels, 40, 0.01);
    assert.ok(last < first * 0.3, `loss ${first} -> ${last}`);
  });
});
