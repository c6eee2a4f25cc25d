/**
 * GEMM with a convolution's column matrix as B, read from the images while packing instead of
 * built by im2col first ("implicit im2col"): no column matrix is written or read back, which is
 * most of a convolution's memory traffic outside the GEMM itself.
 *
 * CONTRACT. B is im2colBatch's matrix of `batch` images (src/kernels/im2col.ts): K = C * KH * KW
 * rows, batch * OH * OW columns. C = op(A) * col (k = K), or op(A) * col^T with transB (n = K).
 * Each element of C is one chain in k order, as the SGEMM computes it: fused multiply-adds, or
 * with `unfused` a multiply then an add per step; so the result is bit for bit the SGEMM's on the
 * stored matrix (tested). Operands are floats or one-byte codes with the table of their values.
 * With `outImages`, C's columns go image by image into NCHW data: C(i, j) at
 * out[(j / plane) * imageStride + i * plane + j % plane] (plane = OH * OW of the result), so a
 * convolution's output needs no scatter; the native kernel writes it so directly when the plane is
 * a multiple of 32, and through a reused plane otherwise.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Format } from '../formats/index.js';
import { gemmReference } from './gemm.js';
import type { ColumnGeometry } from './conv_geometry.js';
import { im2colBatchReference, type ImagePlane } from './im2col.js';
import { nativeCore } from './native.js';
import { resolveThreads } from './threads.js';

/** A GEMM operand: floats, or one-byte codes with the value of every code (and their format's record). */
export type GemmInput = Float32Array | { codes: Uint8Array; table: Float32Array; format?: Format | null };

/** A convolution's column matrix, described instead of stored. */
export interface ColumnSource {
  /** The images: floats, or one-byte codes (code 0 must be +0, as in every format here). */
  x: ImagePlane;
  /** The value of every code, when x holds codes. */
  table?: Float32Array | null;
  /** The record of the codes' format (FP8 E5M2 codes decode 16 at a time by half conversion; the same values). */
  format?: Format | null;
  /** One group's geometry: channels is the group's input channels. */
  geometry: ColumnGeometry;
  batch: number;
  /** Elements from one image to the next in x (offset x to reach a group's first channel). */
  imageStride: number;
}

export interface ColumnsGemmOptions {
  transA?: boolean;
  transB?: boolean;
  /** A multiply then an add per step instead of a fused multiply-add (products not exact in float32). */
  unfused?: boolean;
  /** C's columns image by image: plane = columns per image, imageStride = elements between images. */
  outImages?: { plane: number; imageStride: number };
  threads?: number;
}

function checkColumns(m: number, n: number, k: number, b: ColumnSource, c: Float32Array, o: ColumnsGemmOptions): void {
  const g = b.geometry;
  const rows = g.channels * g.kernelH * g.kernelW;
  const columns = b.batch * g.outH * g.outW;
  const [wantRows, wantColumns] = o.transB ? [n, k] : [k, n];
  if (wantRows !== rows || wantColumns !== columns) {
    throw new InvalidArgumentError(
      `columnsGemm: the column matrix is ${rows} x ${columns} (${g.channels} channels x ${g.kernelH}x${g.kernelW} taps, ${b.batch} images of ` +
        `${g.outH}x${g.outW}); the GEMM ${m}x${n}x${k}${o.transB ? ' with transB' : ''} expects ${wantRows} x ${wantColumns}`,
    );
  }
  const imageNeeds = (b.batch - 1) * b.imageStride + g.channels * g.height * g.width;
  if (b.x.length < imageNeeds) throw new InvalidArgumentError(`columnsGemm: the images hold ${b.x.length} elements; the geometry needs ${imageNeeds}`);
  if (b.x instanceof Uint8Array && !(b.table instanceof Float32Array && b.table.length >= 256)) {
    throw new InvalidArgumentError('columnsGemm: images of codes need the table of their 256 values');
  }
  const out = o.outImages;
  const needs = out ? (m === 0 || n === 0 ? 0 : (n / out.plane - 1) * out.imageStride + m * out.plane) : m * n;
  if (out && (!Number.isInteger(out.plane) || out.plane < 1 || n % out.plane !== 0)) {
    throw new InvalidArgumentError(`columnsGemm: outImages.plane is ${out.plane}; expected a positive divisor of n = ${n}`);
  }
  if (c.length < needs) throw new InvalidArgumentError(`columnsGemm: C holds ${c.length} elements; the result needs ${needs}`);
}

