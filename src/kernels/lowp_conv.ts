/**
 * Low-precision convolution: the forward pass and its two backward GEMMs, each one
 * low-precision GEMM per group over the whole batch, with the operand, accumulation and output
 * options of src/kernels/lowp_gemm.ts and its bit-for-bit contract.
 *
 * CONTRACT. Tensors are NCHW; weights [OC, C/groups, KH, KW]; P = OH * OW; for group g,
 * K = (C/groups) * KH * KW, and col_g is the im2col matrix of the group's input channels over
 * the batch: K rows (t = (c * KH + i) * KW + j), N * P columns (column n * P + p for image n,
 * output position p), zero where the window reads padding.
 * - forward:       Y_g [OCg x NP] = W_g [OCg x K] * col_g [K x NP]
 * - weight grad:  dW_g [OCg x K]  = dY_g [OCg x NP] * col_g^T
 * - input grad:   dX is the forward convolution, stride 1, of the stride-dilated output gradient
 *   (each dY value placed at (oh * SH, ow * SW), offset so that window (i, j) of input pixel
 *   (h, w) reads the output that pixel fed) with the rotated weights W'[c, (oc * KH + i) * KW + j]
 *   = W[oc, c, KH-1-i, KW-1-j]: dXcol_g [C/groups x N*H*W] = W'_g * col(dY)_g, so every sum of
 *   products, also for the input gradient, runs in the emulated accumulator. (The fast path
 *   computes strided input gradients phase by phase, leaving out the dilated image's exact zeros,
 *   where that gives the same bits: see phasedInputGradient.)
 * Stochastic rounding: group g uses stream key streamKey(seedKey(seed), g) (src/formats/random.ts),
 * and the GEMM's own cell keys within it. Output rounding indexes the group GEMM's elements.
 * Scales: results are divided by the product of the two operands' scales.
 */
import { InvalidArgumentError } from '../errors.js';
import { decodeTable, resolveFormat, seedKey, streamKey } from '../formats/index.js';
import { checkConvGeometry, groupColumns, type ColumnGeometry, type ConvGeometry } from './conv_geometry.js';
import { im2colBatch, im2colBatchReference, type ImagePlane } from './im2col.js';
import {
  decodeOperand,
  lowpGemm,
  lowpGemmColumns,
  nativeOperand,
  runsOnSgemm,
  lowpGemmDecoded,
  lowpGemmDecodedReference,
  type DecodedOperand,
  type LowpGemmOptions,
  type LowpOperand,
} from './lowp_gemm.js';
import { freshArray, takeBuffer, takeZeroed } from './buffer_pool.js';
import { absMax } from './quant_stats.js';
import { moveRows, moveRowsReference, rotatedKernel, rotatedKernelReference, scatterPhase } from './conv_layout.js';
import { nativeCore } from './native.js';

interface Backend {
  fast: boolean;
  moveRows: typeof moveRows;
  rotatedKernel: typeof rotatedKernel;
  im2colBatch: (x: ImagePlane, col: ImagePlane, g: ColumnGeometry, batch: number, imageStride: number) => void;
  gemm: (m: number, n: number, k: number, a: DecodedOperand, b: DecodedOperand, o: LowpGemmOptions) => Float32Array;
}

const FAST: Backend = { fast: true, moveRows, rotatedKernel, im2colBatch, gemm: lowpGemmDecoded };
const REFERENCE: Backend = { fast: false, moveRows: moveRowsReference, rotatedKernel: rotatedKernelReference, im2colBatch: im2colBatchReference, gemm: lowpGemmDecodedReference };

function backend(reference: boolean): Backend {
  return reference || !nativeCore() ? REFERENCE : FAST;
}

/** What one GEMM operand is handed over as: a LowpOperand (codes or floats) or decoded values. */
type GemmOperand = { kind: 'lowp'; op: LowpOperand } | { kind: 'decoded'; op: DecodedOperand };

