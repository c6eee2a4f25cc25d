/**
 * Strided input gradients phase by phase: the same bits as the contract's convolution of the
 * dilated output gradient, and each phase's sums keep the contract's chunk boundaries.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeQTensor } from '../../src/formats/index.js';
import { encode } from '../../src/kernels/codec.js';
import { lowpConv2dBackwardData } from '../../src/kernels/lowp_conv.js';
import { phaseChunkEnds } from '../../src/kernels/lowp_conv_phases.js';
import { assertSameBits } from '../helpers/bits.js';
import { uniform } from '../helpers/random.js';
import { squareConv as shape } from '../helpers/tensors.js';

describe('strided input gradients phase by phase', () => {
  test("a phase's chunk ends: after its terms below each chunk boundary of the contract's sum", () => {
    // 3x3 kernel, stride 2, phase taps i0 = 1 (row 1) and j0 = 0 (columns 0 and 2): the contract's
    // terms k = (oc * 3 + 1) * 3 + {0, 2}, that is 3, 5 (oc 0) and 12, 14 (oc 1), out of 18.
    assert.deepEqual(Array.from(phaseChunkEnds(2, 3, 3, 1, 0, 2, 2, 1, 2, 4)), [1, 2, 2, 4, 4]);
    assert.deepEqual(Array.from(phaseChunkEnds(2, 3, 3, 1, 0, 2, 2, 1, 2, 18)), [4]);
    assert.deepEqual(Array.from(phaseChunkEnds(1, 3, 3, 1, 0, 2, 2, 1, 2, 1)), [0, 0, 0, 1, 1, 2, 2, 2, 2]);
  });

  test('strided input gradients of float32 errors and FP8 weights (SFP8 backward) equal the contract bit for bit', () => {
    for (const s of [shape(2, 4, 9, 6, 3, 2, 1, 1, 1), shape(2, 4, 8, 6, 1, 2, 0, 1, 2)]) {
      const w = makeQTensor(encode(uniform(s.outChannels * (s.channels / s.groups) * s.kernelH * s.kernelW, 7, -1, 1), 'e5m2'), 'e5m2', 4);
      // Tiny errors too: their products with weights underflow float32 (rounded to zero by the unfused steps).
      const dy = uniform(s.batch * s.outChannels * s.outH * s.outW, 8, -1, 1).map((v, i) => (i % 3 === 0 ? v * 1e-40 : v));
      assertSameBits(lowpConv2dBackwardData(dy, w, s, {}), lowpConv2dBackwardData(dy, w, s, {}, true), 'dx');
    }
  });

  test('a strided input gradient with an infinite weight is still the contract (0 x Inf is NaN)', () => {
    const s = shape(1, 2, 7, 3, 3, 2, 1, 1, 1);
    const ws = uniform(3 * 2 * 9, 5, -1, 1);
    ws[4] = Infinity;
    const w = makeQTensor(encode(ws, 'e5m2'), 'e5m2', 1);
    const dy = makeQTensor(encode(uniform(3 * 16, 6, -1, 1), 'e5m2'), 'e5m2', 1);
    const fast = lowpConv2dBackwardData(dy, w, s, {});
    assertSameBits(fast, lowpConv2dBackwardData(dy, w, s, {}, true), 'dx');
    assert.ok(fast.some(Number.isNaN), 'the dilated zeros times Inf give NaN, as the contract says');
  });

});
