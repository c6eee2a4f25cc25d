import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { convGeometry, type ConvOptions } from '../../src/kernels/conv_geometry.js';
import { nativeCore, type NativeWinograd } from '../../src/kernels/native.js';
import {
  winogradForward, winogradForwardReference, winogradPlan, winogradWeightGradient, winogradWeightGradientReference, type WinogradPlan,
} from '../../src/kernels/winograd.js';
import { uniform, xorshift } from '../helpers/random.js';

/** A case: a Winograd plan's sizes (as the addon takes them), and the images' channel counts as stored. */
type Case = Pick<NativeWinograd, 'tile' | 'batch' | 'channels' | 'height' | 'width' | 'outChannels' | 'padH' | 'padW'> & {
  /** Channels per image as stored (>= channels: the case reads a group's slice). */
  xChannels?: number;
  yChannels?: number;
};

// Tiles that fit the output and tiles that overhang it, padding 0 to 2, channel counts that fill
// no panel of 16 or 32, one image and several, a group's slice of wider images.
const CASES: Case[] = [
  { tile: 2, batch: 2, channels: 5, height: 7, width: 9, outChannels: 6, padH: 1, padW: 1 },
  { tile: 4, batch: 2, channels: 5, height: 7, width: 9, outChannels: 6, padH: 1, padW: 1 },
  { tile: 2, batch: 3, channels: 40, height: 8, width: 8, outChannels: 33, padH: 1, padW: 1 },
  { tile: 4, batch: 3, channels: 40, height: 8, width: 8, outChannels: 33, padH: 0, padW: 0 },
  { tile: 4, batch: 1, channels: 3, height: 5, width: 4, outChannels: 2, padH: 2, padW: 2 },
  { tile: 2, batch: 1, channels: 17, height: 3, width: 3, outChannels: 70, padH: 0, padW: 2 },
  { tile: 4, batch: 4, channels: 33, height: 13, width: 6, outChannels: 20, padH: 1, padW: 0 },
  { tile: 2, batch: 2, channels: 16, height: 10, width: 11, outChannels: 24, padH: 1, padW: 1, xChannels: 48, yChannels: 40 },
  // More input channels than one k block of the micro-kernel (384): the products' chains go on
  // across blocks; more output channels than one row panel; a 1x2 output.
  { tile: 2, batch: 2, channels: 400, height: 4, width: 4, outChannels: 30, padH: 1, padW: 1 },
  { tile: 4, batch: 1, channels: 20, height: 3, width: 4, outChannels: 50, padH: 0, padW: 0 },
  // Rows wider than one 16-column turn of the weight gradient's channel-last rows, channel counts
  // past a 16-channel chunk, tile rows split between groups of tiles.
  { tile: 4, batch: 3, channels: 17, height: 9, width: 37, outChannels: 19, padH: 1, padW: 2 },
  { tile: 2, batch: 2, channels: 35, height: 6, width: 33, outChannels: 16, padH: 2, padW: 1 },
];

function sizes(c: Case) {
  const outH = c.height + 2 * c.padH - 2, outW = c.width + 2 * c.padW - 2;
  const xStride = (c.xChannels ?? c.channels) * c.height * c.width;
  const yStride = (c.yChannels ?? c.outChannels) * outH * outW;
  return { outH, outW, xStride, yStride, xLength: c.batch * xStride, yLength: c.batch * yStride, wLength: c.outChannels * c.channels * 9 };
}

function shapeOf(c: Case): WinogradPlan {
  const s = sizes(c);
  const geometry = convGeometry([c.batch, c.channels, c.height, c.width], [c.outChannels, c.channels, 3, 3], { padding: [c.padH, c.padW] });
  return { tile: c.tile, geometry, xImageStride: s.xStride, yImageStride: s.yStride };
}

/**
 * The direct cross-correlation in double precision, written out independently, and the sum of the
 * terms' magnitudes of each output (the scale of its rounding error).
 */
function directForward(c: Case, x: Float32Array, w: Float32Array): { y: Float64Array; bound: Float64Array } {
  const s = sizes(c);
  const y = new Float64Array(s.yLength), bound = new Float64Array(s.yLength);
  for (let n = 0; n < c.batch; n++) {
    for (let k = 0; k < c.outChannels; k++) {
      for (let oy = 0; oy < s.outH; oy++) {
        for (let ox = 0; ox < s.outW; ox++) {
          let sum = 0, mag = 0;
          for (let ch = 0; ch < c.channels; ch++) {
            for (let a = 0; a < 3; a++) {
              for (let b = 0; b < 3; b++) {
                const iy = oy + a - c.padH, ix = ox + b - c.padW;
                if (iy < 0 || iy >= c.height || ix < 0 || ix >= c.width) continue;
                const term = w[((k * c.channels + ch) * 3 + a) * 3 + b] * x[n * s.xStride + (ch * c.height + iy) * c.width + ix];
                sum += term;
                mag += Math.abs(term);
              }
            }
          }
          const at = n * s.yStride + (k * s.outH + oy) * s.outW + ox;
          y[at] = sum;
          bound[at] = mag;
        }
      }
    }
  }
  return { y, bound };
}

