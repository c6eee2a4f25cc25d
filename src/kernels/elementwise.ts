/**
 * Elementwise and per-channel kernels (NCHW, plane = H * W): ReLU, addition, per-channel bias,
 * and batch normalization. Per-channel sums accumulate in double precision over n, then
 * position, one channel at a time; the native path does the same operations in the same order
 * (built with floating-point contraction off), so both paths agree bit for bit.
 */
import { InvalidArgumentError } from '../errors.js';
import { decodeTable, type QTensor } from '../formats/index.js';
import { nativeCore } from './native.js';
import { dequantize } from './quant_stats.js';
import { kernelThreads } from './threads.js';

/** Below this many elements the addon's call overhead outweighs its speed. */
const NATIVE_MIN = 4096;

function sameLength(what: string, ...arrays: Float32Array[]): number {
  const n = arrays[0].length;
  if (arrays.some((a) => a.length !== n)) {
    throw new InvalidArgumentError(`${what}: arrays differ in length (${arrays.map((a) => a.length).join(', ')})`);
  }
  return n;
}

/** Bytes of a bit mask for n elements: bit (i & 7) of byte i >> 3 belongs to element i. */
export function maskBytes(n: number): number {
  return (n + 7) >> 3;
}

/** out = max(x, 0); when `mask` is given, its bit i is set where x[i] > 0 (what backward needs). */
export function reluForwardReference(x: Float32Array, out: Float32Array, mask: Uint8Array | null = null): void {
  for (let i = 0; i < x.length; i++) out[i] = x[i] > 0 ? x[i] : 0;
  if (mask) {
    mask.fill(0, 0, maskBytes(x.length));
    for (let i = 0; i < x.length; i++) if (x[i] > 0) mask[i >> 3] |= 1 << (i & 7);
  }
}

export function reluForward(x: Float32Array, out: Float32Array, mask: Uint8Array | null = null): Float32Array {
  const n = sameLength('reluForward', x, out);
  checkMask('reluForward', mask, n);
  const native = nativeCore();
  if (native && n >= NATIVE_MIN) native.reluForward(x, out, mask, { threads: kernelThreads() });
  else reluForwardReference(x, out, mask);
  return out;
}

/** values[i] = 0 (code 0, +0 in every format) wherever keep[i] is 0; in place. */
export function zeroWhereReference(values: Float32Array | Uint16Array | Uint8Array, keep: Uint8Array): void {
  for (let i = 0; i < keep.length; i++) if (keep[i] === 0) values[i] = 0;
}

export function zeroWhere<T extends Float32Array | Uint16Array | Uint8Array>(values: T, keep: Uint8Array): T {
  if (!(keep instanceof Uint8Array) || keep.length !== values.length) {
    throw new InvalidArgumentError(`zeroWhere: keep has ${keep?.length} entries; expected one per value, ${values.length}`);
  }
  const native = nativeCore();
  if (native && values.length >= NATIVE_MIN) native.zeroWhere(values, keep, { threads: kernelThreads() });
  else zeroWhereReference(values, keep);
  return values;
}

/** out = g where the mask bit is set (x > 0 in the forward pass), else 0. */
export function reluBackwardReference(mask: Uint8Array, g: Float32Array, out: Float32Array): void {
  for (let i = 0; i < g.length; i++) out[i] = (mask[i >> 3] >> (i & 7)) & 1 ? g[i] : 0;
}

export function reluBackward(mask: Uint8Array, g: Float32Array, out: Float32Array): Float32Array {
  const n = sameLength('reluBackward', g, out);
  checkMask('reluBackward', mask, n);
  const native = nativeCore();
  if (native && n >= NATIVE_MIN) native.reluBackward(mask, g, out, { threads: kernelThreads() });
  else reluBackwardReference(mask, g, out);
  return out;
}

function checkMask(what: string, mask: Uint8Array | null, n: number): void {
  if (mask && mask.length < maskBytes(n)) {
    throw new InvalidArgumentError(`${what}: a mask of ${mask.length} bytes is too short for ${n} elements; expected ${maskBytes(n)}`);
  }
}

export function addArraysReference(a: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
}

export function addArrays(a: Float32Array, b: Float32Array, out: Float32Array): Float32Array {
  const n = sameLength('add', a, b, out);
  const native = nativeCore();
  if (native && n >= NATIVE_MIN) native.add(a, b, out, { threads: kernelThreads() });
  else addArraysReference(a, b, out);
  return out;
}