/**
 * An operand as the convolution rearranges it (im2col, gathers, rotation): a plane of floats or,
 * on the fast path, of one-byte codes, which is 4x less to move and which the GEMM decodes while
 * packing; `operand` turns a rearranged plane back into a GEMM operand.
 */
interface Arranged {
  plane: ImagePlane;
  operand(plane: ImagePlane): GemmOperand;
}

function arrange(x: LowpOperand, name: string, elements: number, b: Backend): Arranged {
  if (b.fast && !(x instanceof Float32Array) && x.codes instanceof Uint8Array && resolveFormat(x.format).storageBytes === 1) {
    if (x.codes.length !== elements) throw new InvalidArgumentError(`lowpConv2d: ${name} holds ${x.codes.length} codes; expected ${elements}`);
    const { format, scale } = x;
    return { plane: x.codes, operand: (p) => ({ kind: 'lowp', op: { codes: p as Uint8Array, format, scale } }) };
  }
  const decoded = decodeOperand(x, name, elements, b.fast);
  return { plane: decoded.values, operand: (p) => ({ kind: 'decoded', op: { ...decoded, values: p as Float32Array } }) };
}

function asDecoded(x: GemmOperand, fast: boolean): DecodedOperand {
  return x.kind === 'decoded' ? x.op : decodeOperand(x.op, 'operand', x.op instanceof Float32Array ? x.op.length : x.op.codes.length, fast);
}

/** The operand as lowpGemm takes it without decoding codes into a full float copy, or null. */
function undecoded(x: GemmOperand): LowpOperand | null {
  if (x.kind === 'lowp') return x.op;
  // Plain float32 values (SFP8's output gradient, say) are the same operand as the array itself.
  const plain = x.op.scale === 1 && x.op.significandBits === 24 && x.op.quantumExponent === -149;
  return plain ? x.op.values : null;
}

function runGemm(b: Backend, m: number, n: number, k: number, A: GemmOperand, B: GemmOperand, o: LowpGemmOptions): Float32Array {
  if (A.kind === 'lowp' && B.kind === 'lowp') return lowpGemm(m, n, k, A.op, B.op, o);
  // Codes beside float32 values: the GEMM decodes the codes while packing.
  const a = b.fast ? undecoded(A) : null;
  const bOp = b.fast ? undecoded(B) : null;
  if (a && bOp) return lowpGemm(m, n, k, a, bOp, o);
  return b.gemm(m, n, k, asDecoded(A, b.fast), asDecoded(B, b.fast), o);
}

/** A zeroed plane of the same kind (floats or codes). */
function alloc(like: ImagePlane, n: number): ImagePlane {
  return like instanceof Uint8Array ? new Uint8Array(n) : new Float32Array(n);
}

/**
 * Reused planes for what every call rebuilds in full (column matrices, gathered output
 * gradients): allocating them afresh costs tens of megabytes of zeroing and page faults per
 * convolution. One buffer per slot and kind, grown on demand; the contents are stale, so only
 * planes that are written completely come from here. The functions below finish with a slot
 * before they return and never call each other, so sharing is safe (JavaScript runs one call
 * at a time).
 */
const scratchPlanes = new Map<string, ImagePlane>();
const FLOATS = new Float32Array(0);

function scratch(slot: 'columns' | 'gathered' | 'result', like: ImagePlane, n: number): ImagePlane {
  const key = `${slot}:${like instanceof Uint8Array ? 'codes' : 'floats'}`;
  let buffer = scratchPlanes.get(key);
  if (!buffer || buffer.length < n) {
    buffer = alloc(like, n);
    scratchPlanes.set(key, buffer);
  }
  return buffer.subarray(0, n);
}

function groupOptions(options: LowpGemmOptions, group: number): LowpGemmOptions {
  const base = options.streamKey ?? seedKey(options.seed ?? 0);
  return { ...options, streamKey: streamKey(base, group) };
}

