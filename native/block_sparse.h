// Block-sparse products (src/kernels/block_sparse.ts has the contract): a weight matrix in block
// compressed sparse rows (BSR) times a dense row-major matrix.
#pragma once
#include <cstdint>

#include "im2col.h"

namespace octet {

// C (m x n, row-major, ldc) = W (m x k, BSR) times X (k x n, row-major, ldx). W's blocks are
// br x bc; block row q holds blocks rowPtr[q] .. rowPtr[q+1], block b at block column colIdx[b]
// (increasing within a row), values[b * br * bc ...] row-major (entries past m or k are zero and
// never read for k). For each element: acc = +0, then for every stored k of its block row in
// increasing order, acc = fma(w, x, acc) (fused) or fl(acc + fl(w * x)); C = acc. Threads split
// block rows and column ranges, never k.
// With `geometry` set, X is the column matrix of a batch of images (floats, or codes decoded
// through their table) (im2col.h: k = channels
// x KH x KW rows, n = batch x OH x OW columns, image q at images + q * imageStride), read while
// packing. With cPlane > 0, C(i, j) is at c + (j / cPlane) * cImageStride + i * ldc + j % cPlane
// (a convolution's NCHW output; any plane size).
struct BsrGemmArgs {
  const int32_t* rowPtr;
  const int32_t* colIdx;
  const float* values;
  int64_t m, k, n, br, bc;
  const float* x;
  int64_t ldx;
  float* c;
  int64_t ldc;
  bool fused;
  const ConvGeometry* geometry = nullptr;
  const float* images = nullptr;
  // Or images of one-byte codes with the value of every code (code 0 must be +0).
  const uint8_t* imageCodes = nullptr;
  const float* table = nullptr;
  int64_t imageStride = 0;
  int64_t cPlane = 0, cImageStride = 0;
  // Without cPlane: C's row i is at c + (i - cRow0) * ldc (a buffer holding rows from cRow0).
  int64_t cRow0 = 0;
};
void bsrGemm(const BsrGemmArgs& args, int threads);

// A convolution's input gradient from W^T in BSR (wt: m = channels x KH x KW rows of the column
// matrix, k = output channels, no x or geometry set): for each image, T = W^T dY (bsrGemm's
// chains over dY's rows, the image's output gradient as X) block row by block row, each row of T
// added into the image's gradient at once in col2im's way (dx is accumulated: row r = (channel,
// kernel row, kernel column) adds T(r, p) into dx at the input position output p reads through
// it). Rows are added in increasing order, so every dx element receives its terms in the order
// col2im adds them: the bits of bsrGemm into the column matrix followed by col2im, except that
// rows of W^T with no stored block add nothing (their +0 could only turn a -0 into +0). Threads
// split the images.
// With `clear`, each image's dx is set to +0 first (by the thread that folds into it, while it
// is in cache), so dx's prior contents do not matter.
void bsrConvInputGradient(const BsrGemmArgs& wt, const float* dy, const ConvGeometry& geometry, int64_t batch, float* dx, int64_t dxImageStride, int threads,
                          bool clear = false);

// The stored blocks' values of a BSR matrix (rowPtr / colIdx over blockRows block rows of br x bc
// blocks) taken from a dense row-major matrix D of rows x cols: the BSR matrix is D (entry (i, j)
// = dense[i * cols + j]) or, with `transposed`, D^T (cols x rows; entry (i, j) = dense[j * cols +
// i]). Block b holds its entries row-major at values + b * br * bc; entries past the edges are +0.
// With `codes` (and their values in `table`, 256 floats) in place of dense, the entries are the
// codes' values.
void bsrGather(const int32_t* rowPtr, const int32_t* colIdx, int64_t blockRows, const float* dense, int64_t rows, int64_t cols, int64_t br, int64_t bc,
               bool transposed, float* values, const uint8_t* codes = nullptr, const float* table = nullptr);

// The weight gradient of a convolution at a pattern's stored blocks (rowPtr / colIdx as in
// BsrGemmArgs over the m x k weight view, k = channels x KH x KW): for each stored entry (i, t),
// dw[i * k + t] = the chain over the n = batch x OH x OW columns j in order (image-major) of
// acc = fma(dY(i, j), col(t, j), acc) from acc = +0, col the column matrix of the images
// (im2col.h): the dense weight gradient's chain (dY X^T on the SGEMM, one chain per element).
// Entries of dw outside the stored blocks are not written. dY is NCHW with m channels (floats, or
// one-byte codes through dyTable); the images as in BsrGemmArgs. Threads split the stored
// entries, never j, so results never depend on them.
struct BsrWeightGradArgs {
  const int32_t* rowPtr;
  const int32_t* colIdx;
  int64_t m, k, br, bc, batch;
  const ConvGeometry* geometry;
  const float* images = nullptr;
  const uint8_t* imageCodes = nullptr;
  const float* table = nullptr;
  int64_t imageStride = 0;
  const float* dy = nullptr;
  const uint8_t* dyCodes = nullptr;
  const float* dyTable = nullptr;
  float* dw;
};
void bsrConvWeightGradient(const BsrWeightGradArgs& args, int threads);

// The input gradient of a convolution whose weight W (OC x C*KH*KW, the GEMM view) is pruned in
// blocks, as lowpConv2dBackwardData's contract defines it: the stride-1 forward convolution of the
// stride-dilated dY (each dY value at (oh SH, ow SW), offset by DH*(KH-1) - PH rows and DW*(KW-1)
// - PW columns, which must not be negative) with the rotated weights W'[c, (oc*KH + i)*KW + j] =
// W[oc, c, KH-1-i, KW-1-j]. For each dx element, acc = +0, then over k' = (oc*KH + i)*KW + j in
// increasing order, for every k' whose entry of W lies in a stored block and whose tap reads a dY
// value (not one of the dilation's zeros), acc = fma(w, dY, acc): the dense product's chain with
// its exact-zero products left out, so its bits where every value is finite, the sign of a zero
// result aside. dx is written whole. Strided, the dx rows and columns of each phase (h mod SH,
// w mod SW) read their own taps, as a stride-1 product over dY. Each (phase, dx channel)'s kept
// entries are listed once; per group of 16 images, dY laid out as padded planes with the images
// in a vector's lanes ([OC][position][16]), and every channel's chain run over 16 positions of a
// phase at a time (positions past a row's outputs are computed and dropped). Values as floats or as one-byte codes through a
// table (both operands). Returns false, writing nothing, where an operand holds a non-finite value
// (a left-out 0 x Inf would differ) or the vector tiles are not AVX-512's (OCTET_GEMM_KERNEL;
// elsewhere the dense product, two products an instruction, wins).
struct SparseInputGradArgs {
  const int32_t* rowPtr;
  const int32_t* colIdx;
  int64_t br, bc;
  const float* w = nullptr;  // OC x C*KH*KW
  const uint8_t* wCodes = nullptr;
  const float* wTable = nullptr;
  const float* dy = nullptr;  // NCHW, OC channels of OH x OW
  const uint8_t* dyCodes = nullptr;
  const float* dyTable = nullptr;
  int64_t batch, channels, outChannels, height, width, kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW, outH, outW;
  int64_t dyImageStride, dxImageStride;
  float* dx;
};
bool sparseRotatedInputGradient(const SparseInputGradArgs& a, int threads);

}  // namespace octet
