import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../../src/autograd/index.js';
import { buildModel, summarize } from '../../../src/nn/index.js';
import { sum } from '../../../src/ops/index.js';
import { Tensor } from '../../../src/tensor/index.js';
import { overfit, randomInput, randomLabels } from '../../helpers/overfit.js';

describe('SqueezeNet', () => {
  test("1.0 at the paper's 227x227: 55x55 after the first pool, a 13x13 final map, one output per class", () => {
    const s = summarize(buildModel('squeezenet1_0', { classes: 10 }), Tensor.zeros([1, 3, 227, 227]));
    assert.deepEqual(s.rows.find((r) => r.name === 'features.2')!.outputShape, [1, 96, 55, 55]);
    assert.deepEqual(s.rows.find((r) => r.name === 'classifier.1')!.outputShape, [1, 10, 13, 13]);
    assert.deepEqual(s.rows.at(-1)!.outputShape, [1, 10]);
  });

  test('fire modules concatenate their two expands; backward reaches every parameter', () => {
    const model = buildModel('squeezenet1_1', { classes: 3, inChannels: 1 });
    const y = model.call(randomInput([1, 1, 48, 48], 1));
    assert.deepEqual(y.shape, [1, 3]);
    backward(sum(y));
    for (const [name, p] of model.namedParameters()) assert.ok(p.grad && p.grad.data.some((v) => v !== 0), name);
  });

  // Adam at lr 1e-3 or more can kill every ReLU after the final convolution for an example (its
  // logits stay 0, loss ln 3), a known SqueezeNet failure; 5e-4 trains.
  test('squeezenet1_0 and 1_1 overfit a tiny batch', () => {
    for (const name of ['squeezenet1_0', 'squeezenet1_1']) {
      const model = buildModel(name, { classes: 3, seed: 1 });
      const { first, last } = overfit(model, randomInput([4, 3, 40, 40], 2), randomLabels(4, 3, 3), 40, 0.0005);
      assert.ok(last < first * 0.1, `${name}: loss ${first} -> ${last}`);
    }
  });
});
