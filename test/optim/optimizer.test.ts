/**
 * What the optimizers share (src/optim/optimizer.ts) beyond AdamW's and SGD's own tests: zeroGrad
 * hands the gradients' arrays back to the buffer pool when asked, and training steps that do so
 * give the same bits as steps that do not.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward, withActivationRelease } from '../../src/autograd/index.js';
import { bufferPoolStats, clearBufferPool, takeBuffer } from '../../src/kernels/index.js';
import { buildModel } from '../../src/nn/index.js';
import { softmaxCrossEntropy } from '../../src/ops/index.js';
import { AdamW } from '../../src/optim/index.js';
import { applyRecipe, presetRecipe } from '../../src/quant/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { uniform } from '../helpers/random.js';

describe('zeroGrad', () => {
  test('with release the gradient arrays go back to the buffer pool; without, they do not', () => {
    const n = 1 << 16;
    for (const release of [false, true]) {
      const p = new Tensor(new Float32Array(n), [n]).requireGrad();
      const grad = new Float32Array(n).fill(1);
      p.grad = new Tensor(grad, [n]);
      const opt = new AdamW([['w', p]], { lr: 0.1 });
      opt.zeroGrad({ release });
      assert.equal(p.grad, null);
      const next = takeBuffer(n);
      assert.equal(next === grad, release, release ? 'the pool hands the array out again' : 'kept out of the pool');
    }
  });

  for (const recipe of ['fp32', 'fp8']) {
    test(`${recipe}: training steps that release their gradients give the same bits as steps that do not`, () => {
      const run = (release: boolean) => {
        // Width 16: layer3's 64 x 64 x 3 x 3 weights are large enough for the pool.
        clearBufferPool();
        const model = buildModel('resnet20', { width: 16, classes: 10, inChannels: 1, seed: 3 });
        const session = applyRecipe(model, presetRecipe(recipe), { seed: 1 });
        const optimizer = new AdamW(model.namedParameters(), { lr: 0.01 });
        const x = new Tensor(uniform(16 * 28 * 28, 5), [16, 1, 28, 28]);
        const fresh: number[] = [];
        for (let step = 0; step < 3; step++) {
          const before = bufferPoolStats().freshBytes;
          optimizer.zeroGrad({ release });
          withActivationRelease(() => backward(session.scaleLoss(softmaxCrossEntropy(model.call(x), Int32Array.from({ length: 16 }, (_, i) => i % 10)))));
          optimizer.stepAll(session.finishBackward().skip);
          fresh.push(bufferPoolStats().freshBytes - before);
        }
        return { params: model.namedParameters().map(([name, p]) => [name, Float32Array.from(p.data)] as const), fresh };
      };
      const { params: plain, fresh: kept } = run(false);
      const before = bufferPoolStats().reused;
      const { params: released, fresh } = run(true);
      assert.ok(bufferPoolStats().reused > before);
      // The third step takes the gradients (and under fp8 the weights' and weight gradients' codes)
      // from the pool: less fresh memory than without release.
      assert.ok(fresh[2] < kept[2], `fresh bytes by step: ${fresh.join(', ')} with release, ${kept.join(', ')} without`);
      for (let i = 0; i < plain.length; i++) assert.deepEqual(released[i], plain[i], plain[i][0]);
    });
  }
});
