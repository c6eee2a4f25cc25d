/**
 * Winograd convolution F(m x m, 3 x 3) for float32: 3x3 kernels at stride 1 and dilation 1
 * (native/winograd.h has the algorithm and its blocking).
 *
 * CONTRACT. winogradForward(x, w, y, shape) writes every element of y = conv3x3(x, w) (cross-
 * correlation, zero padding), winogradWeightGradient(x, dy, dw, shape) writes dw, the gradient of
 * sum(y * dy) with respect to w. Both equal the direct convolution to float32 rounding error, not
 * bit for bit: the transforms add and subtract, and the m = 4 transforms scale by up to 8, so the
 * error bound is about 10 (m = 2) or 100 (m = 4) times the direct product's (tested). Non-finite
 * inputs can give NaN where the direct product gives an infinity (inf - inf in a transform). The
 * same inputs give the same bits on every run and every thread count.
 *
 * The references below run the same algorithm in double precision, element by element: they are
 * what the transforms and their indexing must agree with, and the fallback without the addon.
 * The convolutions use Winograd only where the addon is there (`winogradTile`).
 */
import { InvalidArgumentError } from '../errors.js';
import { checkConvGeometry, type ConvGeometry } from './conv_geometry.js';
import { nativeCore, type NativeWinograd } from './native.js';
import { resolveThreads } from './threads.js';

/** How float32 convolutions run: Winograd products where they apply, or always the direct product. */
export type ConvAlgorithm = 'winograd' | 'direct';

export const CONV_ALGORITHMS: readonly ConvAlgorithm[] = ['winograd', 'direct'];

/** A Winograd product for one group of a convolution. */
export interface WinogradPlan {
  /** Output tile m: 2 (16 points per 4 outputs) or 4 (36 per 16). */
  tile: 2 | 4;
  /** The group's convolution: groups 1, a 3x3 kernel at stride 1 and dilation 1, padding 0 to 2. */
  geometry: ConvGeometry;
  /** Elements from one input image to the next (default channels * height * width). */
  xImageStride?: number;
  /** Elements from one output image to the next (default outChannels * outH * outW). */
  yImageStride?: number;
  /**
   * The forward only: w is a convolution's weights [channels][outChannels][3][3] (from outChannels
   * to channels), read as its input gradient's kernel, w[c][k] rotated by 180 degrees from input
   * channel c to output channel k; so the input gradient needs no rotated copy.
   */
  flipped?: boolean;
}

/** A plan with its defaults filled in. */
type Resolved = ConvGeometry & { tile: 2 | 4; xImageStride: number; yImageStride: number; flipped: boolean };

/** The transforms (Lavin and Gray 2016), as in native/winograd.cc. */
const TRANSFORMS = {
  2: {
    bt: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    g: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    at: [[1, 1, 1, 0], [0, 1, -1, -1]],
  },
  4: {
    bt: [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    g: [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
    at: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
  },
} as const;

function resolve(plan: WinogradPlan, op: string): Resolved {
  const g = plan.geometry;
  if (plan.tile !== 2 && plan.tile !== 4) throw new InvalidArgumentError(`${op}: tile ${plan.tile}; expected 2 or 4`);
  checkConvGeometry(g, op);
  if (g.groups !== 1 || g.kernelH !== 3 || g.kernelW !== 3 || g.strideH !== 1 || g.strideW !== 1 || g.dilationH !== 1 || g.dilationW !== 1) {
    throw new InvalidArgumentError(`${op}: one group of a 3x3 convolution at stride 1 and dilation 1 expected (got groups ${g.groups}, ${g.kernelH}x${g.kernelW}, stride ${g.strideH},${g.strideW}, dilation ${g.dilationH},${g.dilationW})`);
  }
  if (g.padH > 2 || g.padW > 2) throw new InvalidArgumentError(`${op}: padding ${g.padH},${g.padW}; expected 0, 1 or 2 (a 3x3 kernel)`);
  const xImageStride = plan.xImageStride ?? g.channels * g.height * g.width;
  const yImageStride = plan.yImageStride ?? g.outChannels * g.outH * g.outW;
  if (xImageStride < g.channels * g.height * g.width || yImageStride < g.outChannels * g.outH * g.outW) {
    throw new InvalidArgumentError(`${op}: image strides ${xImageStride}, ${yImageStride} are smaller than an image`);
  }
  return { ...g, tile: plan.tile, xImageStride, yImageStride, flipped: plan.flipped ?? false };
}

/**
 * The shape resolved, and the arrays checked against it: the input images, the output-side images
 * (y, or dy for the weight gradient) and the weights (w, or dw), each under its name in `names`.
 */
function checked(op: string, shape: WinogradPlan, x: Float32Array, ySide: Float32Array, wSide: Float32Array, names: [string, string, string], flippable: boolean): Resolved {
  const r = resolve(shape, op);
  if (r.flipped && !flippable) throw new InvalidArgumentError(`${op}: flipped kernels are for the forward only`);
  const want = [
    (r.batch - 1) * r.xImageStride + r.channels * r.height * r.width,
    (r.batch - 1) * r.yImageStride + r.outChannels * r.outH * r.outW,
    r.outChannels * r.channels * 9,
  ];
  [x, ySide, wSide].forEach((a, i) => {
    if (a.length < want[i]) throw new InvalidArgumentError(`${op}: ${names[i]} has ${a.length} elements; the shape needs ${want[i]}`);
  });
  return r;
}

function nativeOptions(r: Resolved, threads: number | undefined): NativeWinograd {
  const { tile, batch, channels, height, width, outChannels, padH, padW, xImageStride, yImageStride, flipped } = r;
  return { tile, batch, channels, height, width, outChannels, padH, padW, xImageStride, yImageStride, flipped, threads: resolveThreads(threads) };
}

/** left * mat * right^T for small dense matrices, in double precision. */
function sandwich(left: readonly (readonly number[])[], mat: number[][], right: readonly (readonly number[])[]): number[][] {
  const rows = left.length, inner = mat.length, innerCols = mat[0].length, cols = right.length;
  const t: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: innerCols }, (_, b) => {
      let s = 0;
      for (let a = 0; a < inner; a++) s += left[i][a] * mat[a][b];
      return s;
    }));
  return Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => {
      let s = 0;
      for (let b = 0; b < innerCols; b++) s += t[i][b] * right[j][b];
      return s;
    }));
}