function valuesOf(x: GemmInput | ImagePlane, table: Float32Array | null | undefined): Float32Array {
  if (x instanceof Float32Array) return x;
  const codes = x instanceof Uint8Array ? x : x.codes;
  const lut = x instanceof Uint8Array ? table! : x.table;
  return Float32Array.from(codes, (code) => lut[code]);
}

/** Row-major [m x n] into the images' layout. */
function scatterToImages(rows: Float32Array, m: number, n: number, c: Float32Array, plane: number, imageStride: number): void {
  for (let i = 0; i < m; i++) {
    for (let q = 0; q < n / plane; q++) {
      const from = i * n + q * plane;
      c.set(rows.subarray(from, from + plane), q * imageStride + i * plane);
    }
  }
}

/**
 * The plain reference: im2col into a stored matrix, decode, sum each element in k order (a
 * rounded product, then a rounded sum), and place it. It equals the fast path bit for bit with
 * `unfused`, or where every product is exact in float32.
 */
export function columnsGemmReference(m: number, n: number, k: number, a: GemmInput, b: ColumnSource, c: Float32Array, o: ColumnsGemmOptions = {}): Float32Array {
  checkColumns(m, n, k, b, c, o);
  const g = b.geometry;
  const columns = b.x instanceof Uint8Array ? new Uint8Array(g.channels * g.kernelH * g.kernelW * b.batch * g.outH * g.outW) : new Float32Array(g.channels * g.kernelH * g.kernelW * b.batch * g.outH * g.outW);
  im2colBatchReference(b.x, columns, g, b.batch, b.imageStride);
  const result = o.outImages ? new Float32Array(m * n) : c;
  const transA = o.transA ?? false;
  const transB = o.transB ?? false;
  gemmReference({
    transA, transB, m, n, k, alpha: 1, a: valuesOf(a, null), lda: transA ? m : k, b: valuesOf(columns, b.table), ldb: transB ? k : n, beta: 0, c: result, ldc: n,
  });
  if (o.outImages) scatterToImages(result, m, n, c, o.outImages.plane, o.outImages.imageStride);
  return c;
}

/** A reused row-major result for outputs whose planes the native kernel cannot place itself. */
let staging = new Float32Array(0);

/** C = op(A) * col (or col^T); see the contract above. */
export function columnsGemm(m: number, n: number, k: number, a: GemmInput, b: ColumnSource, c: Float32Array, o: ColumnsGemmOptions = {}): Float32Array {
  const native = nativeCore();
  if (!native) return columnsGemmReference(m, n, k, a, b, c, o);
  checkColumns(m, n, k, b, c, o);
  const transA = o.transA ?? false;
  if (!(a instanceof Float32Array) && a.codes.length < m * k) throw new InvalidArgumentError(`columnsGemm: A holds ${a.codes.length} codes; expected ${m * k}`);
  if (a instanceof Float32Array && a.length < m * k) throw new InvalidArgumentError(`columnsGemm: A holds ${a.length} values; expected ${m * k}`);
  const out = o.outImages;
  const direct = !out || out.plane % 32 === 0;
  if (!direct && staging.length < m * n) staging = new Float32Array(m * n);
  const target = direct ? c : staging;
  const aMatrix = a instanceof Float32Array ? { data: a } : { data: a.codes, table: a.table, format: a.format };
  native.sgemmColumns(aMatrix, { data: b.x, table: b.table, format: b.format }, target, {
    transA, transB: o.transB ?? false, m, n, k, lda: transA ? m : k, ldc: direct && out ? out.plane : n, geometry: b.geometry, imageStride: b.imageStride,
    cPlane: direct && out ? out.plane : 0, cImageStride: direct && out ? out.imageStride : 0, unfused: o.unfused ?? false, threads: resolveThreads(o.threads),
  });
  if (!direct) scatterToImages(staging, m, n, c, out!.plane, out!.imageStride);
  return c;
}