function directWeightGradient(c: Case, x: Float32Array, dy: Float32Array): { dw: Float64Array; bound: Float64Array } {
  const s = sizes(c);
  const dw = new Float64Array(s.wLength), bound = new Float64Array(s.wLength);
  for (let k = 0; k < c.outChannels; k++) {
    for (let ch = 0; ch < c.channels; ch++) {
      for (let a = 0; a < 3; a++) {
        for (let b = 0; b < 3; b++) {
          let sum = 0, mag = 0;
          for (let n = 0; n < c.batch; n++) {
            for (let oy = 0; oy < s.outH; oy++) {
              for (let ox = 0; ox < s.outW; ox++) {
                const iy = oy + a - c.padH, ix = ox + b - c.padW;
                if (iy < 0 || iy >= c.height || ix < 0 || ix >= c.width) continue;
                const term = dy[n * s.yStride + (k * s.outH + oy) * s.outW + ox] * x[n * s.xStride + (ch * c.height + iy) * c.width + ix];
                sum += term;
                mag += Math.abs(term);
              }
            }
          }
          const at = ((k * c.channels + ch) * 3 + a) * 3 + b;
          dw[at] = sum;
          bound[at] = mag;
        }
      }
    }
  }
  return { dw, bound };
}

/** Every element within tol * bound (+ a floor for outputs whose terms all vanish). */
function assertWithin(got: Float32Array | Float64Array, want: Float64Array, bound: Float64Array, tol: number, what: string, only?: (i: number) => boolean): void {
  for (let i = 0; i < want.length; i++) {
    if (only && !only(i)) continue;
    const err = Math.abs(got[i] - want[i]);
    assert.ok(err <= tol * bound[i] + 1e-30, `${what}: element ${i} is ${got[i]}, direct ${want[i]} (error ${err}, bound ${tol * bound[i]})`);
  }
}

/** Whether element i of an output with the case's strides lies in the case's own channels. */
function inOutput(c: Case): (i: number) => boolean {
  const s = sizes(c);
  return (i) => i % s.yStride < c.outChannels * s.outH * s.outW;
}

// Float32 error of the transforms relative to the terms' magnitudes: the input and output
// transforms add up to 4 (m = 2) or 100 (m = 4) scaled terms, on top of the product's own chain.
const TOLERANCE = { 2: 1e-5, 4: 1e-4 } as const;

describe('Winograd references (double precision) against the direct convolution', () => {
  for (const c of CASES) {
    test(`F(${c.tile}x${c.tile},3x3) ${c.batch}x${c.channels}x${c.height}x${c.width} -> ${c.outChannels}, padding ${c.padH},${c.padW}`, () => {
      const s = sizes(c);
      const x = uniform(s.xLength, 11), w = uniform(s.wLength, 12), dy = uniform(s.yLength, 13);
      const want = directForward(c, x, w);
      const y = new Float32Array(s.yLength).fill(7);
      winogradForwardReference(x, w, y, shapeOf(c));
      // The reference rounds only its results to float32.
      assertWithin(y, want.y, want.bound, 1e-6, 'forward', inOutput(c));
      if (c.yChannels) for (let i = 0; i < y.length; i++) if (!inOutput(c)(i)) assert.equal(y[i], 7, 'other channels untouched');
      const wantDw = directWeightGradient(c, x, dy);
      const dw = new Float32Array(s.wLength);
      winogradWeightGradientReference(x, dy, dw, shapeOf(c));
      assertWithin(dw, wantDw.dw, wantDw.bound, 1e-6, 'weight gradient');
    });
  }
});

