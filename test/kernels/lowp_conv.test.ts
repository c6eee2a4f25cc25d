/**
 * Low-precision convolution: the fast path equals the reference bit for bit in every
 * accumulation mode, and with fp32 accumulation of float32 operands it computes what the
 * float32 conv2d op and its autograd gradients compute.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../src/autograd/index.js';
import { encode } from '../../src/kernels/codec.js';
import { makeQTensor } from '../../src/formats/index.js';
import { convGeometry, type ConvGeometry } from '../../src/kernels/conv_geometry.js';
import { lowpConv2dBackwardData, lowpConv2dBackwardWeight, lowpConv2dForward } from '../../src/kernels/lowp_conv.js';
import { conv2d } from '../../src/ops/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { assertSameBits } from '../helpers/bits.js';
import { squareConv as shape } from '../helpers/tensors.js';
import { uniform } from '../helpers/random.js';


const SHAPES: Array<[string, ConvGeometry]> = [
  ['3x3 pad 1', shape(2, 3, 6, 4, 3, 1, 1, 1, 1)],
  ['stride 2', shape(2, 4, 7, 6, 3, 2, 1, 1, 1)],
  ['3x3 no padding', shape(2, 3, 6, 4, 3, 1, 0, 1, 1)],
  ['1x1', shape(2, 4, 5, 3, 1, 1, 0, 1, 1)],
  ['1x1 padding 1 (more than the kernel reaches)', shape(1, 2, 4, 3, 1, 1, 1, 1, 1)],
  ['dilation 2, groups 2', shape(1, 4, 8, 4, 3, 1, 2, 2, 2)],
  ['depthwise stride 2', shape(2, 3, 6, 3, 3, 2, 1, 1, 3)],
  // The input gradient of strided convolutions runs phase by phase (no dilated zeros): phases
  // without taps, even kernels, no padding, padding beyond the kernel's reach, stride 3.
  ['1x1 stride 2', shape(2, 4, 7, 5, 1, 2, 0, 1, 1)],
  ['3x3 stride 2 no padding', shape(2, 3, 8, 4, 3, 2, 0, 1, 1)],
  ['4x4 stride 2 pad 1', shape(1, 3, 9, 2, 4, 2, 1, 1, 1)],
  ['5x5 stride 2 pad 5', shape(1, 2, 5, 3, 5, 2, 5, 1, 1)],
  ['3x3 stride 3 pad 2, groups 2', shape(2, 4, 10, 6, 3, 3, 2, 1, 2)],
  ['1x1', shape(2, 5, 4, 3, 1, 1, 0, 1, 1)],
];

const MODES = [
  { accumulation: 'fp32' as const },
  { accumulation: 'e6m9' },
  { accumulation: 'e6m9', chunk: 5 },
  { accumulation: 'e6m9', rounding: 'stochastic' as const, seed: 9 },
  { accumulation: 'fp16', saturate: true },
];

describe('low-precision conv2d', () => {
  for (const [name, s] of SHAPES) {
    const cg = s.channels / s.groups;
    const xs = uniform(s.batch * s.channels * s.height * s.width, 1, -2, 2);
    const ws = uniform(s.outChannels * cg * s.kernelH * s.kernelW, 2, -1, 1);
    const dys = uniform(s.batch * s.outChannels * s.outH * s.outW, 3, -1, 1);
    const x = makeQTensor(encode(xs, 'e5m2'), 'e5m2', 4);
    const w = makeQTensor(encode(ws, 'e5m2'), 'e5m2', 8);
    const dy = makeQTensor(encode(dys, 'e5m2'), 'e5m2', 2);
    test(`${name}: forward and both gradients equal the reference bit for bit in every mode`, () => {
      for (const mode of MODES) {
        const label = JSON.stringify(mode);
        assertSameBits(lowpConv2dForward(x, w, s, mode), lowpConv2dForward(x, w, s, mode, true), `forward ${label}`);
        assertSameBits(lowpConv2dBackwardWeight(dy, x, s, mode), lowpConv2dBackwardWeight(dy, x, s, mode, true), `weight grad ${label}`);
        assertSameBits(lowpConv2dBackwardData(dy, w, s, mode), lowpConv2dBackwardData(dy, w, s, mode, true), `input grad ${label}`);
      }
    });

    test(`${name}: with fp32 accumulation it is the float32 convolution and its gradients`, () => {
      const xt = new Tensor(xs, [s.batch, s.channels, s.height, s.width]).requireGrad();
      const wt = new Tensor(ws, [s.outChannels, cg, s.kernelH, s.kernelW]).requireGrad();
      const y = conv2d(xt, wt, null, { stride: s.strideH, padding: s.padH, dilation: s.dilationH, groups: s.groups });
      backward(y, { gradient: new Tensor(dys, y.shape) });
      const close = (a: Float32Array, b: Float32Array, what: string) => {
        assert.equal(a.length, b.length, what);
        for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-4 * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
      };
      close(lowpConv2dForward(xs, ws, s), y.data, 'forward');
      close(lowpConv2dBackwardWeight(dys, xs, s), wt.grad!.data, 'weight grad');
      close(lowpConv2dBackwardData(dys, ws, s), xt.grad!.data, 'input grad');
    });
  }

  test('shapes that do not fit are refused', () => {
    const s = { ...SHAPES[0][1], groups: 2 };
    assert.throws(() => lowpConv2dForward(new Float32Array(1), new Float32Array(1), s), /3 input and 4 output channels are not both divisible by groups=2/);
    assert.throws(() => lowpConv2dForward(new Float32Array(5), new Float32Array(108), SHAPES[0][1]), /lowpGemm: x holds 5 values; expected 216/);
    // A 3x3 input, 3x3 kernel and padding 1 give a 3x3 output: an output of 5x5 is refused, not 25 values.
    const g = convGeometry([1, 1, 3, 3], [1, 1, 3, 3], { padding: 1 });
    const wrong = { ...g, outH: 5, outW: 5 };
    for (const run of [
      () => lowpConv2dForward(new Float32Array(9), new Float32Array(9), wrong),
      () => lowpConv2dBackwardWeight(new Float32Array(25), new Float32Array(9), wrong),
      () => lowpConv2dBackwardData(new Float32Array(25), new Float32Array(9), wrong),
    ]) assert.throws(run, /output 5x5 does not match the geometry .* gives 3x3/);
    assert.equal(lowpConv2dForward(new Float32Array(9), new Float32Array(9), g).length, 9);
  });
});
