/**
 * Block-scaled convolution: the three GEMMs of src/kernels/lowp_conv.ts (same matrices, same K
 * order) with each operand quantized in blocks along that GEMM's K, from float32 values, and
 * multiplied by the block-scaled GEMM (src/kernels/block_gemm.ts).
 *
 * CONTRACT. With lowp_conv.ts's notation, per group g:
 * - forward:      Y_g  = W_g [OCg x K] * col_g [K x NP]; W_g cut along K = (c, i, j), col_g along K
 *   (down each column);
 * - weight grad:  dW_g = dY_g [OCg x NP] * col_g^T; both cut along NP (the batch's positions);
 * - input grad:   dXcol_g = W'_g [Cg x K'] * col(dY)_g [K' x NHW], K' = (oc, i, j) of the rotated
 *   kernel over the stride-dilated output gradient; both cut along K'.
 * The operands are quantized in these GEMM views, so one tensor gets different blocks in
 * different passes (a weight's tiles run along its input channels forward and along its output
 * channels backward), as block-scaled hardware recipes quantize each GEMM's operands. Stochastic
 * streams: group g uses streamKey(base, g), as lowp_conv.ts.
 */
import { checkConvGeometry, groupColumns, type ColumnGeometry, type ConvGeometry } from './conv_geometry.js';
import { blockScaledProduct, type BlockGemmOptions, type ObservedBlockSpec } from './block_gemm.js';
import { backend, groupOptions } from './lowp_conv_columns.js';
import type { LowpGemmOptions, LowpOperand } from './lowp_gemm.js';
import { recycle, takeBuffer, takeZeroed } from './buffer_pool.js';
import { dequantize } from './quant_stats.js';

/** Block specs of a convolution's operands by role (absent: that operand stays float32). */
export interface ConvBlocks {
  x?: ObservedBlockSpec | null;
  w?: ObservedBlockSpec | null;
  e?: ObservedBlockSpec | null;
}

type Options = LowpGemmOptions & BlockGemmOptions;

function values(x: LowpOperand): Float32Array {
  return x instanceof Float32Array ? x : dequantize(x, new Float32Array(x.codes.length));
}

/** The column matrix [K x count*P] of one group's channels over the batch. */
function columns(reference: boolean, x: Float32Array, s: ConvGeometry, g: number, geometry: ColumnGeometry, height: number, width: number): Float32Array {
  const cg = geometry.channels;
  const k = cg * geometry.kernelH * geometry.kernelW;
  // im2col writes every element; the caller recycles it.
  const cols = takeBuffer(k * s.batch * geometry.outH * geometry.outW);
  const imageStride = s.channels * height * width;
  backend(reference).im2colBatch(x.subarray(g * cg * height * width), cols, geometry, s.batch, imageStride);
  return cols;
}

export function blockConv2dForward(x: LowpOperand, w: LowpOperand, s: ConvGeometry, blocks: ConvBlocks, options: Options = {}, reference = false): Float32Array {
  checkConvGeometry(s, 'blockConv2dForward');
  const X = values(x);
  const W = values(w);
  const cg = s.channels / s.groups;
  const ocg = s.outChannels / s.groups;
  const k = cg * s.kernelH * s.kernelW;
  const plane = s.outH * s.outW;
  // Every element is written below (each group scatters its channels).
  const out = takeBuffer(s.batch * s.outChannels * plane);
  for (let g = 0; g < s.groups; g++) {
    const cols = columns(reference, X, s, g, groupColumns(s), s.height, s.width);
    const y = blockScaledProduct(ocg, s.batch * plane, k, W.subarray(g * ocg * k, (g + 1) * ocg * k), cols, blocks.w, blocks.x, groupOptions(options, g));
    recycle(cols);
    backend(reference).moveRows(y, out, { n0: 0, count: s.batch, channels: s.outChannels, c0: g * ocg, rows: ocg, plane }, 'scatter');
    recycle(y);
  }
  return out;
}