export interface ChannelShape {
  batch: number;
  channels: number;
  plane: number;
}

function checkChannels(what: string, s: ChannelShape, ...arrays: Array<[string, Float32Array | Float64Array | null, number]>): void {
  for (const [name, array, needs] of arrays) {
    if (array && array.length < needs) {
      throw new InvalidArgumentError(`${what}: ${name} holds ${array.length} elements; shape [${s.batch}, ${s.channels}, plane ${s.plane}] needs ${needs}`);
    }
  }
}

/** out[n, c, :] += bias[c]. */
export function channelBiasAddReference(out: Float32Array, bias: Float32Array, s: ChannelShape): void {
  for (let c = 0; c < s.channels; c++) {
    const v = bias[c];
    for (let n = 0; n < s.batch; n++) {
      const base = (n * s.channels + c) * s.plane;
      for (let i = 0; i < s.plane; i++) out[base + i] += v;
    }
  }
}

export function channelBiasAdd(out: Float32Array, bias: Float32Array, s: ChannelShape): void {
  const size = s.batch * s.channels * s.plane;
  checkChannels('channelBiasAdd', s, ['out', out, size], ['bias', bias, s.channels]);
  const native = nativeCore();
  if (native && size >= NATIVE_MIN) {
    native.channelBiasAdd(out, bias, { ...s, threads: kernelThreads() });
    return;
  }
  channelBiasAddReference(out, bias, s);
}

/**
 * The sum of term(at) over channel c's elements, in double precision, in the order the native
 * kernels use (so that they vectorize): the element at position i of a plane goes to lane i % 8,
 * lanes fold pairwise at the end, ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
 */
function laneSum(s: ChannelShape, c: number, term: (at: number) => number): number {
  const lanes = new Float64Array(8);
  for (let n = 0; n < s.batch; n++) {
    const base = (n * s.channels + c) * s.plane;
    for (let i = 0; i < s.plane; i++) lanes[i % 8] += term(base + i);
  }
  return (lanes[0] + lanes[1] + (lanes[2] + lanes[3])) + (lanes[4] + lanes[5] + (lanes[6] + lanes[7]));
}

/** sums[c] = sum over n and positions of g[n, c, :] (laneSum's order). */
export function channelSumReference(g: Float32Array, s: ChannelShape, sums: Float64Array): void {
  for (let c = 0; c < s.channels; c++) sums[c] = laneSum(s, c, (at) => g[at]);
}

export function channelSum(g: Float32Array, s: ChannelShape, sums = new Float64Array(s.channels)): Float64Array {
  const size = s.batch * s.channels * s.plane;
  checkChannels('channelSum', s, ['g', g, size], ['sums', sums, s.channels]);
  const native = nativeCore();
  if (native && size >= NATIVE_MIN) {
    native.channelSum(g, sums, { ...s, threads: kernelThreads() });
    return sums;
  }
  channelSumReference(g, s, sums);
  return sums;
}

/** Mean and biased variance per channel, two passes in double precision (laneSum's order). */
export function channelMeanVarReference(x: Float32Array, s: ChannelShape, mean: Float64Array, variance: Float64Array): void {
  const count = s.batch * s.plane;
  for (let c = 0; c < s.channels; c++) {
    const m = laneSum(s, c, (at) => x[at]) / count;
    mean[c] = m;
    variance[c] = laneSum(s, c, (at) => (x[at] - m) * (x[at] - m)) / count;
  }
}

export function channelMeanVar(x: Float32Array, s: ChannelShape, mean: Float64Array, variance: Float64Array): void {
  const size = s.batch * s.channels * s.plane;
  checkChannels('channelMeanVar', s, ['x', x, size], ['mean', mean, s.channels], ['variance', variance, s.channels]);
  const native = nativeCore();
  if (native && size >= NATIVE_MIN) {
    native.channelMeanVar(x, mean, variance, { ...s, threads: kernelThreads() });
    return;
  }
  channelMeanVarReference(x, s, mean, variance);
}

