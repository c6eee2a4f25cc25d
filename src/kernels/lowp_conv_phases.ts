/**
 * The input gradient of a strided low-precision convolution phase by phase (see
 * phasedInputGradient): the same bits as the contract's stride-1 convolution of the dilated output
 * gradient (src/kernels/lowp_conv.ts), without the dilated image's zeros, where leaving exact zero
 * terms out of every sum changes no bit.
 */
import { decodeTable, resolveFormat } from '../formats/index.js';
import type { ColumnGeometry, ConvGeometry } from './conv_geometry.js';
import type { ImagePlane } from './im2col.js';
import { alignedOf, runsOnSgemm, nativeOperand, type LowpGemmOptions } from './lowp_gemm.js';
import { takeZeroed } from './buffer_pool.js';
import { absMax } from './quant_stats.js';
import { scatterPhase } from './conv_layout.js';
import {
  FLOATS, alloc, columnsProduct, groupOptions, imagesPerChunk, readsColumnsInPlace, scratch, type Arranged, type Backend, type ColumnsAt,
} from './lowp_conv_columns.js';

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
export function zeroTermsSkippable(options: LowpGemmOptions, a: Arranged, b: Arranged): boolean {
  // Aligned accumulators group products by position: leaving zeros out would move the groups.
  if (options.output?.rounding === 'stochastic' || options.chunkEnds || alignedOf(options.accumulation)) return false;
  const x = nativeOperand(a.operand(a.plane).op);
  const y = nativeOperand(b.operand(b.plane).op);
  if (!x || !y) return false;
  if (runsOnSgemm(options)) {
    const fused = x.significandBits + y.significandBits <= 24;
    return !fused || x.quantumExponent + y.quantumExponent >= -149;
  }
  if ((options.rounding ?? 'nearest') !== 'nearest') return false;
  const f = resolveFormat((options.accumulation as string | undefined) ?? 'fp32');
  return x.quantumExponent + y.quantumExponent >= Math.max(Math.log2(f.minSubnormal), -126);
}

/**
 * The chunk ends of one phase's sums: its terms are the contract's terms k = (oc * KH + i0 + a *
 * SH) * KW + j0 + t * SW (taps a < tapsH, t < tapsW) in the same order, so chunk c of the
 * contract (its terms k in [c L, (c + 1) L)) ends after the phase terms with k below (c + 1) L.
 */
export function phaseChunkEnds(
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
export function finiteOperand(x: Arranged): boolean {
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
export function phasedInputGradient(b: Backend, DY: Arranged, W: Arranged, s: ConvGeometry, options: LowpGemmOptions): Float32Array {
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