export function blockConv2dBackwardWeight(dy: LowpOperand, x: LowpOperand, s: ConvGeometry, blocks: ConvBlocks, options: Options = {}, reference = false): Float32Array {
  checkConvGeometry(s, 'blockConv2dBackwardWeight');
  const DY = values(dy);
  const X = values(x);
  const cg = s.channels / s.groups;
  const ocg = s.outChannels / s.groups;
  const k = cg * s.kernelH * s.kernelW;
  const plane = s.outH * s.outW;
  const np = s.batch * plane;
  const dw = new Float32Array(s.outChannels * k);
  for (let g = 0; g < s.groups; g++) {
    const dyg = takeBuffer(ocg * np);
    backend(reference).moveRows(dyg, DY, { n0: 0, count: s.batch, channels: s.outChannels, c0: g * ocg, rows: ocg, plane }, 'gather');
    const cols = columns(reference, X, s, g, groupColumns(s), s.height, s.width);
    const part = blockScaledProduct(ocg, k, np, dyg, cols, blocks.e, blocks.x, { ...groupOptions(options, g), transB: true });
    recycle(dyg);
    recycle(cols);
    dw.set(part, g * ocg * k);
    recycle(part);
  }
  return dw;
}

export function blockConv2dBackwardData(dy: LowpOperand, w: LowpOperand, s: ConvGeometry, blocks: ConvBlocks, options: Options = {}, reference = false): Float32Array {
  checkConvGeometry(s, 'blockConv2dBackwardData');
  const DY = values(dy);
  const W = values(w);
  const b = backend(reference);
  const cg = s.channels / s.groups;
  const ocg = s.outChannels / s.groups;
  const taps = s.kernelH * s.kernelW;
  // The stride-dilated, offset gradient image (as lowp_conv.ts builds it), always materialized.
  const padH = s.dilationH * (s.kernelH - 1) - s.padH;
  const padW = s.dilationW * (s.kernelW - 1) - s.padW;
  const rows = s.height + s.dilationH * (s.kernelH - 1);
  const cols = s.width + s.dilationW * (s.kernelW - 1);
  const image = takeZeroed(s.batch * s.outChannels * rows * cols);
  for (let nc = 0; nc < s.batch * s.outChannels; nc++) {
    for (let oh = 0; oh < s.outH; oh++) {
      const r = oh * s.strideH + padH;
      if (r < 0 || r >= rows) continue;
      for (let ow = 0; ow < s.outW; ow++) {
        const q = ow * s.strideW + padW;
        if (q >= 0 && q < cols) image[(nc * rows + r) * cols + q] = DY[(nc * s.outH + oh) * s.outW + ow];
      }
    }
  }
  const geometry: ColumnGeometry = {
    channels: ocg, height: rows, width: cols, kernelH: s.kernelH, kernelW: s.kernelW, strideH: 1, strideW: 1,
    padH: 0, padW: 0, dilationH: s.dilationH, dilationW: s.dilationW, outH: s.height, outW: s.width,
  };
  const shape: ConvGeometry = { ...s, channels: s.outChannels, outChannels: s.channels, height: rows, width: cols };
  const pixels = s.height * s.width;
  const k = ocg * taps;
  // Every element is written below.
  const dx = takeBuffer(s.batch * s.channels * pixels);
  for (let g = 0; g < s.groups; g++) {
    const rotated = b.rotatedKernel(W, g, ocg, cg, taps);
    const colsG = columns(reference, image, shape, g, geometry, rows, cols);
    const result = blockScaledProduct(cg, s.batch * pixels, k, rotated, colsG, blocks.w, blocks.e, groupOptions(options, g));
    recycle(colsG);
    b.moveRows(result, dx, { n0: 0, count: s.batch, channels: s.channels, c0: g * cg, rows: cg, plane: pixels }, 'scatter');
    recycle(result);
  }
  recycle(image);
  return dx;
}
