/**
 * Run in a child process with OCTET_GEMM_KERNEL / OCTET_CODEC_KERNEL / OCTET_NATIVE set: checks
 * the selected kernels against the references on edge-heavy inputs and prints what it found.
 */
import { defineFormat, encodeReference, makeQTensor, quantizeReference, resolveFormat } from '../../src/formats/index.js';
import { convGeometry, groupColumns } from '../../src/kernels/conv_geometry.js';
import { decode, encode, quantize } from '../../src/kernels/codec.js';
import { encodeScaled, encodeScaledReference } from '../../src/kernels/quant_stats.js';
import { gemm, gemmReference } from '../../src/kernels/gemm.js';
import { lowpGemm, lowpGemmReference } from '../../src/kernels/lowp_gemm.js';
import { blockScaledGemm, blockScaledGemmReference } from '../../src/kernels/block_gemm.js';
import { alignedGemm, hopperGemm } from '../../src/kernels/hopper_gemm.js';
import {
  bsrConv2dForward, bsrConv2dForwardReference, bsrFromCodes, bsrFromDense, bsrFromPattern, bsrGemm, bsrGemmReference, bsrToDense, bsrTranspose, bsrTransposedFromPattern,
} from '../../src/kernels/block_sparse.js';
import { recycle } from '../../src/kernels/buffer_pool.js';
import {
  batchNormBackward, batchNormBackwardCodes, batchNormBackwardReference, batchNormForward, batchNormForwardReference, channelMeanVar, channelMeanVarReference,
  reluBackward, reluBackwardReference, reluForward, reluForwardReference,
} from '../../src/kernels/elementwise.js';
import { dequantize } from '../../src/kernels/index.js';
import { lowpConv2dBackwardData, lowpConv2dBackwardWeight, lowpConv2dForward } from '../../src/kernels/lowp_conv.js';
import { blockQuantizeReference, type BlockSpec } from '../../src/kernels/block_quant.js';
import { bsrConv2dInputGradient, bsrConv2dWeightGradient, bsrLowpConv2dInputGradient } from '../../src/kernels/block_sparse_conv.js';
import { nativeCore, nativeUnavailableReason } from '../../src/kernels/native.js';
import { winogradForward, winogradForwardReference, winogradWeightGradient, winogradWeightGradientReference } from '../../src/kernels/winograd.js';
import { float32FromBits } from './format_oracle.js';
import { uniform, xorshift } from './random.js';

const native = nativeCore();
process.stdout.write(native ? `kernel ${native.info().gemmKernel}\n` : `reference path: ${nativeUnavailableReason()}\n`);

let worst = 0;
for (const [m, n, k, transA, transB] of [
  [1, 1, 1, false, false],
  [7, 17, 300, false, true],
  [13, 33, 5, true, false],
  [50, 40, 513, true, true],
  [300, 9, 64, false, false],
] as const) {
  const a = uniform(m * k, m + n);
  const b = uniform(k * n, k + 1);
  const c = new Float32Array(m * n);
  const ref = new Float32Array(m * n);
  gemm(m, n, k, a, b, c, { transA, transB });
  gemmReference({ transA, transB, m, n, k, alpha: 1, a, lda: transA ? m : k, b, ldb: transB ? k : n, beta: 0, c: ref, ldc: n });
  for (let i = 0; i < c.length; i++) worst = Math.max(worst, Math.abs(c[i] - ref[i]) / (Math.sqrt(k) + Math.abs(ref[i])));
}
process.stdout.write(`gemm max relative error ${worst} ${worst < 1e-5 ? 'ok' : 'TOO LARGE'}\n`);