describe('Winograd native kernels', { skip: nativeCore() ? false : 'the native addon is not built' }, () => {
  for (const c of CASES) {
    test(`F(${c.tile}x${c.tile},3x3) ${c.batch}x${c.channels}x${c.height}x${c.width} -> ${c.outChannels}: direct to float32 error, the same bits on 1, 2 and 3 threads`, () => {
      const s = sizes(c);
      const x = uniform(s.xLength, 21), w = uniform(s.wLength, 22), dy = uniform(s.yLength, 23);
      const want = directForward(c, x, w);
      const y1 = new Float32Array(s.yLength).fill(7), y2 = new Float32Array(s.yLength).fill(7), y3 = new Float32Array(s.yLength).fill(7);
      winogradForward(x, w, y1, shapeOf(c), 1);
      winogradForward(x, w, y2, shapeOf(c), 2);
      winogradForward(x, w, y3, shapeOf(c), 3);
      assertWithin(y1, want.y, want.bound, TOLERANCE[c.tile], 'forward', inOutput(c));
      assert.deepEqual(y2, y1);
      assert.deepEqual(y3, y1);
      if (c.yChannels) for (let i = 0; i < y1.length; i++) if (!inOutput(c)(i)) assert.equal(y1[i], 7, 'other channels untouched');
      const wantDw = directWeightGradient(c, x, dy);
      const dw1 = new Float32Array(s.wLength).fill(NaN), dw2 = new Float32Array(s.wLength).fill(NaN), dw3 = new Float32Array(s.wLength).fill(NaN);
      winogradWeightGradient(x, dy, dw1, shapeOf(c), 1);
      winogradWeightGradient(x, dy, dw2, shapeOf(c), 2);
      winogradWeightGradient(x, dy, dw3, shapeOf(c), 3);
      assertWithin(dw1, wantDw.dw, wantDw.bound, TOLERANCE[c.tile], 'weight gradient');
      assert.deepEqual(dw2, dw1);
      assert.deepEqual(dw3, dw1);
    });
  }

  for (const tile of [2, 4] as const) {
    test(`F(${tile}x${tile},3x3) flipped: the forward's weights read as the input gradient's kernel (rotated, channels swapped)`, () => {
      const c: Case = { tile, batch: 2, channels: 24, height: 9, width: 8, outChannels: 40, padH: 1, padW: 1 };
      const s = sizes(c);
      const x = uniform(s.xLength, 51);
      // w holds a convolution from 40 to 24 channels: [24][40][3][3].
      const w = uniform(s.wLength, 52);
      const rotated = new Float32Array(s.wLength);
      for (let k = 0; k < c.outChannels; k++) {
        for (let ch = 0; ch < c.channels; ch++) {
          for (let t = 0; t < 9; t++) rotated[(k * c.channels + ch) * 9 + t] = w[(ch * c.outChannels + k) * 9 + 8 - t];
        }
      }
      const want = directForward(c, x, rotated);
      const y = new Float32Array(s.yLength), yRef = new Float32Array(s.yLength);
      winogradForward(x, w, y, { ...shapeOf(c), flipped: true });
      winogradForwardReference(x, w, yRef, { ...shapeOf(c), flipped: true });
      assertWithin(y, want.y, want.bound, TOLERANCE[tile], 'flipped forward');
      assertWithin(yRef, want.y, want.bound, 1e-6, 'flipped reference');
      const plain = new Float32Array(s.yLength);
      winogradForward(x, rotated, plain, shapeOf(c));
      assert.deepEqual(y, plain, 'the same transformed kernels as from the rotated copy');
    });
  }

  test('40 random shapes (sizes 1 to 12, padding 0 to 2, 1 to 40 channels) match the direct convolution', () => {
    const next = xorshift(77);
    const pick = (lo: number, hi: number) => lo + (next() % (hi - lo + 1));
    let ran = 0;
    while (ran < 40) {
      const c: Case = {
        tile: next() % 2 ? 4 : 2, batch: pick(1, 3), channels: pick(1, 40), height: pick(1, 12), width: pick(1, 12), outChannels: pick(1, 40), padH: pick(0, 2), padW: pick(0, 2),
      };
      if (c.height + 2 * c.padH < 3 || c.width + 2 * c.padW < 3) continue;
      ran++;
      const s = sizes(c);
      const x = uniform(s.xLength, ran), w = uniform(s.wLength, ran + 100), dy = uniform(s.yLength, ran + 200);
      const want = directForward(c, x, w);
      const y = new Float32Array(s.yLength);
      winogradForward(x, w, y, shapeOf(c));
      assertWithin(y, want.y, want.bound, TOLERANCE[c.tile], `forward ${JSON.stringify(c)}`);
      const wantDw = directWeightGradient(c, x, dy);
      const dw = new Float32Array(s.wLength);
      winogradWeightGradient(x, dy, dw, shapeOf(c));
      assertWithin(dw, wantDw.dw, wantDw.bound, TOLERANCE[c.tile], `weight gradient ${JSON.stringify(c)}`);
    }
  });

  test('a layer large enough for several blocks of tiles per thread matches the reference', () => {
    const c: Case = { tile: 4, batch: 6, channels: 48, height: 20, width: 20, outChannels: 40, padH: 1, padW: 1 };
    const s = sizes(c);
    const x = uniform(s.xLength, 31), w = uniform(s.wLength, 32), dy = uniform(s.yLength, 33);
    const want = directForward(c, x, w);
    const y = new Float32Array(s.yLength);
    winogradForward(x, w, y, shapeOf(c));
    assertWithin(y, want.y, want.bound, TOLERANCE[4], 'forward');
    const wantDw = directWeightGradient(c, x, dy);
    const dw = new Float32Array(s.wLength);
    winogradWeightGradient(x, dy, dw, shapeOf(c));
    assertWithin(dw, wantDw.dw, wantDw.bound, TOLERANCE[4], 'weight gradient');
  });
});