/**
 * col_g for images [n0, n0 + count) side by side: [K x count*P] (every image by default); with
 * `c0`/`cc` only the rows of the group's input channels [c0, c0 + cc): [cc*KH*KW x count*P].
 */
function batchColumns(
  b: Backend, x: ImagePlane, s: ConvGeometry, group: number, height: number, width: number, geometry: ColumnGeometry, n0 = 0, count = s.batch,
  c0 = 0, cc = s.channels / s.groups,
): ImagePlane {
  const cg = s.channels / s.groups;
  const plane = geometry.outH * geometry.outW;
  const k = cc * geometry.kernelH * geometry.kernelW;
  const imageStride = s.channels * height * width;
  // im2col writes every element (zeros where the window reads padding).
  const cols = scratch('columns', x, k * count * plane);
  b.im2colBatch(x.subarray(n0 * imageStride + (group * cg + c0) * height * width), cols, { ...geometry, channels: cc }, count, imageStride);
  return cols;
}

/** Where the GEMM's column matrix is a rearranged plane of the images. */
interface ColumnsAt {
  planes: Arranged;
  image: ImagePlane;
  s: ConvGeometry;
  group: number;
  height: number;
  width: number;
  geometry: ColumnGeometry;
}

/**
 * Whether the GEMMs read their columns straight from the images (no column matrix is built, so
 * chunks need not bound one): on the SGEMM (fp32 accumulation without chunks), or with the
 * columns transposed (the weight gradient) on the emulated-accumulation kernel too; with the
 * addon, and floats or one-byte codes on both sides.
 */
function readsColumnsInPlace(b: Backend, A: GemmOperand, X: Arranged, options: LowpGemmOptions): boolean {
  return b.fast && (runsOnSgemm(options) || options.transB === true) && nativeOperand(A.op) !== null && nativeOperand(X.operand(X.plane).op) !== null;
}

/**
 * A [m x ...] times col_g of images [n0, n0 + count) (channels [c0, c0 + cc) of the group), or
 * times its transpose with options.transB: read in place where readsColumnsInPlace, else built by
 * batchColumns. The same bits either way.
 */
function columnsProduct(
  b: Backend, m: number, n: number, k: number, A: GemmOperand, at: ColumnsAt, options: LowpGemmOptions, n0 = 0, count = at.s.batch, c0 = 0,
  cc = at.s.channels / at.s.groups,
): Float32Array {
  const { planes, image, s, group, height, width, geometry } = at;
  if (readsColumnsInPlace(b, A, planes, options)) {
    const imageStride = s.channels * height * width;
    const x = nativeOperand(planes.operand(image.subarray(n0 * imageStride + (group * (s.channels / s.groups) + c0) * height * width)).op)!;
    const result = lowpGemmColumns(m, n, k, nativeOperand(A.op)!, x, { geometry: { ...geometry, channels: cc }, batch: count, imageStride }, options);
    if (result) return result;
  }
  return runGemm(b, m, n, k, A, planes.operand(batchColumns(b, image, s, group, height, width, geometry, n0, count, c0, cc)), options);
}

/**
 * Column matrices are built for chunks of images of at most this many bytes, so they stay in
 * cache-sized buffers instead of holding the whole batch. The GEMM's columns are independent
 * sums, so chunking changes no bit, except where a result depends on its column index: the
 * stochastic draws (keyed by (i, j)) and stochastic output rounding (keyed by element); those run
 * over the whole batch at once.
 */
let columnBudget = 8 << 20;

/** Set the column buffer budget in bytes (tests and tuning); returns the previous one. */
export function setConvColumnBudget(bytes: number): number {
  if (!(bytes >= 1)) throw new InvalidArgumentError(`setConvColumnBudget: ${bytes} bytes; expected at least 1`);
  const previous = columnBudget;
  columnBudget = bytes;
  return previous;
}