const next = xorshift(5);
const x = Float32Array.from({ length: 300_000 }, (_, i) => (i % 2 ? float32FromBits(next()) : (next() / 2 ** 32 - 0.5) * 1000));
let codecMismatches = 0;
// (and a format that flushes subnormals, a branch of its own in the vector encoders)
const flushed = defineFormat({ ...resolveFormat('e5m2'), name: 'e5m2_ftz', aliases: [], subnormals: false });
for (const format of ['e5m2', 'e4m3', 'e6m9', 'bf16', 'fp32', flushed]) {
  for (const rounding of ['nearest', 'stochastic', 'toward-zero'] as const) {
    const options = { rounding, seed: 99, saturate: rounding === 'nearest' };
    const a = encode(x, format, options);
    const b = encodeReference(x, format, options);
    for (let i = 0; i < x.length; i++) if (a[i] !== b[i]) codecMismatches++;
    const q = new Uint32Array(quantize(x, format, options).buffer);
    const r = new Uint32Array(quantizeReference(x, format, options).buffer);
    for (let i = 0; i < x.length; i++) if (q[i] !== r[i]) codecMismatches++;
    // The scaled encode with its counts (one pass on the vector paths).
    const fused = encodeScaled(x, 2 ** -7, format, options);
    const fusedRef = encodeScaledReference(x, 2 ** -7, format, options);
    for (let i = 0; i < x.length; i++) if (fused.coded.codes[i] !== fusedRef.coded.codes[i]) codecMismatches++;
    for (const key of ['overflow', 'nonzero', 'underflow'] as const) if (fused[key] !== fusedRef[key]) codecMismatches++;
  }
}
process.stdout.write(`codec mismatches ${codecMismatches}\n`);

let lowpMismatches = 0;
const la = makeQTensor(encode(x.subarray(0, 19 * 70), 'e5m2', { saturate: true }), 'e5m2', 256);
const lb = makeQTensor(encode(x.subarray(5000, 5000 + 70 * 23), 'e4m3', { saturate: true }), 'e4m3', 4);
for (const options of [{}, { accumulation: 'e6m9' }, { accumulation: 'e6m9', chunk: 8 }, { accumulation: 'fp16', rounding: 'stochastic' as const, seed: 4 }]) {
  const fast = lowpGemm(19, 23, 70, la, lb, options);
  const ref = lowpGemmReference(19, 23, 70, la, lb, options);
  for (let i = 0; i < fast.length; i++) if (!Object.is(fast[i], ref[i]) && !(Number.isNaN(fast[i]) && Number.isNaN(ref[i]))) lowpMismatches++;
}
// Float32 times codes with fp32 accumulation: products not exact, the SGEMM's unfused kernels.
const fa = x.subarray(9000, 9000 + 19 * 70).map((v) => (Number.isFinite(v) ? v % 1000 : 1));
const mixed = lowpGemm(19, 23, 70, fa, lb);
const mixedRef = lowpGemmReference(19, 23, 70, fa, lb);
for (let i = 0; i < mixed.length; i++) if (!Object.is(mixed[i], mixedRef[i])) lowpMismatches++;
process.stdout.write(`lowp mismatches ${lowpMismatches}\n`);

// Block-scaled GEMMs with float32 partials (the GEMM's run tiles): MX scales (multiplied by
// reciprocals) and float32 tile scales (divided), edge tiles and several K blocks.
let blockMismatches = 0;
for (const [m, n, k] of [[29, 45, 700], [9, 7, 33]]) {
  for (const [specA, specB] of [
    [{ format: 'e4m3', blockRows: 1, blockK: 32, scale: 'e8m0' }, { format: 'e4m3', blockRows: 1, blockK: 32, scale: 'e8m0' }],
    [{ format: 'e4m3', blockRows: 1, blockK: 128, scale: 'fp32' }, { format: 'e4m3', blockRows: 128, blockK: 128, scale: 'fp32' }],
  ] as BlockSpec[][]) {
    const qa = blockQuantizeReference(uniform(m * k, m), m, k, 'rk', specA);
    const qb = blockQuantizeReference(uniform(n * k, n), n, k, 'rk', specB);
    const fast = blockScaledGemm(qa, qb, {});
    const ref = blockScaledGemmReference(qa, qb, {});
    for (let i = 0; i < fast.length; i++) if (!Object.is(fast[i], ref[i])) blockMismatches++;
  }
}
// The aligned (Hopper) accumulator: int32 lanes where the vector kernels apply, else scalar.
for (const [m, n, k, fa, fb, model] of [
  [3, 21, 300, 'e4m3', 'e5m2', 'hopper-fp8'],
  [4, 9, 130, 'e5m2', 'e5m2', { group: 16, keep: 10, significant: 12, interval: 40 }],
  [2, 17, 500, 'e4m3', 'e4m3', { group: 100, keep: 14, significant: 22, interval: 0 }],
] as const) {
  const a = encode(Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 1.7) * 3 * 2 ** ((i % 9) - 4)), fa) as Uint8Array;
  const b = encode(Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.37) * 2 ** ((i % 7) - 3)), fb) as Uint8Array;
  for (let i = 0; i < 40; i++) a[i] = 0;
  const fast = alignedGemm(m, n, k, a, fa, b, fb, model, 2);
  const ref = hopperGemm(m, n, k, a, fa, b, fb, { model });
  for (let i = 0; i < ref.length; i++) if (!Object.is(fast[i], ref[i])) blockMismatches++;
}
process.stdout.write(`block mismatches ${blockMismatches}\n`);

