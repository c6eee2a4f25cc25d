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
import { checkConvGeometry, groupColumns, type ColumnGeometry, type ConvGeometry } from './conv_geometry.js';
import type { ImagePlane } from './im2col.js';
import type { LowpGemmOptions, LowpOperand } from './lowp_gemm.js';
import { takeBuffer, takeZeroed } from './buffer_pool.js';
import {
  FLOATS, alloc, arrange, backend, columnsProduct, groupOptions, imagesPerChunk, keyedByPosition, readsColumnsInPlace, scratch, unitsPerChunk,
  type ColumnsAt,
} from './lowp_conv_columns.js';
import { finiteOperand, phasedInputGradient, zeroTermsSkippable } from './lowp_conv_phases.js';
import { directApplies, directConvolution, directGradientApplies, directGradientWins, directWeightGradient, directWins } from './lowp_conv_direct.js';

export { setConvColumnBudget } from './lowp_conv_columns.js';

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
  const pixels = s.height * s.width;
  if (directApplies(b, s, options) && directWins(ocg, options) && directConvolution(s.batch, s.groups, (g) => ({
    x: X.operand(X.plane.subarray(g * cg * pixels)), w: W.operand(W.plane.subarray(g * ocg * k, (g + 1) * ocg * k)), y: out.subarray(g * ocg * plane),
    geometry: { channels: cg, height: s.height, width: s.width, outChannels: ocg, kernelH: s.kernelH, kernelW: s.kernelW, padH: s.padH, padW: s.padW, outH: s.outH, outW: s.outW },
    xImageStride: s.channels * pixels, yImageStride: s.outChannels * plane,
  }), out, options)) {
    return out;
  }
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
  const dw = takeZeroed(s.outChannels * k);
  const taps = s.kernelH * s.kernelW;
  const pixels = s.height * s.width;
  if (directGradientApplies(b, options) && directGradientWins(s, options) && directWeightGradient(s.groups, (g) => ({
    dy: DY.operand(DY.plane.subarray(g * ocg * plane)), x: X.operand(X.plane.subarray(g * cg * pixels)), dw: dw.subarray(g * ocg * k, (g + 1) * ocg * k),
    geometry: { ...s, channels: cg, outChannels: ocg, groups: 1 }, xImageStride: s.channels * pixels, dyImageStride: s.outChannels * plane,
  }), dw, options)) {
    return dw;
  }
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
  const outPlane = s.outH * s.outW;
  if (direct && directApplies(b, shape, options) && directWins(cg, options) && directConvolution(s.batch, s.groups, (g) => ({
    x: DY.operand(DY.plane.subarray(g * ocg * outPlane)), w: W.operand(b.rotatedKernel(W.plane, g, ocg, cg, taps)), y: dx.subarray(g * cg * pixels),
    geometry: { channels: ocg, height: s.outH, width: s.outW, outChannels: cg, kernelH: s.kernelH, kernelW: s.kernelW, padH, padW, outH: s.height, outW: s.width },
    xImageStride: s.outChannels * outPlane, yImageStride: s.channels * pixels,
  }), dx, options)) {
    return dx;
  }
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
