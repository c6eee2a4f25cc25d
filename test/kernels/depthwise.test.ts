import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  convGeometry, depthwiseForward, depthwiseForwardReference, depthwiseGeometry, depthwiseInputGradient, depthwiseInputGradientReference,
  depthwiseWeightGradient, depthwiseWeightGradientReference, isDepthwise, nativeCore, setKernelThreads, kernelThreads, type ConvOptions,
} from '../../src/kernels/index.js';
import { conv2d, conv2dGradients } from '../../src/ops/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { assertSameBits } from '../helpers/bits.js';
import { uniform } from '../helpers/random.js';

/** Depthwise cases: [batch, channels, height, width, kernel, options]. */
const CASES: [number, number, number, number, [number, number], ConvOptions][] = [
  [2, 3, 7, 7, [3, 3], { padding: 1 }],
  [2, 4, 9, 8, [3, 3], { stride: 2, padding: 1 }],
  [1, 5, 6, 11, [5, 5], { padding: 2 }],
  [3, 2, 10, 10, [3, 3], { stride: 2, padding: 0 }],
  [2, 3, 9, 9, [3, 3], { padding: 2, dilation: 2 }],
  [2, 6, 5, 7, [1, 3], { stride: [1, 2], padding: [0, 1] }],
  [4, 16, 4, 4, [3, 3], { padding: 1 }],
  [4, 24, 2, 2, [3, 3], { padding: 1 }],
];

function geometryOf([n, c, h, w, [kh, kw], options]: (typeof CASES)[number]) {
  return convGeometry([n, c, h, w], [c, 1, kh, kw], { ...options, groups: c }, 'test');
}

/** The column path's values: each channel as its own one-channel convolution (groups = 1, direct). */
function perChannel(x: Float32Array, w: Float32Array, dy: Float32Array, [n, c, h, wd, [kh, kw], options]: (typeof CASES)[number]) {
  const g = geometryOf([n, c, h, wd, [kh, kw], options]);
  const plane = h * wd, out = g.outH * g.outW, taps = kh * kw;
  const y = new Float32Array(n * c * out), gx = new Float32Array(n * c * plane), gw = new Float32Array(c * taps);
  for (let ch = 0; ch < c; ch++) {
    const xc = new Float32Array(n * plane), dyc = new Float32Array(n * out);
    for (let b = 0; b < n; b++) {
      xc.set(x.subarray((b * c + ch) * plane, (b * c + ch + 1) * plane), b * plane);
      dyc.set(dy.subarray((b * c + ch) * out, (b * c + ch + 1) * out), b * out);
    }
    const wc = w.slice(ch * taps, (ch + 1) * taps);
    const yc = conv2d(new Tensor(xc, [n, 1, h, wd]), new Tensor(wc, [1, 1, kh, kw]), null, { ...options, algorithm: 'direct' }).data;
    const gc = convGeometry([n, 1, h, wd], [1, 1, kh, kw], options, 'test');
    const grads = conv2dGradients({ g: dyc, x: xc, weight: wc, geometry: gc, algorithm: 'direct' });
    for (let b = 0; b < n; b++) {
      y.set(yc.subarray(b * out, (b + 1) * out), (b * c + ch) * out);
      gx.set(grads.gx!.subarray(b * plane, (b + 1) * plane), (b * c + ch) * plane);
    }
    gw.set(grads.gw!, ch * taps);
  }
  return { y, gx, gw };
}