describe('Winograd arguments', () => {
  const plan = (tile: 2 | 4, height: number, options: ConvOptions): WinogradPlan => ({ tile, geometry: convGeometry([1, 2, height, 4], [2, 2, 3, 3], options) });
  const base = plan(2, 4, { padding: 1 });
  const x = new Float32Array(32), w = new Float32Array(36), y = new Float32Array(32);
  test('a tile other than 2 or 4, padding past 2, or short arrays are refused with what was wrong', () => {
    assert.throws(() => winogradForward(x, w, y, { ...base, tile: 3 as 2 }), /tile 3; expected 2 or 4/);
    assert.throws(() => winogradForward(x, w, y, plan(2, 4, { padding: 3 })), /padding 3,3; expected 0, 1 or 2/);
    assert.throws(() => winogradForward(x.subarray(1), w, y, base), /x has 31 elements; the shape needs 32/);
    assert.throws(() => winogradWeightGradient(x, y, w.subarray(2), base), /dw has 34 elements; the shape needs 36/);
    assert.throws(() => winogradForward(x, w, y, { ...base, geometry: { ...base.geometry, height: 1 } }), /output 4x4 does not match the geometry/);
    assert.throws(() => winogradForward(x, w, y, { ...base, xImageStride: 8 }), /image strides 8, 32 are smaller than an image/);
    assert.throws(() => winogradWeightGradient(x, y, w, { ...base, flipped: true }), /flipped kernels are for the forward only/);
  });

  test('OCTET_CONV sets the default algorithm, read when asked, and names what it accepts', () => {
    const script = (value: string) =>
      `process.env.OCTET_CONV = ${JSON.stringify(value)}; const m = await import(${JSON.stringify(new URL('../../src/kernels/winograd.ts', import.meta.url).href)}); ` +
      `try { console.log(m.defaultConvAlgorithm()); } catch (e) { console.log(e.message); }`;
    const run = (value: string) =>
      execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(value)], { encoding: 'utf8' }).trim();
    assert.equal(run('direct'), 'direct');
    assert.equal(run('winograd'), 'winograd');
    assert.equal(run(''), 'winograd');
    assert.match(run('fast'), /OCTET_CONV is "fast"; expected "winograd" \(the default\) or "direct"/);
  });

  test('winogradPlan: only 3x3 kernels at stride 1 and dilation 1 with 16 or more channels per group; 4x4 tiles from 8x8 outputs; none when direct', () => {
    const tile = (size: [number, number], options: ConvOptions = { padding: 1 }, channels = 64, outChannels = 64, kernel = 3) =>
      winogradPlan(convGeometry([2, channels, ...size], [outChannels, channels / (options.groups ?? 1), kernel, kernel], options), 'winograd')?.tile ?? 0;
    if (!nativeCore()) {
      assert.equal(tile([32, 32]), 0, 'no addon: the direct product');
      return;
    }
    assert.equal(tile([32, 32]), 4);
    assert.equal(tile([8, 8]), 4);
    assert.equal(tile([4, 4]), 2);
    assert.equal(tile([4, 40]), 2, 'the shorter side decides');
    assert.equal(tile([32, 32], { padding: 1, stride: 2 }), 0);
    assert.equal(tile([32, 32], { padding: 2 }, 64, 64, 5), 0);
    assert.equal(tile([32, 32], { padding: 2, dilation: 2 }), 0);
    assert.equal(tile([32, 32], { padding: 1 }, 3), 0);
    assert.equal(tile([32, 32], { padding: 1 }, 64, 8), 0);
    assert.equal(tile([32, 32], { padding: 1, groups: 8 }), 0, '8 channels per group');
    assert.equal(tile([32, 32], { padding: 1, groups: 2 }), 4);
    const plan = winogradPlan(convGeometry([2, 64, 32, 32], [64, 32, 3, 3], { padding: 1, groups: 2 }), 'winograd')!;
    assert.deepEqual([plan.geometry.channels, plan.geometry.outChannels, plan.geometry.groups, plan.xImageStride, plan.yImageStride], [32, 32, 1, 64 * 32 * 32, 64 * 32 * 32]);
    assert.equal(winogradPlan(convGeometry([2, 64, 32, 32], [64, 64, 3, 3], { padding: 1 }), 'direct'), null, 'direct');
  });
});
