/**
 * The direct path of the low-precision convolutions (src/kernels/lowp_conv_direct.ts): where it
 * runs (exact products; stride 1 for the forward and the input gradient, under float32 or emulated
 * accumulation; the weight gradient under float32 accumulation), the results are the reference's bits, on shapes that exercise the kernel's edges (rows that straddle its
 * 32-position tiles, output channels past a block of 8, groups, wide and tall kernels, paddings
 * from 0 to the kernel's size - 1), special values, other formats, scales and output rounding, on
 * 1, 2 and 3 threads.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encode } from '../../src/kernels/codec.js';
import { makeQTensor } from '../../src/formats/index.js';
import { convGeometry, type ConvGeometry } from '../../src/kernels/conv_geometry.js';
import { lowpConv2dBackwardData, lowpConv2dBackwardWeight, lowpConv2dForward } from '../../src/kernels/lowp_conv.js';
import { directApplies, directConvolution, directGradientApplies, directGradientWins, directWeightGradient, directWins } from '../../src/kernels/lowp_conv_direct.js';
import { backend } from '../../src/kernels/lowp_conv_columns.js';
import { nativeCore } from '../../src/kernels/native.js';
import { assertSameBits } from '../helpers/bits.js';
import { uniform } from '../helpers/random.js';

const geometry = (batch: number, channels: number, h: number, w: number, out: number, kh: number, kw: number, ph: number, pw: number, groups = 1): ConvGeometry =>
  convGeometry([batch, channels, h, w], [out, channels / groups, kh, kw], { padding: [ph, pw], groups });

const SHAPES: Array<[string, ConvGeometry]> = [
  ['ResNet-20 stage 1 (16 channels, 28x28)', geometry(2, 16, 28, 28, 16, 3, 3, 1, 1)],
  ['7x7 planes, 64 channels', geometry(3, 64, 7, 7, 64, 3, 3, 1, 1)],
  ['wide rows (45 columns), 11 output channels', geometry(2, 5, 6, 45, 11, 3, 3, 1, 1)],
  ['1x1, 20 output channels', geometry(2, 7, 9, 10, 20, 1, 1, 0, 0)],
  ['5x5 pad 2, 3 channels', geometry(1, 3, 12, 9, 9, 5, 5, 2, 2)],
  ['3x3 without padding, tall', geometry(2, 4, 33, 5, 6, 3, 3, 0, 0)],
  ['2x3 kernel, pad 1,2', geometry(2, 6, 8, 7, 5, 2, 3, 1, 2)],
  ['groups 2', geometry(2, 8, 10, 10, 12, 3, 3, 1, 1, 2)],
  ['one output pixel', geometry(3, 9, 3, 3, 17, 3, 3, 0, 0)],
];

const THREADS = [1, 2, 3];

function codes(values: Float32Array, format: string, scale: number) {
  return makeQTensor(encode(values, format), format, scale);
}

describe('direct low-precision convolution', { skip: nativeCore() ? false : 'the native addon is not built' }, () => {
  for (const [name, s] of SHAPES) {
    test(`${name}: forward and input gradient equal the reference bit for bit`, () => {
      assert.ok(directApplies(backend(false), s, {}), 'the direct path applies to this shape');
      const cg = s.channels / s.groups;
      const x = codes(uniform(s.batch * s.channels * s.height * s.width, 1, -2, 2), 'e5m2', 4);
      const w = codes(uniform(s.outChannels * cg * s.kernelH * s.kernelW, 2, -1, 1), 'e5m2', 8);
      const dy = codes(uniform(s.batch * s.outChannels * s.outH * s.outW, 3, -1, 1), 'e5m2', 2);
      const wantY = lowpConv2dForward(x, w, s, {}, true);
      const wantDx = lowpConv2dBackwardData(dy, w, s, {}, true);
      const wantDw = lowpConv2dBackwardWeight(dy, x, s, {}, true);
      for (const threads of THREADS) {
        assertSameBits(lowpConv2dForward(x, w, s, { threads }), wantY, `forward, ${threads} threads`);
        assertSameBits(lowpConv2dBackwardData(dy, w, s, { threads }), wantDx, `input gradient, ${threads} threads`);
        assertSameBits(lowpConv2dBackwardWeight(dy, x, s, { threads }), wantDw, `weight gradient, ${threads} threads`);
      }
    });
  }

  // The weight gradient runs direct at any stride, dilation and padding: channel counts that make
  // 1, 2 or 4 vectors of 16 output channels per tile, taps past a tile's block.
  const GRADIENT_SHAPES: Array<[string, ConvGeometry]> = [
    ['stride 2, 3x3, 32 output channels', convGeometry([2, 6, 11, 9], [32, 6, 3, 3], { stride: 2, padding: 1 })],
    ['1x1 stride 2, 64 output channels', convGeometry([2, 16, 8, 8], [64, 16, 1, 1], { stride: 2 })],
    ['dilation 2, padding 2, 48 output channels', convGeometry([1, 5, 9, 10], [48, 5, 3, 3], { dilation: 2, padding: 2 })],
    ['padding past the kernel, 7 output channels', convGeometry([2, 3, 5, 6], [7, 3, 2, 2], { padding: 3 })],
    ['groups 4, stride 2', convGeometry([2, 8, 9, 9], [20, 2, 3, 3], { stride: 2, padding: 1, groups: 4 })],
  ];
  for (const [name, s] of GRADIENT_SHAPES) {
    test(`${name}: the weight gradient equals the reference bit for bit`, () => {
      assert.ok(directGradientApplies(backend(false), {}));
      const cg = s.channels / s.groups;
      const x = codes(uniform(s.batch * s.channels * s.height * s.width, 11, -2, 2), 'e5m2', 4);
      const dy = codes(uniform(s.batch * s.outChannels * s.outH * s.outW, 12, -1, 1), 'e4m3', 2);
      const want = lowpConv2dBackwardWeight(dy, x, s, {}, true);
      assert.equal(want.length, s.outChannels * cg * s.kernelH * s.kernelW);
      for (const threads of THREADS) assertSameBits(lowpConv2dBackwardWeight(dy, x, s, { threads }), want, `weight gradient, ${threads} threads`);
    });
  }

  test('the kernels themselves, called where the measured rule would keep the GEMM (128 channels, 7x7 planes), give the reference bits', () => {
    const s = geometry(2, 20, 7, 7, 128, 3, 3, 1, 1);
    assert.equal(directWins(128), false);
    assert.equal(directGradientWins(geometry(2, 64, 7, 7, 64, 3, 3, 1, 1)), false);
    assert.equal(directGradientWins(s), false);
    const x = codes(uniform(s.batch * s.channels * 49, 21, -2, 2), 'e5m2', 1);
    const w = codes(uniform(s.outChannels * s.channels * 9, 22, -1, 1), 'e5m2', 1);
    const dy = codes(uniform(s.batch * s.outChannels * 49, 23, -1, 1), 'e5m2', 1);
    const lowp = (t: typeof x) => ({ kind: 'lowp' as const, op: t });
    const y = new Float32Array(s.batch * s.outChannels * 49);
    assert.ok(directConvolution(s.batch, 1, () => ({
      x: lowp(x), w: lowp(w), y, geometry: { channels: 20, height: 7, width: 7, outChannels: 128, kernelH: 3, kernelW: 3, padH: 1, padW: 1, outH: 7, outW: 7 },
      xImageStride: 20 * 49, yImageStride: 128 * 49,
    }), y, {}));
    assertSameBits(y, lowpConv2dForward(x, w, s, {}, true), 'forward');
    const dw = new Float32Array(128 * 20 * 9);
    assert.ok(directWeightGradient(1, () => ({ dy: lowp(dy), x: lowp(x), dw, geometry: s, xImageStride: 20 * 49, dyImageStride: 128 * 49 }), dw, {}));
    assertSameBits(dw, lowpConv2dBackwardWeight(dy, x, s, {}, true), 'weight gradient');
  });

  // Emulated accumulators: the forward and the input gradient run direct on AVX-512 where every
  // value stays in the accumulator's normal range (proven, or checked per tile), else the GEMM.
  const EMULATED = [
    { accumulation: 'e6m9' },
    { accumulation: 'e6m9', chunk: 64 },
    { accumulation: 'e6m9', chunk: 5 },
    { accumulation: 'fp16', saturate: true },
    { accumulation: 'bf16', chunk: 16, output: { format: 'e5m2' } },
  ];
  for (const [name, s] of SHAPES.slice(0, 6)) {
    test(`${name}: emulated accumulators give the reference bits`, () => {
      const cg = s.channels / s.groups;
      const x = codes(uniform(s.batch * s.channels * s.height * s.width, 31, -2, 2), 'e5m2', 4);
      const w = codes(uniform(s.outChannels * cg * s.kernelH * s.kernelW, 32, -1, 1), 'e5m2', 8);
      const dy = codes(uniform(s.batch * s.outChannels * s.outH * s.outW, 33, -1, 1), 'e5m2', 2);
      for (const options of EMULATED) {
        assert.ok(directApplies(backend(false), s, options));
        const label = JSON.stringify(options);
        const wantY = lowpConv2dForward(x, w, s, options, true);
        const wantDx = lowpConv2dBackwardData(dy, w, s, options, true);
        const wantDw = lowpConv2dBackwardWeight(dy, x, s, options, true);
        for (const threads of [1, 2]) {
          assertSameBits(lowpConv2dForward(x, w, s, { ...options, threads }), wantY, `forward ${label}, ${threads} threads`);
          assertSameBits(lowpConv2dBackwardData(dy, w, s, { ...options, threads }), wantDx, `input gradient ${label}, ${threads} threads`);
          assertSameBits(lowpConv2dBackwardWeight(dy, x, s, { ...options, threads }), wantDw, `weight gradient ${label}, ${threads} threads`);
        }
      }
    });
  }

  test('an emulated accumulator whose values leave its normal range (overflow, subnormal sums) falls back to the GEMM with the same bits', () => {
    const s = geometry(2, 8, 9, 18, 16, 3, 3, 1, 1);
    const lowp = (t: ReturnType<typeof codes>) => ({ kind: 'lowp' as const, op: t });
    const run = (x: ReturnType<typeof codes>, w: ReturnType<typeof codes>, options: object) => {
      const y = new Float32Array(s.batch * 16 * 9 * 18);
      const ran = directConvolution(s.batch, 1, () => ({
        x: lowp(x), w: lowp(w), y, geometry: { channels: 8, height: 9, width: 18, outChannels: 16, kernelH: 3, kernelW: 3, padH: 1, padW: 1, outH: 9, outW: 18 },
        xImageStride: 8 * 9 * 18, yImageStride: 16 * 9 * 18,
      }), y, options);
      return { ran, y };
    };
    const small = codes(uniform(s.batch * 8 * 9 * 18, 41, -1, 1), 'e5m2', 1);
    const w = codes(uniform(16 * 8 * 9, 42, -1, 1), 'e5m2', 1);
    // In range: the direct kernel runs and gives the reference's bits.
    const ok = run(small, w, { accumulation: 'e6m9', chunk: 64 });
    // (The emulated direct kernels have AVX-512 and AVX2 tiles; elsewhere they decline and the GEMM runs.)
    assert.equal(ok.ran, nativeCore()!.info().lowpTiles !== 'portable');
    if (ok.ran) assertSameBits(ok.y, lowpConv2dForward(small, w, s, { accumulation: 'e6m9', chunk: 64 }, true), 'in range');
    // The weight gradient's kernel too (chunks along the batch's positions, across images).
    const dy = codes(uniform(s.batch * 16 * 9 * 18, 47, -1, 1), 'e5m2', 1);
    const dw = new Float32Array(16 * 8 * 9);
    for (const options of [{ accumulation: 'e6m9', chunk: 64 }, { accumulation: 'e6m9' }, { accumulation: 'bf16', chunk: 100 }]) {
      const ranGradient = directWeightGradient(1, () => ({ dy: lowp(dy), x: lowp(small), dw, geometry: s, xImageStride: 8 * 9 * 18, dyImageStride: 16 * 9 * 18 }), dw, options);
      assert.equal(ranGradient, nativeCore()!.info().lowpTiles !== 'portable');
      if (ranGradient) assertSameBits(dw, lowpConv2dBackwardWeight(dy, small, s, options, true), `weight gradient ${JSON.stringify(options)}`);
    }
    // Sums past fp16's largest value (65504): the kernel declines; the convolution's result is the reference's.
    const big = codes(uniform(s.batch * 8 * 9 * 18, 43, 20000, 57344), 'e5m2', 1);
    const wBig = codes(uniform(16 * 8 * 9, 44, 1, 2), 'e5m2', 1);
    assert.equal(run(big, wBig, { accumulation: 'fp16' }).ran, false);
    assertSameBits(lowpConv2dForward(big, wBig, s, { accumulation: 'fp16' }), lowpConv2dForward(big, wBig, s, { accumulation: 'fp16' }, true), 'overflow');
    // Tiny values whose sums fall below e6m9's normal range.
    const tiny = codes(uniform(s.batch * 8 * 9 * 18, 45, -(2 ** -14), 2 ** -14), 'e5m2', 1);
    const wTiny = codes(uniform(16 * 8 * 9, 46, -(2 ** -14), 2 ** -14), 'e5m2', 1);
    assertSameBits(lowpConv2dForward(tiny, wTiny, s, { accumulation: 'e6m9' }), lowpConv2dForward(tiny, wTiny, s, { accumulation: 'e6m9' }, true), 'subnormal sums');
    // (E5M2 products are multiples of 2^-32, which e6m9's subnormals hold exactly; fp16's do not:
    // products near 2^-16 lose bits there, so a kernel that missed them would differ.)
    const tiny16 = codes(uniform(s.batch * 8 * 9 * 18, 48, -(2 ** -7), 2 ** -7), 'e5m2', 1);
    const wTiny16 = codes(uniform(16 * 8 * 9, 49, -(2 ** -7), 2 ** -7), 'e5m2', 1);
    assert.equal(run(tiny16, wTiny16, { accumulation: 'fp16' }).ran, false);
    assertSameBits(lowpConv2dForward(tiny16, wTiny16, s, { accumulation: 'fp16' }), lowpConv2dForward(tiny16, wTiny16, s, { accumulation: 'fp16' }, true), 'fp16 subnormal sums');
  });

  test('special values (NaN, infinities, subnormals, signed zeros), E4M3 against E5M2, and nearest output rounding keep the bits', () => {
    const s = geometry(2, 6, 9, 19, 10, 3, 3, 1, 1);
    const xs = uniform(s.batch * s.channels * s.height * s.width, 4, -3, 3);
    // E5M2's smallest subnormal, zeros of both signs, an infinity and a NaN among the inputs.
    xs[0] = 2 ** -16;
    xs[1] = -0;
    xs[5] = Infinity;
    xs[40] = NaN;
    xs[77] = -(2 ** -15);
    const ws = uniform(s.outChannels * s.channels * 9, 5, -1, 1);
    ws[3] = 0;
    ws[4] = -0;
    const x = codes(xs, 'e5m2', 1);
    const w = codes(ws, 'e4m3', 16);
    const dys = uniform(s.batch * s.outChannels * s.outH * s.outW, 6, -4, 4);
    dys[2] = -Infinity;
    dys[9] = 2 ** -16;
    const dy = codes(dys, 'e5m2', 1);
    for (const options of [{}, { output: { format: 'bf16' } }, { output: { format: 'e5m2', saturate: true } }]) {
      assertSameBits(lowpConv2dForward(x, w, s, options), lowpConv2dForward(x, w, s, options, true), `forward ${JSON.stringify(options)}`);
      assertSameBits(lowpConv2dBackwardData(dy, w, s, options), lowpConv2dBackwardData(dy, w, s, options, true), `input gradient ${JSON.stringify(options)}`);
      assertSameBits(lowpConv2dBackwardWeight(dy, x, s, options), lowpConv2dBackwardWeight(dy, x, s, options, true), `weight gradient ${JSON.stringify(options)}`);
    }
  });

  test('it stands aside where products are not exact, results are keyed by position, the stride is not 1, or the accumulator is an aligned one', () => {
    const s = geometry(1, 2, 5, 5, 3, 3, 3, 1, 1);
    const b = backend(false);
    assert.equal(directApplies(b, s, { rounding: 'stochastic' }), false);
    assert.equal(directApplies(b, s, { output: { format: 'e5m2', rounding: 'stochastic' } }), false);
    assert.equal(directApplies(b, s, { accumulation: 'hopper-fp8' }), false);
    assert.equal(directGradientApplies(b, { accumulation: 'hopper-fp8' }), false);
    assert.equal(directApplies(b, convGeometry([1, 2, 5, 5], [3, 2, 3, 3], { stride: 2, padding: 1 }), {}), false);
    assert.equal(directApplies(backend(true), s, {}), false);
    // float32 operands: their products are not exact in float32, so the GEMM path (unfused) keeps them.
    const floats = { kind: 'lowp' as const, op: uniform(2 * 25, 7) };
    const out = new Float32Array(3 * 25);
    const ran = directConvolution(1, 1, () => ({
      x: floats, w: { kind: 'lowp', op: uniform(3 * 18, 8) }, y: out,
      geometry: { channels: 2, height: 5, width: 5, outChannels: 3, kernelH: 3, kernelW: 3, padH: 1, padW: 1, outH: 5, outW: 5 }, xImageStride: 50, yImageStride: 75,
    }), out, {});
    assert.equal(ran, false);
    assert.ok(out.every((v) => v === 0), 'nothing written');
  });
});