// Block-sparse products (the portable loops where the build has no x86 code).
let sparseMismatches = 0;
for (const [br, bc] of [[8, 8], [1, 1], [4, 4]]) {
  const dense = uniform(20 * 36, br);
  const keep = Uint8Array.from({ length: Math.ceil(20 / br) * Math.ceil(36 / bc) }, (_, i) => (i % 3 === 0 ? 0 : 1));
  const w = bsrFromDense(dense, 20, 36, br, bc, keep);
  const x = uniform(36 * 50, bc);
  const fast = bsrGemm(w, x, 50);
  const ref = bsrGemmReference(w, x, 50);
  for (let i = 0; i < fast.length; i++) if (fast[i] !== ref[i]) sparseMismatches++;
}
// Sparse convolutions: each way of packing columns (a constant shift, stride 2, gathered lanes,
// planes not a multiple of 16), on float images and on E5M2 codes.
const e5m2Table = decode(Uint8Array.from({ length: 256 }, (_, i) => i), 'e5m2');
for (const [xShape, wShape, options] of [
  [[2, 8, 16, 16], [16, 8, 3, 3], { padding: 1 }],
  [[2, 8, 32, 32], [16, 8, 3, 3], { padding: 1, stride: 2 }],
  [[2, 8, 16, 16], [16, 8, 3, 3], { padding: 1, stride: 2 }],
  [[3, 8, 9, 9], [16, 8, 3, 3], { padding: 1, stride: 2 }],
  [[5, 8, 7, 7], [16, 8, 3, 3], { padding: 1 }],
] as const) {
  const geo = convGeometry(xShape as unknown as [number, number, number, number], wShape as unknown as [number, number, number, number], options);
  const g = groupColumns(geo);
  const cols = geo.channels * 9;
  const keep = Uint8Array.from({ length: 2 * Math.ceil(cols / 8) }, (_, i) => (i % 3 === 1 ? 0 : 1));
  const w = bsrFromDense(uniform(16 * cols, 71), 16, cols, 8, 8, keep);
  const images = uniform(geo.batch * geo.channels * geo.height * geo.width, 72);
  const codes = encode(images, 'e5m2', { saturate: true }) as Uint8Array;
  for (const x of [images, { codes, table: e5m2Table, format: resolveFormat('e5m2') }]) {
    const fast = bsrConv2dForward(w, x, g, geo.batch);
    const ref = bsrConv2dForwardReference(w, x, g, geo.batch);
    for (let i = 0; i < fast.length; i++) if (fast[i] !== ref[i]) sparseMismatches++;
    // The input gradient (W^T dY folded in row by row) and the weight gradient at the kept
    // blocks (float and E5M2 output gradients).
    if (x === images) {
      const dyIn = uniform(geo.batch * 16 * geo.outH * geo.outW, 74);
      const fastX = bsrConv2dInputGradient(bsrTranspose(w), dyIn, g, geo.batch);
      const refX = bsrConv2dInputGradient(bsrTranspose(w), dyIn, g, geo.batch, { reference: true });
      for (let i = 0; i < fastX.length; i++) if (!Object.is(fastX[i], refX[i])) sparseMismatches++;
      // Into an array of stale values, cleared by the kernel (`clear`).
      const stale = new Float32Array(fastX.length).fill(Number.NaN);
      bsrConv2dInputGradient(bsrTranspose(w), dyIn, g, geo.batch, { out: stale, clear: true });
      for (let i = 0; i < fastX.length; i++) if (!Object.is(stale[i], refX[i])) sparseMismatches++;
    }
    const dyValues = uniform(geo.batch * 16 * geo.outH * geo.outW, 73);
    for (const dy of [dyValues, { codes: encode(dyValues, 'e5m2', { saturate: true }) as Uint8Array, table: e5m2Table, format: resolveFormat('e5m2') }]) {
      const fastW = bsrConv2dWeightGradient(w, x, dy, g, geo.batch);
      const refW = bsrConv2dWeightGradient(w, x, dy, g, geo.batch, { reference: true });
      for (let i = 0; i < fastW.length; i++) if (!Object.is(fastW[i], refW[i])) sparseMismatches++;
    }
  }
}
// The FP8 input gradient of a pruned layer (16 images a vector; stride 1 and strided phases,
// batches past 16): the dense contract's bits, where a vector path runs it.
let sparseLowpRuns = 0;
for (const [xShape, wShape, options] of [
  [[19, 8, 6, 6], [16, 8, 3, 3], { padding: 1 }],
  [[3, 8, 9, 7], [16, 8, 3, 3], { padding: 1, stride: 2 }],
  [[2, 8, 21, 21], [16, 8, 3, 3], { padding: 1 }],
] as const) {
  const geo = convGeometry(xShape as unknown as [number, number, number, number], wShape as unknown as [number, number, number, number], options);
  const cols = geo.channels * 9;
  const keep = Uint8Array.from({ length: 2 * Math.ceil(cols / 8) }, (_, i) => (i % 3 === 1 ? 0 : 1));
  const dense = bsrToDense(bsrFromDense(uniform(16 * cols, 75).map((v) => 2 * v - 1), 16, cols, 8, 8, keep));
  const wq = makeQTensor(encode(dense, 'e5m2', { saturate: true }) as Uint8Array, 'e5m2', 0.5);
  const dyq = makeQTensor(encode(uniform(geo.batch * 16 * geo.outH * geo.outW, 76).map((v) => 8 * v - 4), 'e5m2', { saturate: true }) as Uint8Array, 'e5m2', 2);
  const fast = bsrLowpConv2dInputGradient({ rows: 16, cols, br: 8, bc: 8, keep }, dyq, wq, groupColumns(geo), geo.batch, { threads: 2 });
  if (!fast) continue;
  sparseLowpRuns++;
  const ref = lowpConv2dBackwardData(dyq, wq, geo, {}, true);
  for (let i = 0; i < ref.length; i++) if (!Object.is(fast[i], ref[i])) sparseMismatches++;
}
process.stdout.write(`sparse mismatches ${sparseMismatches}\n`);
process.stdout.write(`sparse fp8 input gradients ${sparseLowpRuns}\n`);