function transpose(m: readonly (readonly number[])[]): number[][] {
  return m[0].map((_, j) => m.map((row) => row[j]));
}

/** The tiles of the output: [image, first output row, first output column] of each. */
function tilesOf(r: Resolved): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let n = 0; n < r.batch; n++) {
    for (let oy = 0; oy < r.outH; oy += r.tile) for (let ox = 0; ox < r.outW; ox += r.tile) out.push([n, oy, ox]);
  }
  return out;
}

/** The alpha x alpha input patch of channel c under output tile (oy, ox), zeros outside. */
function patch(x: Float32Array, r: Resolved, n: number, c: number, oy: number, ox: number): number[][] {
  const alpha = r.tile + 2;
  return Array.from({ length: alpha }, (_, a) =>
    Array.from({ length: alpha }, (_, b) => {
      const yy = oy - r.padH + a, xx = ox - r.padW + b;
      return yy >= 0 && yy < r.height && xx >= 0 && xx < r.width ? x[n * r.xImageStride + (c * r.height + yy) * r.width + xx] : 0;
    }));
}

/** The 3x3 kernel from input channel c to output channel k (see WinogradPlan.flipped). */
function kernelOf(w: Float32Array, k: number, c: number, r: Resolved): number[][] {
  if (r.flipped) {
    const at = (c * r.outChannels + k) * 9;
    return [0, 1, 2].map((a) => [0, 1, 2].map((b) => w[at + (2 - a) * 3 + 2 - b]));
  }
  const at = (k * r.channels + c) * 9;
  return [0, 1, 2].map((a) => [0, 1, 2].map((b) => w[at + a * 3 + b]));
}

/** The forward product in double precision by the same transforms (the native kernel's reference). */
export function winogradForwardReference(x: Float32Array, w: Float32Array, y: Float32Array, shape: WinogradPlan): void {
  const r = checked('winogradForward', shape, x, y, w, ['x', 'y', 'w'], true);
  const t = TRANSFORMS[r.tile];
  const alpha = r.tile + 2;
  const u = Array.from({ length: r.outChannels * r.channels }, (_, kc) => sandwich(t.g, kernelOf(w, Math.floor(kc / r.channels), kc % r.channels, r), t.g));
  for (const [n, oy, ox] of tilesOf(r)) {
    const v = Array.from({ length: r.channels }, (_, c) => sandwich(t.bt, patch(x, r, n, c, oy, ox), t.bt));
    for (let k = 0; k < r.outChannels; k++) {
      const m = Array.from({ length: alpha }, (_, i) =>
        Array.from({ length: alpha }, (_, j) => {
          let s = 0;
          for (let c = 0; c < r.channels; c++) s += u[k * r.channels + c][i][j] * v[c][i][j];
          return s;
        }));
      const out = sandwich(t.at, m, t.at);
      for (let a = 0; a < r.tile && oy + a < r.outH; a++) {
        for (let b = 0; b < r.tile && ox + b < r.outW; b++) y[n * r.yImageStride + (k * r.outH + oy + a) * r.outW + ox + b] = out[a][b];
      }
    }
  }
}

