/** The native elementwise and per-channel kernels equal their TypeScript references bit for bit. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveFormat } from '../../src/formats/index.js';
import * as k from '../../src/kernels/elementwise.js';
import { dequantize, encodeScaled } from '../../src/kernels/index.js';
import { uniform } from '../helpers/random.js';

const shape = { batch: 6, channels: 5, plane: 37 * 41 };
const size = shape.batch * shape.channels * shape.plane;

function same(a: Float32Array | Float64Array, b: Float32Array | Float64Array, what: string): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

describe('elementwise kernels', () => {
  const x = uniform(size, 1, -3, 3);
  const g = uniform(size, 2, -1, 1);
  const y = uniform(size, 3, -1, 1);

  test('relu forward and backward, add', () => {
    const a = new Float32Array(size);
    const b = new Float32Array(size);
    const maskA = new Uint8Array(k.maskBytes(size)).fill(0xff);
    const maskB = new Uint8Array(k.maskBytes(size));
    k.reluForward(x, a, maskA);
    k.reluForwardReference(x, b, maskB);
    same(a, b, 'relu');
    assert.deepEqual(maskA, maskB, 'relu mask');
    for (const i of [0, 1, 7, 8, 1000, size - 1]) assert.equal((maskA[i >> 3] >> (i & 7)) & 1, x[i] > 0 ? 1 : 0, `mask bit ${i}`);
    k.reluBackward(maskA, g, a);
    k.reluBackwardReference(maskB, g, b);
    same(a, b, 'relu backward');
    for (let i = 0; i < size; i++) if (!Object.is(a[i], x[i] > 0 ? g[i] : 0)) assert.fail(`relu backward [${i}]`);
    k.addArrays(x, y, a);
    k.addArraysReference(x, y, b);
    same(a, b, 'add');
  });

  test('zeroWhere: float32, 16- and 8-bit codes, across thread slices; NaN and -0 cleared where pruned, kept elsewhere; a wrong mask refused', () => {
    const n = 3 * 65536 + 77;
    const keep = Uint8Array.from({ length: n }, (_, i) => (i % 7 === 3 || i % 11 === 0 ? 1 : 0));
    const values = uniform(n, 9, -1, 1);
    values[0] = NaN;
    values[1] = -0;
    values[3] = -0;
    for (const make of [(v: Float32Array) => Float32Array.from(v), (v: Float32Array) => Uint16Array.from(v, (x) => Math.abs(x * 60000) | 1), (v: Float32Array) => Uint8Array.from(v, (x) => Math.abs(x * 250) | 1)]) {
      const a = make(values), b = make(values), before = make(values);
      k.zeroWhere(a, keep);
      k.zeroWhereReference(b, keep);
      for (let i = 0; i < n; i++) {
        if (!Object.is(a[i], b[i])) assert.fail(`[${i}]: ${a[i]} vs ${b[i]}`);
        if (!Object.is(a[i], keep[i] ? before[i] : 0)) assert.fail(`[${i}] kept ${keep[i]}: ${a[i]} from ${before[i]}`);
      }
    }
    assert.throws(() => k.zeroWhere(new Float32Array(4), new Uint8Array(3)), /keep has 3 entries; expected one per value, 4/);
  });

  test('relu at lengths with every tail (past thread chunks too), NaN and signed zeros', () => {
    for (const n of [4096 + 13, 4096 + 7, 65536 + 9, 2 * 65536 + 15]) {
      const v = uniform(n, n, -1, 1);
      v[3] = NaN;
      v[5] = -0;
      v[n - 1] = 0;
      v[n - 2] = NaN;
      const out = [new Float32Array(n), new Float32Array(n)];
      const masks = [new Uint8Array(k.maskBytes(n)).fill(0xff), new Uint8Array(k.maskBytes(n)).fill(0xff)];
      k.reluForward(v, out[0], masks[0]);
      k.reluForwardReference(v, out[1], masks[1]);
      same(out[0], out[1], `relu ${n}`);
      assert.deepEqual(masks[0], masks[1], `relu mask ${n}`);
      k.reluBackward(masks[0], v, out[0]);
      k.reluBackwardReference(masks[1], v, out[1]);
      same(out[0], out[1], `relu backward ${n}`);
    }
  });

  test('per-channel sums on planes of every remainder mod 8 equal the references (lane order)', () => {
    for (const plane of [4096, 4099, 4103, 1025]) {
      const s = { batch: 3, channels: 2, plane };
      const v = uniform(s.batch * s.channels * plane, plane, -2, 5);
      const w = uniform(v.length, plane + 1, -1, 1);
      const [m0, v0, m1, v1] = [0, 1, 2, 3].map(() => new Float64Array(2));
      k.channelMeanVar(v, s, m0, v0);
      k.channelMeanVarReference(v, s, m1, v1);
      same(m0, m1, 'mean');
      same(v0, v1, 'variance');
      same(k.channelSum(v, s), (() => { const r = new Float64Array(2); k.channelSumReference(v, s, r); return r; })(), 'channel sum');
      const [g0, gx0, g1, gx1] = [0, 1, 2, 3].map(() => new Float64Array(2));
      const out = [new Float32Array(v.length), new Float32Array(v.length)];
      const inv = Float32Array.of(0.5, 2);
      k.batchNormBackward(w, v, inv, null, true, out[0], g0, gx0, s);
      k.batchNormBackwardReference(w, v, inv, null, true, out[1], g1, gx1, s);
      same(g0, g1, 'sumG');
      same(gx0, gx1, 'sumGX');
      same(out[0], out[1], 'gx');
    }
  });

  test('AdamW moments and step equal the references bit for bit (past thread chunks, tiny and huge values)', () => {
    const n = 2 * 65536 + 77;
    const g = uniform(n, 11, -1, 1).map((v, i) => (i % 7 === 0 ? v * 1e-30 : i % 11 === 0 ? v * 1e20 : v));
    const m = [uniform(n, 12, -0.1, 0.1), null as unknown as Float32Array];
    const v = [uniform(n, 13, 0, 0.01), null as unknown as Float32Array];
    const p = [uniform(n, 14, -1, 1), null as unknown as Float32Array];
    m[1] = m[0].slice();
    v[1] = v[0].slice();
    p[1] = p[0].slice();
    k.adamwMoments(m[0], v[0], g, 0.9, 0.999);
    k.adamwMomentsReference(m[1], v[1], g, 0.9, 0.999);
    same(m[0], m[1], 'exp_avg');
    same(v[0], v[1], 'exp_avg_sq');
    k.adamwApply(p[0], m[0], v[0], 1 - 1e-3 * 0.01, 1e-3 / 0.1, Math.sqrt(1 - 0.999), 1e-8);
    k.adamwApplyReference(p[1], m[1], v[1], 1 - 1e-3 * 0.01, 1e-3 / 0.1, Math.sqrt(1 - 0.999), 1e-8);
    same(p[0], p[1], 'param');
    assert.throws(() => k.adamwMoments(m[0], v[0].subarray(1), g, 0.9, 0.999), /arrays differ in length/);
  });

  test('masked AdamW: the kept entries as the two halves compute them, the others untouched (runs of pruned entries, tails, past thread chunks)', () => {
    const n = 2 * 65536 + 77;
    const g = uniform(n, 21, -1, 1).map((v, i) => (i % 7 === 0 ? v * 1e-30 : i % 11 === 0 ? v * 1e20 : v));
    // Kept in runs of 8 (blocks) and singly, pruned in long runs; the last entries kept.
    const keep = Uint8Array.from({ length: n }, (_, i) => (Math.floor(i / 8) % 10 === 3 || i % 97 === 5 || i > n - 4 ? 1 : 0));
    const start = { m: uniform(n, 22, -0.1, 0.1), v: uniform(n, 23, 0, 0.01), p: uniform(n, 24, -1, 1) };
    const args = [0.9, 0.999, 1 - 1e-3 * 0.01, 1e-3 / 0.1, Math.sqrt(1 - 0.999), 1e-8] as const;
    const native = { m: start.m.slice(), v: start.v.slice(), p: start.p.slice() };
    const reference = { m: start.m.slice(), v: start.v.slice(), p: start.p.slice() };
    k.adamwMasked(native.p, native.m, native.v, g, keep, ...args);
    k.adamwMaskedReference(reference.p, reference.m, reference.v, g, keep, ...args);
    // What the full update gives (adamwMoments then adamwApply), at the kept entries.
    const full = { m: start.m.slice(), v: start.v.slice(), p: start.p.slice() };
    k.adamwMoments(full.m, full.v, g, args[0], args[1]);
    k.adamwApply(full.p, full.m, full.v, args[2], args[3], args[4], args[5]);
    for (const key of ['m', 'v', 'p'] as const) {
      same(native[key], reference[key], `native vs reference ${key}`);
      const want = start[key].map((x, i) => (keep[i] ? full[key][i] : x));
      same(native[key], want, `kept entries as the full update, the others as they were: ${key}`);
    }
    assert.throws(() => k.adamwMasked(native.p, native.m, native.v, g, keep.subarray(1), ...args), /keep has 131148 entries; p has 131149/);
  });

  test('channel bias and channel sums', () => {
    const bias = uniform(shape.channels, 4);
    const a = Float32Array.from(x);
    const b = Float32Array.from(x);
    k.channelBiasAdd(a, bias, shape);
    k.channelBiasAddReference(b, bias, shape);
    same(a, b, 'bias');
    const sums = new Float64Array(shape.channels);
    k.channelSumReference(g, shape, sums);
    same(k.channelSum(g, shape), sums, 'channel sums');
  });

  test('batch normalization forward and backward, training and eval', () => {
    const mean = [new Float64Array(shape.channels), new Float64Array(shape.channels)];
    const variance = [new Float64Array(shape.channels), new Float64Array(shape.channels)];
    k.channelMeanVar(x, shape, mean[0], variance[0]);
    k.channelMeanVarReference(x, shape, mean[1], variance[1]);
    same(mean[0], mean[1], 'mean');
    same(variance[0], variance[1], 'variance');
    const invStd = Float32Array.from(variance[0], (v) => 1 / Math.sqrt(v + 1e-5));
    const gamma = uniform(shape.channels, 5, 0.5, 1.5);
    const beta = uniform(shape.channels, 6);
    for (const affine of [true, false]) {
      const outs = [0, 1].map(() => ({ xhat: new Float32Array(size), out: new Float32Array(size) }));
      k.batchNormForward(x, mean[0], invStd, affine ? gamma : null, affine ? beta : null, outs[0].xhat, outs[0].out, shape);
      k.batchNormForwardReference(x, mean[0], invStd, affine ? gamma : null, affine ? beta : null, outs[1].xhat, outs[1].out, shape);
      same(outs[0].xhat, outs[1].xhat, 'xhat');
      same(outs[0].out, outs[1].out, 'out');
      for (const training of [true, false]) {
        const r = [0, 1].map(() => ({ gx: new Float32Array(size), sg: new Float64Array(shape.channels), sgx: new Float64Array(shape.channels) }));
        k.batchNormBackward(g, outs[0].xhat, invStd, affine ? gamma : null, training, r[0].gx, r[0].sg, r[0].sgx, shape);
        k.batchNormBackwardReference(g, outs[0].xhat, invStd, affine ? gamma : null, training, r[1].gx, r[1].sg, r[1].sgx, shape);
        same(r[0].gx, r[1].gx, `gx training=${training}`);
        same(r[0].sg, r[1].sg, 'sumG');
        same(r[0].sgx, r[1].sgx, 'sumGX');
      }
    }
  });

  test('batch normalization on many channels of small planes (blocks of channels a task, gx in place of g) equals the references', () => {
    // Planes of 16, 49 (a remainder of 1), 7 (no full group) and 64: the native kernels take
    // several channels a task there, image by image, and normalize rows in memory order.
    for (const [batch, channels, plane] of [[64, 96, 16], [9, 130, 49], [33, 70, 7], [16, 40, 64]]) {
      const s = { batch, channels, plane };
      const n = batch * channels * plane;
      const xs = uniform(n, plane, -4, 6);
      const gs = uniform(n, plane + 7, -1, 1);
      xs[5] = -0;
      gs[n - 1] = -0;
      const stats = [0, 1].map(() => ({ mean: new Float64Array(channels), variance: new Float64Array(channels) }));
      k.channelMeanVar(xs, s, stats[0].mean, stats[0].variance);
      k.channelMeanVarReference(xs, s, stats[1].mean, stats[1].variance);
      same(stats[0].mean, stats[1].mean, `mean ${plane}`);
      same(stats[0].variance, stats[1].variance, `variance ${plane}`);
      const invStd = Float32Array.from(stats[0].variance, (v) => 1 / Math.sqrt(v + 1e-5));
      const gamma = uniform(channels, 8, 0.5, 1.5);
      const beta = uniform(channels, 9);
      const outs = [0, 1].map(() => ({ xhat: new Float32Array(n), out: new Float32Array(n) }));
      k.batchNormForward(xs, stats[0].mean, invStd, gamma, beta, outs[0].xhat, outs[0].out, s);
      k.batchNormForwardReference(xs, stats[0].mean, invStd, gamma, beta, outs[1].xhat, outs[1].out, s);
      same(outs[0].xhat, outs[1].xhat, `xhat ${plane}`);
      same(outs[0].out, outs[1].out, `out ${plane}`);
      for (const training of [true, false]) {
        // The layer passes g as gx (in place): the kernel reads a channel's g before writing its gx.
        const inPlace = Float32Array.from(gs);
        const r = [0, 1].map(() => ({ sg: new Float64Array(channels), sgx: new Float64Array(channels) }));
        const gx = new Float32Array(n);
        k.batchNormBackward(inPlace, outs[0].xhat, invStd, gamma, training, inPlace, r[0].sg, r[0].sgx, s);
        k.batchNormBackwardReference(gs, outs[0].xhat, invStd, gamma, training, gx, r[1].sg, r[1].sgx, s);
        same(inPlace, gx, `gx ${plane} training=${training}`);
        same(r[0].sg, r[1].sg, `sumG ${plane}`);
        same(r[0].sgx, r[1].sgx, `sumGX ${plane}`);
      }
    }
  });

  test('batch norm backward on xhat kept as codes equals the backward on dequantize(codes) (E5M2 and E4M3, scales, gx in place)', () => {
    for (const [batch, channels, plane] of [[6, 5, 37 * 41], [64, 40, 16], [9, 30, 49]]) {
      const s = { batch, channels, plane };
      const n = batch * channels * plane;
      const xhat = uniform(n, plane + 3, -3, 3);
      const gs = uniform(n, plane + 4, -1, 1);
      const invStd = uniform(channels, 7, 0.5, 2);
      const gamma = uniform(channels, 8, 0.5, 1.5);
      for (const [format, scale] of [['e5m2', 4096], ['e4m3', 32], ['e5m2', 1], ['e4m3', 3]] as const) {
        const q = encodeScaled(xhat, scale, resolveFormat(format), {}).coded;
        for (const training of [true, false]) {
          const inPlace = Float32Array.from(gs);
          const r = [0, 1].map(() => ({ sg: new Float64Array(channels), sgx: new Float64Array(channels) }));
          const want = new Float32Array(n);
          k.batchNormBackwardCodes(inPlace, q, invStd, gamma, training, inPlace, r[0].sg, r[0].sgx, s);
          k.batchNormBackwardReference(gs, dequantize(q), invStd, gamma, training, want, r[1].sg, r[1].sgx, s);
          same(inPlace, want, `gx ${format} x${scale} ${plane} training=${training}`);
          same(r[0].sg, r[1].sg, `sumG ${format} ${plane}`);
          same(r[0].sgx, r[1].sgx, `sumGX ${format} ${plane}`);
        }
      }
    }
    assert.throws(() => k.batchNormBackwardCodes(new Float32Array(8), encodeScaled(new Float32Array(6), 1, resolveFormat('e5m2'), {}).coded, new Float32Array(2), null, true, null, new Float64Array(2), new Float64Array(2), { batch: 1, channels: 2, plane: 4 }), /xhat has 6 codes; expected 8/);
  });

  test('wrong lengths are refused', () => {
    assert.throws(() => k.reluForward(new Float32Array(3), new Float32Array(4)), /reluForward: arrays differ in length \(3, 4\)/);
    assert.throws(() => k.reluBackward(new Uint8Array(1), new Float32Array(9), new Float32Array(9)), /mask of 1 bytes is too short for 9 elements; expected 2/);
    assert.throws(() => k.channelSum(new Float32Array(3), shape), /channelSum: g holds 3 elements/);
  });
});