// BSR built from dense values, from codes, transposed, and into pooled arrays of stale values:
// the same as the written-out round trip (edges +0).
let buildMismatches = 0;
// (The larger ones fill arrays the pool holds: 16384 floats and more.)
let staleTaken = 0;
for (const [rows, cols, br, bc] of [[20, 36, 8, 8], [13, 21, 4, 8], [16, 27, 16, 16], [130, 301, 8, 8], [301, 130, 3, 5]]) {
  const grid = Math.ceil(rows / br) * Math.ceil(cols / bc);
  const pattern = { rows, cols, br, bc, keep: Uint8Array.from({ length: grid }, (_, i) => (i % 3 === 1 ? 0 : 1)) };
  const codes = encode(uniform(rows * cols, rows + br), 'e5m2', { saturate: true }) as Uint8Array;
  const values = decode(codes, 'e5m2');
  const want = bsrFromDense(values, rows, cols, br, bc, pattern.keep);
  const wantT = bsrTranspose(want);
  const count = (got: { values: Float32Array; colIdx: Int32Array }, expect: { values: Float32Array; colIdx: Int32Array }) => {
    if (got.colIdx.length !== expect.colIdx.length) buildMismatches++;
    for (let i = 0; i < expect.values.length; i++) if (!Object.is(got.values[i], expect.values[i])) buildMismatches++;
  };
  for (const pooled of [false, true]) {
    for (const build of [() => bsrFromPattern(values, pattern, pooled), () => bsrFromCodes(codes, e5m2Table, pattern, pooled)]) {
      const stale = new Float32Array(want.values.length).fill(Number.NaN);
      if (pooled) recycle(stale);
      const got = build();
      if (got.values === stale) staleTaken++;
      count(got, want);
    }
    const stale = new Float32Array(wantT.values.length).fill(Number.NaN);
    if (pooled) recycle(stale);
    const got = bsrTransposedFromPattern(values, pattern, pooled);
    // (Without the native core the transpose goes through the weight's own BSR, not the pool.)
    if (got.values === stale) staleTaken++;
    count(got, wantT);
  }
}
process.stdout.write(`bsr build mismatches ${buildMismatches} (${staleTaken} into stale pooled arrays)\n`);