/** Stochastic draws or stochastic output rounding: results depend on their row and column index. */
function keyedByPosition(options: LowpGemmOptions): boolean {
  return options.rounding === 'stochastic' || options.output?.rounding === 'stochastic';
}

/** How many of `total` units (images, channels) of `bytesPerUnit` each fit the column budget (at least one). */
function unitsPerChunk(total: number, bytesPerUnit: number): number {
  return Math.max(1, Math.min(total, Math.floor(columnBudget / bytesPerUnit)));
}

function imagesPerChunk(options: LowpGemmOptions, batch: number, bytesPerImage: number): number {
  return keyedByPosition(options) ? batch : unitsPerChunk(batch, bytesPerImage);
}

/** Y = conv2d(x, w), every output a low-precision GEMM element. x [N,C,H,W], w [OC,C/g,KH,KW]. */
export function lowpConv2dForward(x: LowpOperand, w: LowpOperand, s: ConvGeometry, options: LowpGemmOptions = {}, reference = false): Float32Array {
  checkConvGeometry(s, 'lowpConv2dForward');
  const b = backend(reference);
  const X = arrange(x, 'x', s.batch * s.channels * s.height * s.width, b);
  const cg = s.channels / s.groups;
  const ocg = s.outChannels / s.groups;
  const k = cg * s.kernelH * s.kernelW;
  const W = arrange(w, 'w', s.outChannels * k, b);
  const plane = s.outH * s.outW;
  // Every element is written below.
  const out = takeBuffer(s.batch * s.outChannels * plane);
  // Chunks bound the column matrix, or where none is built, the result plane.
  const inPlace = readsColumnsInPlace(b, W.operand(W.plane), X, options);
  const perChunk = imagesPerChunk(options, s.batch, (inPlace ? ocg * 4 : k * X.plane.BYTES_PER_ELEMENT) * plane);
  const at: ColumnsAt = { planes: X, image: X.plane, s, group: 0, height: s.height, width: s.width, geometry: groupColumns(s) };
  for (let g = 0; g < s.groups; g++) {
    for (let n0 = 0; n0 < s.batch; n0 += perChunk) {
      const count = Math.min(perChunk, s.batch - n0);
      const cnp = count * plane;
      // Y_g of these images goes to a reused plane (overwritten, then scattered into NCHW).
      const y = columnsProduct(b, ocg, cnp, k, W.operand(W.plane.subarray(g * ocg * k, (g + 1) * ocg * k)), { ...at, group: g }, {
        ...groupOptions(options, g),
        out: scratch('result', FLOATS, ocg * cnp) as Float32Array,
      }, n0, count);
      b.moveRows(y, out, { n0, count, channels: s.outChannels, c0: g * ocg, rows: ocg, plane }, 'scatter');
    }
  }
  return out;
}

