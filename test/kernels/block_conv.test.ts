/**
 * Block-scaled convolution: with one block per operand it is the low-precision convolution of
 * the same codes and scales, bit for bit (so its columns, K order and layout moves are those of
 * lowp_conv.ts); with MX blocks the native and TypeScript layout paths agree, grouped too.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { blockConv2dBackwardData, blockConv2dBackwardWeight, blockConv2dForward, type ConvBlocks } from '../../src/kernels/block_conv.js';
import { blockScale, type BlockSpec } from '../../src/kernels/block_quant.js';
import { convGeometry } from '../../src/kernels/conv_geometry.js';
import { lowpConv2dBackwardData, lowpConv2dBackwardWeight, lowpConv2dForward } from '../../src/kernels/lowp_conv.js';
import { encodeScaledReference, absMaxReference } from '../../src/kernels/quant_stats.js';
import type { LowpGemmOptions } from '../../src/kernels/lowp_gemm.js';
import { resolveFormat } from '../../src/formats/index.js';
import { assertSameBits } from '../helpers/bits.js';
import { uniform } from '../helpers/random.js';

const WHOLE = 2 ** 30;

/** One block for the whole operand, power-of-two scale: the per-tensor QTensor it equals. */
function perTensor(x: Float32Array, format: string) {
  const f = resolveFormat(format);
  const scale = blockScale(absMaxReference(x), f, 'pow2', 0);
  return encodeScaledReference(x, scale, f).coded;
}

describe('block-scaled convolution', () => {
  const s = convGeometry([2, 5, 6, 6], [4, 5, 3, 3], { stride: 1, padding: 1 });
  const x = uniform(2 * 5 * 36, 1, -3, 3);
  const w = uniform(4 * 5 * 9, 2, -1, 1);
  const dy = uniform(2 * 4 * 36, 3, -0.01, 0.01);
  const spec = (format: string): BlockSpec => ({ format, blockRows: WHOLE, blockK: WHOLE, scale: 'pow2' });
  const blocks: ConvBlocks = { x: spec('e4m3'), w: spec('e4m3'), e: spec('e5m2') };
  for (const options of [{}, { accumulation: 'e6m9' }] as LowpGemmOptions[]) {
    test(`one block per operand equals the per-tensor low-precision convolution (${options.accumulation ?? 'fp32'} accumulation)`, () => {
      const X = perTensor(x, 'e4m3');
      const W = perTensor(w, 'e4m3');
      const E = perTensor(dy, 'e5m2');
      assertSameBits(blockConv2dForward(x, w, s, blocks, options), lowpConv2dForward(X, W, s, options), 'forward');
      assertSameBits(blockConv2dBackwardData(dy, w, s, blocks, options), lowpConv2dBackwardData(E, W, s, options), 'input gradient');
      assertSameBits(blockConv2dBackwardWeight(dy, x, s, blocks, options), lowpConv2dBackwardWeight(E, X, s, options), 'weight gradient');
    });
  }

  test('MX blocks, strided and grouped: the native layout paths equal the TypeScript ones', () => {
    const g = convGeometry([2, 6, 7, 7], [4, 3, 3, 3], { stride: 2, padding: 1, groups: 2 });
    const gx = uniform(2 * 6 * 49, 4, -2, 2);
    const gw = uniform(4 * 3 * 9, 5);
    const gdy = uniform(2 * 4 * g.outH * g.outW, 6);
    const mx = (format: string): BlockSpec => ({ format, blockRows: 1, blockK: 32, scale: 'e8m0' });
    const b: ConvBlocks = { x: mx('e4m3'), w: mx('e4m3'), e: mx('e5m2') };
    assertSameBits(blockConv2dForward(gx, gw, g, b, {}, false), blockConv2dForward(gx, gw, g, b, {}, true), 'forward');
    assertSameBits(blockConv2dBackwardData(gdy, gw, g, b, {}, false), blockConv2dBackwardData(gdy, gw, g, b, {}, true), 'input gradient');
    assertSameBits(blockConv2dBackwardWeight(gdy, gx, g, b, {}, false), blockConv2dBackwardWeight(gdy, gx, g, b, {}, true), 'weight gradient');
    // MX keeps the product close to float32's: a sanity check of layouts and roles.
    const y = blockConv2dForward(gx, gw, g, b);
    const y32 = blockConv2dForward(gx, gw, g, {});
    let err = 0;
    let norm = 0;
    for (let i = 0; i < y.length; i++) {
      err += (y[i] - y32[i]) ** 2;
      norm += y32[i] ** 2;
    }
    assert.ok(Math.sqrt(err / norm) < 0.1, `relative error ${Math.sqrt(err / norm)}`);
  });
});