/** xhat = float32((x - mean) * invStd); out = float32(float32(xhat * gamma) + beta). */
export function batchNormForwardReference(x: Float32Array, mean: Float64Array, invStd: Float32Array, gamma: Float32Array | null, beta: Float32Array | null, xhat: Float32Array, out: Float32Array, s: ChannelShape): void {
  for (let c = 0; c < s.channels; c++) {
    const m = mean[c];
    const inv = invStd[c];
    const scale = gamma ? gamma[c] : 1;
    const shift = beta ? beta[c] : 0;
    for (let n = 0; n < s.batch; n++) {
      const base = (n * s.channels + c) * s.plane;
      for (let i = 0; i < s.plane; i++) {
        const h = Math.fround((x[base + i] - m) * inv);
        xhat[base + i] = h;
        out[base + i] = Math.fround(h * scale) + shift;
      }
    }
  }
}

export function batchNormForward(
  x: Float32Array,
  mean: Float64Array,
  invStd: Float32Array,
  gamma: Float32Array | null,
  beta: Float32Array | null,
  xhat: Float32Array,
  out: Float32Array,
  s: ChannelShape,
): void {
  const size = s.batch * s.channels * s.plane;
  checkChannels('batchNormForward', s, ['x', x, size], ['xhat', xhat, size], ['out', out, size], ['mean', mean, s.channels], ['invStd', invStd, s.channels], ['gamma', gamma, s.channels], ['beta', beta, s.channels]);
  const native = nativeCore();
  if (native && size >= NATIVE_MIN) {
    native.batchNormForward(x, mean, invStd, gamma, beta, xhat, out, { ...s, threads: kernelThreads() });
    return;
  }
  batchNormForwardReference(x, mean, invStd, gamma, beta, xhat, out, s);
}

/**
 * sumG[c] = sum g, sumGX[c] = sum g * xhat (double); gx, when given:
 * training: gamma * invStd / M * (M * g - sumG - xhat * sumGX); eval: gamma * invStd * g.
 */
export function batchNormBackwardReference(g: Float32Array, xhat: Float32Array, invStd: Float32Array, gamma: Float32Array | null, training: boolean, gx: Float32Array | null, sumG: Float64Array, sumGX: Float64Array, s: ChannelShape): void {
  const count = s.batch * s.plane;
  for (let c = 0; c < s.channels; c++) {
    const sg = laneSum(s, c, (at) => g[at]);
    const sgx = laneSum(s, c, (at) => g[at] * xhat[at]);
    sumG[c] = sg;
    sumGX[c] = sgx;
    if (!gx) continue;
    const scale = (gamma ? gamma[c] : 1) * invStd[c];
    for (let n = 0; n < s.batch; n++) {
      const base = (n * s.channels + c) * s.plane;
      for (let i = 0; i < s.plane; i++) {
        gx[base + i] = training ? (scale / count) * (count * g[base + i] - sg - xhat[base + i] * sgx) : scale * g[base + i];
      }
    }
  }
}

/** batchNormBackward with xhat kept as codes (a recipe's saved activations): on dequantize(xhat). */
export function batchNormBackwardCodesReference(
  g: Float32Array, xhat: QTensor, invStd: Float32Array, gamma: Float32Array | null, training: boolean, gx: Float32Array | null, sumG: Float64Array, sumGX: Float64Array, s: ChannelShape,
): void {
  batchNormBackwardReference(g, dequantize(xhat), invStd, gamma, training, gx, sumG, sumGX, s);
}

/**
 * batchNormBackward on xhat as one-byte codes, decoded a plane at a time inside the kernel (the
 * values dequantize gives, without writing them out whole); the reference elsewhere.
 */
export function batchNormBackwardCodes(
  g: Float32Array, xhat: QTensor, invStd: Float32Array, gamma: Float32Array | null, training: boolean, gx: Float32Array | null, sumG: Float64Array, sumGX: Float64Array, s: ChannelShape,
): void {
  const size = s.batch * s.channels * s.plane;
  checkChannels('batchNormBackwardCodes', s, ['g', g, size], ['gx', gx, size], ['invStd', invStd, s.channels], ['gamma', gamma, s.channels], ['sumG', sumG, s.channels], ['sumGX', sumGX, s.channels]);
  if (xhat.codes.length !== size) throw new InvalidArgumentError(`batchNormBackwardCodes: xhat has ${xhat.codes.length} codes; expected ${size}`);
  const native = nativeCore();
  if (native && size >= NATIVE_MIN && xhat.codes instanceof Uint8Array) {
    const data = { data: xhat.codes, table: decodeTable(xhat.format), format: xhat.format };
    native.batchNormBackwardCodes(g, data, invStd, gamma, gx, sumG, sumGX, { ...s, training, scale: xhat.scale, threads: kernelThreads() });
    return;
  }
  batchNormBackwardCodesReference(g, xhat, invStd, gamma, training, gx, sumG, sumGX, s);
}