/** dW = dY * col^T per group, summed over the batch inside the GEMM. */
export function lowpConv2dBackwardWeight(dy: LowpOperand, x: LowpOperand, s: ConvGeometry, options: LowpGemmOptions = {}, reference = false): Float32Array {
  checkConvGeometry(s, 'lowpConv2dBackwardWeight');
  const b = backend(reference);
  const plane = s.outH * s.outW;
  const np = s.batch * plane;
  const DY = arrange(dy, 'dy', s.batch * s.outChannels * plane, b);
  const X = arrange(x, 'x', s.batch * s.channels * s.height * s.width, b);
  const cg = s.channels / s.groups;
  const ocg = s.outChannels / s.groups;
  const k = cg * s.kernelH * s.kernelW;
  const dw = freshArray(s.outChannels * k);
  const taps = s.kernelH * s.kernelW;
  // Columns of dW for chunks of input channels: each dW element is the same sum over the batch
  // whichever columns are computed with it, so chunking changes no bit, except where draws are
  // keyed by column index; those run over all channels at once.
  const inPlace = readsColumnsInPlace(b, DY.operand(DY.plane), X, { ...options, transB: true });
  const perChunk = keyedByPosition(options) || inPlace ? cg : unitsPerChunk(cg, taps * np * X.plane.BYTES_PER_ELEMENT);
  const at: ColumnsAt = { planes: X, image: X.plane, s, group: 0, height: s.height, width: s.width, geometry: groupColumns(s) };
  for (let g = 0; g < s.groups; g++) {
    // dY_g as [OCg x N*P], every element written below
    const dyg = scratch('gathered', DY.plane, ocg * np);
    b.moveRows(dyg, DY.plane, { n0: 0, count: s.batch, channels: s.outChannels, c0: g * ocg, rows: ocg, plane }, 'gather');
    const groupOut = dw.subarray(g * ocg * k, (g + 1) * ocg * k);
    for (let c0 = 0; c0 < cg; c0 += perChunk) {
      const cc = Math.min(perChunk, cg - c0);
      const kc = cc * taps;
      const whole = cc === cg;
      const result = columnsProduct(b, ocg, kc, np, DY.operand(dyg), { ...at, group: g }, {
        ...groupOptions(options, g), transB: true, out: whole ? groupOut : (scratch('result', FLOATS, ocg * kc) as Float32Array),
      }, 0, s.batch, c0, cc);
      if (!whole) for (let oc = 0; oc < ocg; oc++) groupOut.set(result.subarray(oc * kc, (oc + 1) * kc), oc * k + c0 * taps);
    }
  }
  return dw;
}

/**
 * Whether products that are exactly zero may be left out of every sum without changing a bit.
 * Adding a zero leaves a running sum as it is unless the sum is -0, and it never is where:
 * - float32 accumulation on the SGEMM: a sum starts at +0, an exact cancellation rounds to +0,
 *   and a sum of rounded products (unfused steps) is -0 only if both parts are. A fused step
 *   could round a product too small for float32 to -0, so fused steps qualify only where no
 *   product can be that small (the operands' smallest quanta multiply to at least float32's);
 * - an emulated accumulator (or chunked float32) with nearest rounding, where every product is a
 *   multiple of the accumulator's smallest subnormal (the operands' quanta multiply to at least
 *   it): every partial sum is then a multiple of it too, so none rounds to zero, and a zero sum is
 *   an exact cancellation, +0. Chunks are counted in products, so the shorter sums keep the
 *   longer one's chunk boundaries (chunkEnds, see phaseChunkEnds).
 * Not so where draws are keyed by the product's index (stochastic accumulation) or the result's
 * index keys its rounding (stochastic output), or where the caller already set chunkEnds.
 */
function zeroTermsSkippable(options: LowpGemmOptions, a: Arranged, b: Arranged): boolean {
  if (options.output?.rounding === 'stochastic' || options.chunkEnds) return false;
  const x = nativeOperand(a.operand(a.plane).op);
  const y = nativeOperand(b.operand(b.plane).op);
  if (!x || !y) return false;
  if (runsOnSgemm(options)) {
    const fused = x.significandBits + y.significandBits <= 24;
    return !fused || x.quantumExponent + y.quantumExponent >= -149;
  }
  if ((options.rounding ?? 'nearest') !== 'nearest') return false;
  const f = resolveFormat(options.accumulation ?? 'fp32');
  return x.quantumExponent + y.quantumExponent >= Math.max(Math.log2(f.minSubnormal), -126);
}

/**
 * The chunk ends of one phase's sums: its terms are the contract's terms k = (oc * KH + i0 + a *
 * SH) * KW + j0 + t * SW (taps a < tapsH, t < tapsW) in the same order, so chunk c of the
 * contract (its terms k in [c L, (c + 1) L)) ends after the phase terms with k below (c + 1) L.
 */