describe('depthwise convolution kernels', () => {
  test('the geometry test: only one channel in and one out per group', () => {
    assert.ok(isDepthwise(convGeometry([1, 4, 5, 5], [4, 1, 3, 3], { groups: 4 }, 't')));
    assert.ok(!isDepthwise(convGeometry([1, 4, 5, 5], [8, 1, 3, 3], { groups: 4 }, 't')), 'a channel multiplier of 2');
    assert.ok(!isDepthwise(convGeometry([1, 4, 5, 5], [4, 2, 3, 3], { groups: 2 }, 't')));
    assert.ok(!isDepthwise(convGeometry([1, 1, 5, 5], [1, 1, 3, 3], {}, 't')), 'one channel, groups 1: the ordinary path');
  });

  test('the references against float64 sums (an independent check of what they compute)', () => {
    for (const c of CASES) {
      const g = geometryOf(c);
      const geo = depthwiseGeometry(g);
      const [n, ch, h, w, [kh, kw]] = c;
      const x = uniform(n * ch * h * w, 1), wt = uniform(ch * kh * kw, 2), dy = uniform(n * ch * g.outH * g.outW, 3);
      const y = new Float32Array(n * ch * g.outH * g.outW), gx = new Float32Array(x.length), gw = new Float32Array(wt.length);
      depthwiseForwardReference(x, wt, y, geo, n);
      depthwiseInputGradientReference(dy, wt, gx, geo, n);
      depthwiseWeightGradientReference(dy, x, gw, geo, n);
      const ey = new Float64Array(y.length), egx = new Float64Array(gx.length), egw = new Float64Array(gw.length);
      for (let b = 0; b < n; b++) for (let k = 0; k < ch; k++) for (let oh = 0; oh < g.outH; oh++) for (let ow = 0; ow < g.outW; ow++) {
        for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
          const ih = oh * g.strideH - g.padH + i * g.dilationH, iw = ow * g.strideW - g.padW + j * g.dilationW;
          if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
          const o = ((b * ch + k) * g.outH + oh) * g.outW + ow, xi = ((b * ch + k) * h + ih) * w + iw, t = (k * kh + i) * kw + j;
          ey[o] += wt[t] * x[xi];
          egx[xi] += wt[t] * dy[o];
          egw[t] += dy[o] * x[xi];
        }
      }
      for (const [got, want, what] of [[y, ey, 'y'], [gx, egx, 'gx'], [gw, egw, 'gw']] as const) {
        for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `${what}[${i}] ${got[i]} vs ${want[i]}`);
      }
    }
  });

  test('native kernels equal the references bit for bit on 1 and 2 threads', { skip: nativeCore() ? false : 'native core not built' }, () => {
    const saved = kernelThreads();
    try {
      for (const threads of [1, 2]) {
        setKernelThreads(threads);
        for (const c of CASES) {
          const g = geometryOf(c);
          const geo = depthwiseGeometry(g);
          const [n, ch, h, w, [kh, kw]] = c;
          const x = uniform(n * ch * h * w, 4), wt = uniform(ch * kh * kw, 5), dy = uniform(n * ch * g.outH * g.outW, 6);
          const run = (fwd: typeof depthwiseForward, inp: typeof depthwiseInputGradient, wg: typeof depthwiseWeightGradient) => {
            const y = new Float32Array(dy.length), gx = new Float32Array(x.length), gw = new Float32Array(wt.length);
            fwd(x, wt, y, geo, n);
            inp(dy, wt, gx, geo, n);
            wg(dy, x, gw, geo, n);
            return { y, gx, gw };
          };
          const fast = run(depthwiseForward, depthwiseInputGradient, depthwiseWeightGradient);
          const ref = run(depthwiseForwardReference, depthwiseInputGradientReference, depthwiseWeightGradientReference);
          for (const k of ['y', 'gx', 'gw'] as const) assertSameBits(fast[k], ref[k], `${k} of ${JSON.stringify(c)} on ${threads} threads`);
        }
      }
    } finally {
      setKernelThreads(saved);
    }
  });

  test('conv2d and its gradients on a depthwise layer give the column path\'s values bit for bit', () => {
    for (const c of CASES) {
      const g = geometryOf(c);
      const [n, ch, h, w, [kh, kw], options] = c;
      const x = uniform(n * ch * h * w, 7), wt = uniform(ch * kh * kw, 8), dy = uniform(n * ch * g.outH * g.outW, 9);
      const want = perChannel(x, wt, dy, c);
      const y = conv2d(new Tensor(x, [n, ch, h, w]), new Tensor(wt, [ch, 1, kh, kw]), null, { ...options, groups: ch, algorithm: 'winograd' }).data;
      const grads = conv2dGradients({ g: dy, x, weight: wt, geometry: g, algorithm: 'winograd' });
      assertSameBits(y, want.y, `y of ${JSON.stringify(c)}`);
      assertSameBits(grads.gx!, want.gx, `gx of ${JSON.stringify(c)}`);
      assertSameBits(grads.gw!, want.gw, `gw of ${JSON.stringify(c)}`);
    }
  });
});
