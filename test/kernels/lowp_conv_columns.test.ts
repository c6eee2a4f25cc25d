/**
 * The low-precision convolutions' column products: built in chunks under a small column budget,
 * or read in place, they give the same bits as all at once, on the fast path and the reference.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeQTensor } from '../../src/formats/index.js';
import { encode } from '../../src/kernels/codec.js';
import { lowpConv2dBackwardData, lowpConv2dBackwardWeight, lowpConv2dForward } from '../../src/kernels/lowp_conv.js';
import { setConvColumnBudget } from '../../src/kernels/lowp_conv_columns.js';
import { uniform } from '../helpers/random.js';
import { squareConv as shape } from '../helpers/tensors.js';

describe('low-precision convolution columns', () => {
  test('images (forward, input gradient) and channels (weight gradient) in chunks give the same bits as all at once', () => {
    for (const groups of [1, 2]) {
      const s = shape(3, 4, 7, 6, 3, 2, 1, 1, groups);
      const cg = 4 / groups;
      const x = makeQTensor(encode(uniform(3 * 4 * 49, 41, -2, 2), 'e5m2'), 'e5m2', 2);
      const w = makeQTensor(encode(uniform(6 * cg * 9, 42, -2, 2), 'e4m3'), 'e4m3', 4);
      const dyFloats = uniform(3 * 6 * s.outH * s.outW, 43, -1, 1);
      const dyCodes = makeQTensor(encode(dyFloats, 'e5m2'), 'e5m2', 0.5);
      for (const options of [{}, { accumulation: 'e6m9' }, { accumulation: 'e6m9', chunk: 5 }, { accumulation: 'bf16', output: { format: 'e5m2' } }]) {
        const run = (reference: boolean) => [
          lowpConv2dForward(x, w, s, options, reference),
          lowpConv2dBackwardData(dyFloats, w, s, options, reference),
          lowpConv2dBackwardWeight(dyFloats, x, s, options, reference),
          lowpConv2dBackwardWeight(dyCodes, x, s, options, reference),
        ];
        const whole = run(false);
        const previous = setConvColumnBudget(1);
        try {
          for (const reference of [false, true]) {
            run(reference).forEach((c, i) => {
              const what = ['forward', 'input gradient', 'weight gradient (float errors)', 'weight gradient (coded errors)'][i];
              assert.deepEqual(c, whole[i], `groups ${groups} ${JSON.stringify(options)} ${what}${reference ? ' (reference)' : ''}`);
            });
          }
        } finally {
          setConvColumnBudget(previous);
        }
      }
    }
  });


  test('the column budget must be at least a byte', () => {
    assert.throws(() => setConvColumnBudget(0), /setConvColumnBudget: 0 bytes; expected at least 1/);
  });
});