function phaseChunkEnds(
  ocg: number, kh: number, kw: number, i0: number, j0: number, sh: number, sw: number, tapsH: number, tapsW: number, chunk: number,
): Int32Array {
  const total = ocg * kh * kw;
  const ends = new Int32Array(Math.ceil(total / chunk));
  let kept = 0;
  let c = 0;
  for (let oc = 0; oc < ocg; oc++) {
    for (let a = 0; a < tapsH; a++) {
      for (let t = 0; t < tapsW; t++) {
        const k = (oc * kh + i0 + a * sh) * kw + j0 + t * sw;
        while (k >= (c + 1) * chunk) ends[c++] = kept;
        kept++;
      }
    }
  }
  while (c < ends.length) ends[c++] = kept;
  return ends;
}

/** Whether every value of an operand is finite (a zero times Inf or NaN would not be zero). */
function finiteOperand(x: Arranged): boolean {
  const op = x.operand(x.plane);
  if (op.kind === 'decoded') return Number.isFinite(absMax(op.op.values));
  if (op.op instanceof Float32Array) return Number.isFinite(absMax(op.op));
  const table = decodeTable(resolveFormat(op.op.format));
  const seen = new Uint8Array(256);
  const codes = op.op.codes;
  for (let i = 0; i < codes.length; i++) seen[codes[i] & 255] = 1;
  return seen.every((present, code) => !present || Number.isFinite(table[code]));
}

/**
 * The input gradient of a strided convolution (dilation 1) without the dilated image's zeros.
 * Input pixel h reads, in the contract's dilated image, a sample of dY only at the taps i' with
 * i' = (padD - h) mod stride (padD = KH - 1 - padH), so the pixels of one phase (h mod stride,
 * w mod stride) are a stride-1 convolution of dY itself with the sub-kernel of those taps, in
 * the contract's order: oc, then tap row, then tap column. Every term left out is an exact zero
 * (a zero of the dilated image, or padding, times a finite weight), so where
 * zeroTermsSkippable holds (float32 accumulation on the SGEMM, or an emulated accumulator with
 * nearest rounding and products on its subnormal grid, chunks mapped by phaseChunkEnds) the bits
 * are the contract's (tested against the dilated reference);
 * the GEMMs do a quarter of the work at stride 2. Pixels no tap reaches get zero.
 */