// Winograd (forward and weight gradient, both tiles) against the double-precision references,
// relative to each output's largest magnitude.
let winogradWorst = 0;
for (const tile of [2, 4] as const) {
  const shape = { tile, geometry: convGeometry([2, 20, 9, 7], [37, 20, 3, 3], { padding: 1 }) };
  const wx = uniform(2 * 20 * 9 * 7, 61), ww = uniform(37 * 20 * 9, 62), wdy = uniform(2 * 37 * 9 * 7, 63);
  const pairs: [Float32Array, Float32Array][] = [];
  const y = new Float32Array(wdy.length), yRef = new Float32Array(wdy.length);
  winogradForward(wx, ww, y, shape);
  winogradForwardReference(wx, ww, yRef, shape);
  pairs.push([y, yRef]);
  const dw = new Float32Array(ww.length), dwRef = new Float32Array(ww.length);
  winogradWeightGradient(wx, wdy, dw, shape);
  winogradWeightGradientReference(wx, wdy, dwRef, shape);
  pairs.push([dw, dwRef]);
  for (const [fast, ref] of pairs) {
    const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    for (let i = 0; i < fast.length; i++) winogradWorst = Math.max(winogradWorst, Math.abs(fast[i] - ref[i]) / scale);
  }
}
process.stdout.write(`winograd max relative error ${winogradWorst} ${winogradWorst < 1e-5 ? 'ok' : 'TOO LARGE'}\n`);

// Direct convolutions on codes with float32 and e6m9 accumulation (the fp8 recipes' products):
// forward and weight gradient (1, 2 and 4 vectors of output channels a tile); ReLU forward and backward.
let directMismatches = 0;
for (const s of [
  convGeometry([2, 16, 28, 28], [16, 16, 3, 3], { padding: 1 }),
  convGeometry([2, 6, 11, 9], [32, 6, 3, 3], { stride: 2, padding: 1 }),
  convGeometry([1, 5, 9, 10], [64, 5, 3, 3], { dilation: 2, padding: 2 }),
  convGeometry([2, 7, 9, 10], [20, 7, 1, 1], {}),
]) {
  const xc = makeQTensor(encode(uniform(s.batch * s.channels * s.height * s.width, 81).map((v) => 4 * v - 2), 'e5m2'), 'e5m2', 4);
  const wc = makeQTensor(encode(uniform(s.outChannels * s.channels * s.kernelH * s.kernelW, 82).map((v) => 2 * v - 1), 'e5m2'), 'e5m2', 8);
  const dyc = makeQTensor(encode(uniform(s.batch * s.outChannels * s.outH * s.outW, 83).map((v) => 2 * v - 1), 'e5m2'), 'e5m2', 2);
  const e6m9 = { accumulation: 'e6m9', chunk: 64 };
  const pairs = [
    [lowpConv2dForward(xc, wc, s, { threads: 2 }), lowpConv2dForward(xc, wc, s, {}, true)],
    [lowpConv2dBackwardWeight(dyc, xc, s, { threads: 2 }), lowpConv2dBackwardWeight(dyc, xc, s, {}, true)],
    // Under an emulated accumulator (the direct kernels' rounded tiles where they apply).
    [lowpConv2dForward(xc, wc, s, { ...e6m9, threads: 2 }), lowpConv2dForward(xc, wc, s, e6m9, true)],
    [lowpConv2dBackwardWeight(dyc, xc, s, { ...e6m9, threads: 2 }), lowpConv2dBackwardWeight(dyc, xc, s, e6m9, true)],
  ];
  for (const [fast, ref] of pairs) for (let i = 0; i < ref.length; i++) if (!Object.is(fast[i], ref[i])) directMismatches++;
}
const reluIn = uniform(1003, 84).map((v, i) => (i % 97 === 0 ? Number.NaN : i % 89 === 0 ? -0 : v - 0.5));
const reluOut = [new Float32Array(1003), new Float32Array(1003)];
const reluMask = [new Uint8Array(126), new Uint8Array(126)];
reluForward(reluIn, reluOut[0], reluMask[0]);
reluForwardReference(reluIn, reluOut[1], reluMask[1]);
const reluGrad = [new Float32Array(1003), new Float32Array(1003)];
reluBackward(reluMask[0], reluIn, reluGrad[0]);
reluBackwardReference(reluMask[1], reluIn, reluGrad[1]);
for (let i = 0; i < 1003; i++) if (!Object.is(reluOut[0][i], reluOut[1][i]) || !Object.is(reluGrad[0][i], reluGrad[1][i])) directMismatches++;
for (let i = 0; i < 126; i++) if (reluMask[0][i] !== reluMask[1][i]) directMismatches++;
process.stdout.write(`direct mismatches ${directMismatches}\n`);

