// Direct convolution at stride 1 for the low-precision convolutions' float32 accumulation with
// exact products (src/kernels/lowp_conv.ts): the forward of one group, and the stride-1 input
// gradient as the forward of the output gradient with the rotated kernel. Each output is the
// SGEMM-on-columns path's chain, bit for bit:
//   y[n, o, oy, ox] = chain over t = (c * KH + i) * KW + j in order, from +0, of
//                     acc = fma(w[o, t], xpad[n, c, oy + i, ox + j], acc)
// where xpad is the image zero-padded by (padH, padW) (the column matrix's zeros). The products
// must be exact in float32 (the caller's check: the operands' significands together fit 24 bits),
// which is when the contract's fused multiply-add is its product and sum.
//
// Why: at small channel counts the column matrix's elements are each used by few output
// channels, so building (or packing) it costs more than the products; here every input value is
// decoded once into a padded plane and each tap is a shifted vector load from it. Outputs are
// computed on the padded width (Wp = outW + KW - 1 positions per row, the last KW - 1 of them
// discarded), so a vector of consecutive positions reads consecutive inputs for every tap.
#pragma once
#include <cstdint>

#include "lowp_gemm.h"

namespace octet {

struct DirectConv {
  int64_t batch, channels, height, width;  // input images, channels x height x width each
  int64_t outChannels, kernelH, kernelW, padH, padW;
  int64_t outH, outW;  // height + 2 padH - kernelH + 1, likewise outW
  int64_t xImageStride;  // elements from one input image to the next
  int64_t yImageStride;  // likewise for the output (channel planes outH * outW apart)
  // The weight gradient only (the forward takes stride 1 and dilation 1): outH =
  // (height + 2 padH - dilationH (kernelH - 1) - 1) / strideH + 1, likewise outW.
  int64_t strideH = 1, strideW = 1, dilationH = 1, dilationW = 1;
};

// An operand: floats, or one-byte codes decoded through lut (as E5M2 by half conversion when
// e5m2, the same values).
struct DirectOperand {
  const float* values = nullptr;
  const uint8_t* codes = nullptr;
  const float* lut = nullptr;
  bool e5m2 = false;
};

// y (every output element of the group written) from x [batch][channels][H][W] (image stride
// xImageStride) and w [outChannels][channels * KH * KW].
void directConvForward(const DirectConv& d, const DirectOperand& x, const DirectOperand& w, float* y, int threads);

// The forward of a weight pruned in blocks, any stride (dilation 1; strided images are laid out
// as stride x stride phase planes, so every tap is still a shifted load) (block_sparse.h's BSR structure over the
// [outChannels][channels * KH * KW] view: block row q's stored block columns colIdx[rowPtr[q] ..
// rowPtr[q + 1]), br x bc blocks, br a multiple of 8): each output's chain runs over its block
// row's stored taps only, in increasing t; values holds the stored blocks, br x bc row-major each
// (entries past outChannels or K zero, as BsrGemmArgs says). The bits of bsrGemm's chains over
// the column matrix (bsrConv2dForward): the dense chain with the pruned products left out.
void directConvForwardSparse(const DirectConv& d, const DirectOperand& x, const float* values, const int32_t* rowPtr, const int32_t* colIdx, int64_t br,
                             int64_t bc, float* y, int threads);

// The same forward under an emulated accumulator: each output is lowpGemm's chain for C = W col
// (every addition in the contract's k order rounded to the accumulator's format, chunk partials
// folded in as it says), computed with lowpGemm's fast nearest rounding (Veltkamp splitting),
// which equals the codec's wherever values stay in the format's normal range, on AVX-512. From
// `accumulator` it reads acc, lut, chunk, chunkEnds / chunkCount, exactProducts and
// productsOnSubnormalGrid. Returns false, with y's contents unspecified, where it cannot give the
// contract's bits that way (a value left the range and no proof excluded it, stochastic rounding,
// inexact products, a format off the fast path, no AVX-512): the caller runs the GEMM instead.
bool directConvForwardLowp(const DirectConv& d, const DirectOperand& x, const DirectOperand& w, const LowpGemmArgs& accumulator, float* y, int threads);

// The weight gradient of one group, the SGEMM-on-columns path's chains bit for bit (any stride,
// dilation and padding):
//   dw[o, t] = chain over q = n * OH * OW + oy * OW + ox in order, from +0, of
//              acc = fma(dy[n, o, oy, ox], xpad[n, c, oy * SH + i * DH, ox * SW + j * DW], acc)
// for t = (c * KH + i) * KW + j; dw is [outChannels][channels * KH * KW]. Lanes are 16 output
// channels (the output gradient turned channel-last once), each tap's input value a broadcast;
// threads split the (channel block, tap block) tiles and run every image in order for theirs.
void directConvWeightGradient(const DirectConv& d, const DirectOperand& dy, const DirectOperand& x, float* dw, int threads);

// The weight gradient of a weight pruned in blocks (br x bc, br a multiple of 8; rowPtr / colIdx its
// [outChannels][C KH KW] view in BSR): directConvWeightGradient's chains, bit for bit, at the stored
// blocks' entries only; every other entry of dw is left as it was. A tile is up to 8 columns of one
// block column by up to 6 slices of 8 output channels of the block rows that store it, two slices
// to a vector (on AVX2 one slice a vector, the tile in passes of at most 12 chains), each column's
// input value one broadcast for every slice; threads split the tiles and run every image in order
// for theirs. False, with dw untouched, without AVX-512 or AVX2 (the caller runs the column
// kernel, whose chains are the same).
bool directConvWeightGradientSparse(const DirectConv& d, const DirectOperand& dy, const DirectOperand& x, const int32_t* rowPtr, const int32_t* colIdx,
                                    int64_t br, int64_t bc, float* dw, int threads);

// The same weight gradient under an emulated accumulator (as directConvForwardLowp: lowpGemm's
// fast nearest rounding per addition, chunks along q folded into the totals; on AVX-512). False,
// with dw untouched, where it cannot give the contract's bits that way: the caller runs the GEMM.
bool directConvWeightGradientLowp(const DirectConv& d, const DirectOperand& dy, const DirectOperand& x, const LowpGemmArgs& accumulator, float* dw, int threads);

}  // namespace octet