function phasedInputGradient(b: Backend, DY: Arranged, W: Arranged, s: ConvGeometry, options: LowpGemmOptions): Float32Array {
  const cg = s.channels / s.groups;
  const ocg = s.outChannels / s.groups;
  const pixels = s.height * s.width;
  const dx = takeZeroed(s.batch * s.channels * pixels);
  const padDH = s.kernelH - 1 - s.padH;
  const padDW = s.kernelW - 1 - s.padW;
  const mod = (a: number, m: number) => ((a % m) + m) % m;
  const inPlace = readsColumnsInPlace(b, W.operand(W.plane), DY, options);
  // dY as the images of the phase convolutions: its channels, its height and width.
  const shape: ConvGeometry = { ...s, channels: s.outChannels, outChannels: s.channels, height: s.outH, width: s.outW, strideH: 1, strideW: 1 };
  for (let ph = 0; ph < s.strideH; ph++) {
    for (let pw = 0; pw < s.strideW; pw++) {
      const rows = Math.ceil((s.height - ph) / s.strideH);
      const cols = Math.ceil((s.width - pw) / s.strideW);
      const i0 = mod(padDH - ph, s.strideH);
      const j0 = mod(padDW - pw, s.strideW);
      const tapsH = i0 < s.kernelH ? Math.ceil((s.kernelH - i0) / s.strideH) : 0;
      const tapsW = j0 < s.kernelW ? Math.ceil((s.kernelW - j0) / s.strideW) : 0;
      if (rows < 1 || cols < 1 || tapsH === 0 || tapsW === 0) continue;
      // Output (u, v) of the phase, tap (a, c), reads dY row u + a + (ph + i0 - padDH) / strideH.
      const geometry: ColumnGeometry = {
        channels: ocg, height: s.outH, width: s.outW, kernelH: tapsH, kernelW: tapsW, strideH: 1, strideW: 1,
        padH: -(ph + i0 - padDH) / s.strideH, padW: -(pw + j0 - padDW) / s.strideW, dilationH: 1, dilationW: 1, outH: rows, outW: cols,
      };
      const k = ocg * tapsH * tapsW;
      const phasePixels = rows * cols;
      const at: ColumnsAt = { planes: DY, image: DY.plane, s: shape, group: 0, height: s.outH, width: s.outW, geometry };
      const perChunk = imagesPerChunk(options, s.batch, (inPlace ? cg * 4 : k * DY.plane.BYTES_PER_ELEMENT) * phasePixels);
      // Chunked sums keep the contract's chunk boundaries.
      const chunkEnds = options.chunk ? phaseChunkEnds(ocg, s.kernelH, s.kernelW, i0, j0, s.strideH, s.strideW, tapsH, tapsW, options.chunk) : undefined;
      for (let g = 0; g < s.groups; g++) {
        const sub = subKernel(W.plane, g, ocg, cg, s.kernelH, s.kernelW, i0, j0, s.strideH, s.strideW, tapsH, tapsW);
        for (let n0 = 0; n0 < s.batch; n0 += perChunk) {
          const count = Math.min(perChunk, s.batch - n0);
          const result = columnsProduct(b, cg, count * phasePixels, k, W.operand(sub), { ...at, group: g }, {
            ...groupOptions(options, g), chunkEnds, out: scratch('result', FLOATS, cg * count * phasePixels) as Float32Array,
          }, n0, count);
          scatterPhase(result, dx, { n0, count, channels: s.channels, c0: g * cg, rows: cg, height: s.height, width: s.width, ph, pw, strideH: s.strideH, strideW: s.strideW, phaseRows: rows, phaseCols: cols });
        }
      }
    }
  }
  return dx;
}

/**
 * Group g's rotated kernel restricted to one phase's taps: [C/groups x OCg * tapsH * tapsW],
 * element (c, (oc * tapsH + a) * tapsW + t) = W[g * OCg + oc, c, KH-1-(i0 + a*SH), KW-1-(j0 + t*SW)].
 */
function subKernel(
  w: ImagePlane, g: number, ocg: number, cg: number, kh: number, kw: number, i0: number, j0: number, sh: number, sw: number, tapsH: number, tapsW: number,
): ImagePlane {
  const k = ocg * tapsH * tapsW;
  const sub = alloc(w, cg * k);
  for (let c = 0; c < cg; c++) {
    for (let oc = 0; oc < ocg; oc++) {
      const from = ((g * ocg + oc) * cg + c) * kh * kw;
      for (let a = 0; a < tapsH; a++) {
        for (let t = 0; t < tapsW; t++) sub[c * k + (oc * tapsH + a) * tapsW + t] = w[from + (kh - 1 - (i0 + a * sh)) * kw + (kw - 1 - (j0 + t * sw))];
      }
    }
  }
  return sub;
}