// Batch norm's channel passes (planes of every remainder mod 8 and several channel blocks; xhat
// as floats and as codes): the references' bits.
let normMismatches = 0;
for (const shape of [{ batch: 3, channels: 5, plane: 61 }, { batch: 9, channels: 70, plane: 16 }, { batch: 2, channels: 3, plane: 7 }, { batch: 4, channels: 40, plane: 196 }]) {
  const size = shape.batch * shape.channels * shape.plane;
  const xs = uniform(size, 91).map((v) => 3 * v + 1), gs = uniform(size, 92).map((v) => v - 0.5);
  const gamma = uniform(shape.channels, 93), beta = uniform(shape.channels, 94);
  const stats = [0, 1].map(() => ({ mean: new Float64Array(shape.channels), variance: new Float64Array(shape.channels) }));
  channelMeanVar(xs, shape, stats[0].mean, stats[0].variance);
  channelMeanVarReference(xs, shape, stats[1].mean, stats[1].variance);
  const invStd = Float32Array.from(stats[1].variance, (v) => 1 / Math.sqrt(v + 1e-5));
  const outs = [0, 1].map(() => ({ xhat: new Float32Array(size), out: new Float32Array(size) }));
  batchNormForward(xs, stats[1].mean, invStd, gamma, beta, outs[0].xhat, outs[0].out, shape);
  batchNormForwardReference(xs, stats[1].mean, invStd, gamma, beta, outs[1].xhat, outs[1].out, shape);
  const coded = makeQTensor(encode(outs[1].xhat.map((v) => v * 4), 'e5m2', { saturate: true }), 'e5m2', 4);
  const pairs: Array<[ArrayLike<number>, ArrayLike<number>]> = [[stats[0].mean, stats[1].mean], [stats[0].variance, stats[1].variance], [outs[0].xhat, outs[1].xhat], [outs[0].out, outs[1].out]];
  for (const training of [true, false]) {
    const r = [0, 1, 2, 3].map(() => ({ gx: new Float32Array(size), sg: new Float64Array(shape.channels), sgx: new Float64Array(shape.channels) }));
    batchNormBackward(gs, outs[1].xhat, invStd, gamma, training, r[0].gx, r[0].sg, r[0].sgx, shape);
    batchNormBackwardReference(gs, outs[1].xhat, invStd, gamma, training, r[1].gx, r[1].sg, r[1].sgx, shape);
    batchNormBackwardCodes(gs, coded, invStd, gamma, training, r[2].gx, r[2].sg, r[2].sgx, shape);
    batchNormBackwardReference(gs, dequantize(coded), invStd, gamma, training, r[3].gx, r[3].sg, r[3].sgx, shape);
    for (const [a, b] of [[0, 1], [2, 3]]) pairs.push([r[a].gx, r[b].gx], [r[a].sg, r[b].sg], [r[a].sgx, r[b].sgx]);
  }
  for (const [fast, ref] of pairs) for (let i = 0; i < ref.length; i++) if (!Object.is(fast[i], ref[i])) normMismatches++;
}
process.stdout.write(`batch norm mismatches ${normMismatches}\n`);