export function batchNormBackward(
  g: Float32Array,
  xhat: Float32Array,
  invStd: Float32Array,
  gamma: Float32Array | null,
  training: boolean,
  gx: Float32Array | null,
  sumG: Float64Array,
  sumGX: Float64Array,
  s: ChannelShape,
): void {
  const size = s.batch * s.channels * s.plane;
  checkChannels('batchNormBackward', s, ['g', g, size], ['xhat', xhat, size], ['gx', gx, size], ['invStd', invStd, s.channels], ['gamma', gamma, s.channels], ['sumG', sumG, s.channels], ['sumGX', sumGX, s.channels]);
  const native = nativeCore();
  if (native && size >= NATIVE_MIN) {
    native.batchNormBackward(g, xhat, invStd, gamma, gx, sumG, sumGX, { ...s, training, threads: kernelThreads() });
    return;
  }
  batchNormBackwardReference(g, xhat, invStd, gamma, training, gx, sumG, sumGX, s);
}

/**
 * AdamW's moment update, per element in double precision, stored as float32:
 * m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g (left to right).
 */
export function adamwMomentsReference(m: Float32Array, v: Float32Array, g: Float32Array, beta1: number, beta2: number): void {
  for (let i = 0; i < g.length; i++) {
    m[i] = beta1 * m[i] + (1 - beta1) * g[i];
    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
  }
}

export function adamwMoments(m: Float32Array, v: Float32Array, g: Float32Array, beta1: number, beta2: number): void {
  sameLength('adamwMoments', m, v, g);
  const native = nativeCore();
  if (native && g.length >= NATIVE_MIN) native.adamwMoments(m, v, g, { beta1, beta2, threads: kernelThreads() });
  else adamwMomentsReference(m, v, g, beta1, beta2);
}

/** AdamW's step, per element in double precision: p = p * decay - (stepSize * m) / (sqrt(v) / c2Sqrt + eps). */
export function adamwApplyReference(p: Float32Array, m: Float32Array, v: Float32Array, decay: number, stepSize: number, c2Sqrt: number, eps: number): void {
  for (let i = 0; i < p.length; i++) p[i] = p[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) / c2Sqrt + eps);
}

/**
 * Both halves of AdamW where keep[i] is nonzero, each entry as adamwMoments then adamwApply compute
 * it; entries where keep is 0 are left as they are (a pruned weight's, which the pruner keeps at 0).
 */
export function adamwMaskedReference(
  p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, keep: Uint8Array, beta1: number, beta2: number, decay: number, stepSize: number, c2Sqrt: number, eps: number,
): void {
  for (let i = 0; i < p.length; i++) {
    if (!keep[i]) continue;
    m[i] = beta1 * m[i] + (1 - beta1) * g[i];
    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
    p[i] = p[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) / c2Sqrt + eps);
  }
}

export function adamwMasked(
  p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, keep: Uint8Array, beta1: number, beta2: number, decay: number, stepSize: number, c2Sqrt: number, eps: number,
): void {
  sameLength('adamwMasked', p, m, v, g);
  if (keep.length !== p.length) throw new InvalidArgumentError(`adamwMasked: keep has ${keep.length} entries; p has ${p.length}`);
  const native = nativeCore();
  if (native && p.length >= NATIVE_MIN) native.adamwMasked(p, m, v, g, keep, { beta1, beta2, decay, stepSize, c2Sqrt, eps, threads: kernelThreads() });
  else adamwMaskedReference(p, m, v, g, keep, beta1, beta2, decay, stepSize, c2Sqrt, eps);
}

export function adamwApply(p: Float32Array, m: Float32Array, v: Float32Array, decay: number, stepSize: number, c2Sqrt: number, eps: number): void {
  sameLength('adamwApply', p, m, v);
  const native = nativeCore();
  if (native && p.length >= NATIVE_MIN) native.adamwApply(p, m, v, { decay, stepSize, c2Sqrt, eps, threads: kernelThreads() });
  else adamwApplyReference(p, m, v, decay, stepSize, c2Sqrt, eps);
}