/** dX = the stride-1 convolution of the dilated output gradient with the rotated weights. */
export function lowpConv2dBackwardData(dy: LowpOperand, w: LowpOperand, s: ConvGeometry, options: LowpGemmOptions = {}, reference = false): Float32Array {
  checkConvGeometry(s, 'lowpConv2dBackwardData');
  const b = backend(reference);
  const plane = s.outH * s.outW;
  const DY = arrange(dy, 'dy', s.batch * s.outChannels * plane, b);
  const cg = s.channels / s.groups;
  const ocg = s.outChannels / s.groups;
  const taps = s.kernelH * s.kernelW;
  const W = arrange(w, 'w', s.outChannels * cg * taps, b);
  if (b.fast && (s.strideH > 1 || s.strideW > 1) && s.dilationH === 1 && s.dilationW === 1 && zeroTermsSkippable(options, DY, W) && finiteOperand(W)) {
    return phasedInputGradient(b, DY, W, s, options);
  }
  // The dilated, offset gradient image: rows H + DH*(KH-1), columns W + DW*(KW-1); window tap
  // (i, j) of input pixel (h, w) reads row h + i*DH, column w + j*DW.
  const padH = s.dilationH * (s.kernelH - 1) - s.padH;
  const padW = s.dilationW * (s.kernelW - 1) - s.padW;
  const rows = s.height + s.dilationH * (s.kernelH - 1);
  const cols = s.width + s.dilationW * (s.kernelW - 1);
  // Stride 1 with padding <= the dilated kernel's reach: the dilated image is dY zero-padded by
  // (padH, padW), which im2col does itself; otherwise build it.
  const direct = s.strideH === 1 && s.strideW === 1 && padH >= 0 && padW >= 0;
  let image: ImagePlane;
  let imageH: number;
  let imageW: number;
  if (direct) {
    image = DY.plane;
    imageH = s.outH;
    imageW = s.outW;
  } else {
    image = alloc(DY.plane, s.batch * s.outChannels * rows * cols);
    imageH = rows;
    imageW = cols;
    for (let nc = 0; nc < s.batch * s.outChannels; nc++) {
      for (let oh = 0; oh < s.outH; oh++) {
        const r = oh * s.strideH + padH;
        if (r < 0 || r >= rows) continue;
        for (let ow = 0; ow < s.outW; ow++) {
          const q = ow * s.strideW + padW;
          if (q >= 0 && q < cols) image[(nc * rows + r) * cols + q] = DY.plane[(nc * s.outH + oh) * s.outW + ow];
        }
      }
    }
  }
  const shape: ConvGeometry = {
    ...s, channels: s.outChannels, outChannels: s.channels, height: imageH, width: imageW, strideH: 1, strideW: 1,
    padH: direct ? padH : 0, padW: direct ? padW : 0, outH: s.height, outW: s.width,
  };
  const geometry: ColumnGeometry = {
    channels: ocg, height: imageH, width: imageW, kernelH: s.kernelH, kernelW: s.kernelW, strideH: 1, strideW: 1,
    padH: shape.padH, padW: shape.padW, dilationH: s.dilationH, dilationW: s.dilationW, outH: s.height, outW: s.width,
  };
  const pixels = s.height * s.width;
  const k = ocg * taps;
  // Every element is written below.
  const dx = takeBuffer(s.batch * s.channels * pixels);
  const inPlace = readsColumnsInPlace(b, W.operand(W.plane), DY, options);
  const perChunk = imagesPerChunk(options, s.batch, (inPlace ? cg * 4 : k * image.BYTES_PER_ELEMENT) * pixels);
  const at: ColumnsAt = { planes: DY, image, s: shape, group: 0, height: imageH, width: imageW, geometry };
  for (let g = 0; g < s.groups; g++) {
    // W'_g [C/groups x K]: W'[c, (oc*KH + i)*KW + j] = W[oc, c, KH-1-i, KW-1-j]
    const rotated = b.rotatedKernel(W.plane, g, ocg, cg, taps);
    for (let n0 = 0; n0 < s.batch; n0 += perChunk) {
      const count = Math.min(perChunk, s.batch - n0);
      const cpix = count * pixels;
      const result = columnsProduct(b, cg, cpix, k, W.operand(rotated), { ...at, group: g }, { ...groupOptions(options, g), out: scratch('result', FLOATS, cg * cpix) as Float32Array }, n0, count);
      b.moveRows(result, dx, { n0, count, channels: s.channels, c0: g * cg, rows: cg, plane: pixels }, 'scatter');
    }
  }
  return dx;
}