/** The weight gradient in double precision by the adjoint transforms (the native kernel's reference). */
export function winogradWeightGradientReference(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: WinogradPlan): void {
  const r = checked('winogradWeightGradient', shape, x, dy, dw, ['x', 'dy', 'dw'], false);
  const t = TRANSFORMS[r.tile];
  const alpha = r.tile + 2;
  const a = transpose(t.at);
  const du = Array.from({ length: r.outChannels * r.channels }, () => Array.from({ length: alpha }, () => new Array<number>(alpha).fill(0)));
  for (const [n, oy, ox] of tilesOf(r)) {
    const v = Array.from({ length: r.channels }, (_, c) => sandwich(t.bt, patch(x, r, n, c, oy, ox), t.bt));
    for (let k = 0; k < r.outChannels; k++) {
      const g = Array.from({ length: r.tile }, (_, i) =>
        Array.from({ length: r.tile }, (_, j) => (oy + i < r.outH && ox + j < r.outW ? dy[n * r.yImageStride + (k * r.outH + oy + i) * r.outW + ox + j] : 0)));
      const yhat = sandwich(a, g, a);
      for (let c = 0; c < r.channels; c++) {
        const acc = du[k * r.channels + c];
        for (let i = 0; i < alpha; i++) for (let j = 0; j < alpha; j++) acc[i][j] += yhat[i][j] * v[c][i][j];
      }
    }
  }
  const gt = transpose(t.g);
  for (let kc = 0; kc < du.length; kc++) {
    const k3 = sandwich(gt, du[kc], gt);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) dw[kc * 9 + i * 3 + j] = k3[i][j];
  }
}

/** y = conv3x3(x, w), stride 1: native when the addon is there, else the reference. */
export function winogradForward(x: Float32Array, w: Float32Array, y: Float32Array, shape: WinogradPlan, threads?: number): void {
  const core = nativeCore();
  if (!core) return winogradForwardReference(x, w, y, shape);
  core.winogradForward(x, w, y, nativeOptions(checked('winogradForward', shape, x, y, w, ['x', 'y', 'w'], true), threads));
}

/** dw = the weight gradient of a 3x3 stride-1 convolution: native when the addon is there, else the reference. */
export function winogradWeightGradient(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: WinogradPlan, threads?: number): void {
  const core = nativeCore();
  if (!core) return winogradWeightGradientReference(x, dy, dw, shape);
  core.winogradWeightGradient(x, dy, dw, nativeOptions(checked('winogradWeightGradient', shape, x, dy, dw, ['x', 'dy', 'dw'], false), threads));
}

/**
 * The default algorithm of float32 convolutions where none is given: OCTET_CONV from the
 * environment (winograd or direct), else winograd. Read when asked, so a run that records its
 * algorithm records what it used.
 */
export function defaultConvAlgorithm(): ConvAlgorithm {
  const text = process.env.OCTET_CONV;
  if (text === undefined || text === '' || text === 'winograd') return 'winograd';
  if (text === 'direct') return 'direct';
  throw new InvalidArgumentError(`OCTET_CONV is ${JSON.stringify(text)}; expected "winograd" (the default) or "direct"`);
}

/**
 * The tile a float32 convolution of one group (forward, or the input gradient as a forward
 * convolution) should use, or 0 for the direct product: only 3x3 kernels at stride 1 and
 * dilation 1 with padding up to 2, at least 16 input and output channels per group (below that
 * the transforms cost more than they save), with the addon loaded. The choice follows
 * measurements on ResNet-18's layers (docs/architecture.md): 4 x 4 tiles for outputs of at least
 * 8 x 8, 2 x 2 below.
 */
function winogradTile(g: ConvGeometry): 0 | 2 | 4 {
  if (!nativeCore()) return 0;
  if (g.kernelH !== 3 || g.kernelW !== 3 || g.strideH !== 1 || g.strideW !== 1 || g.dilationH !== 1 || g.dilationW !== 1) return 0;
  if (g.padH < 0 || g.padH > 2 || g.padW < 0 || g.padW > 2 || g.channels / g.groups < 16 || g.outChannels / g.groups < 16) return 0;
  return Math.min(g.outH, g.outW) >= 8 ? 4 : 2;
}

/**
 * The Winograd product for each group of convolution g (the same plan for every group: offset the
 * arrays to the group's first channel), or null where the algorithm is direct, the shape keeps the
 * direct product, or the batch does not fit the native kernels' 32-bit offsets (the padded images,
 * every tile's patch inside, and the output, below 2^31 floats).
 */
export function winogradPlan(g: ConvGeometry, algorithm: ConvAlgorithm): WinogradPlan | null {
  if (algorithm !== 'winograd') return null;
  const tile = winogradTile(g);
  if (!tile) return null;
  const plan: WinogradPlan = {
    tile, geometry: { ...g, channels: g.channels / g.groups, outChannels: g.outChannels / g.groups, groups: 1 },
    xImageStride: g.channels * g.height * g.width, yImageStride: g.outChannels * g.outH * g.outW,
  };
  const r = resolve(plan, 'winogradPlan');
  const padded = r.batch * r.channels * (Math.ceil(r.outH / r.tile) * r.tile + 2) * (Math.ceil(r.outW / r.tile) * r.tile + 2);
  return padded < 2 ** 31 && r.batch * r.yImageStride < 2 ** 31 ? plan : null;
}
