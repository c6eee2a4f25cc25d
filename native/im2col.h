// im2col / col2im for one image in CHW layout (float32), as used by convolution through GEMM.
//
// col has (C * KH * KW) rows and (OH * OW) columns, row-major:
//   col[((c * KH + i) * KW + j) * (OH * OW) + oh * OW + ow]
//     = x[c * H * W + (oh * SH - PH + i * DH) * W + (ow * SW - PW + j * DW)], or 0 outside.
// col2im is its adjoint: it adds every col entry back into x (x is accumulated, not cleared).
#pragma once
#include <cstdint>

namespace octet {

struct ConvGeometry {
  int64_t channels, height, width;
  int64_t kernelH, kernelW;
  int64_t strideH, strideW;
  int64_t padH, padW;
  int64_t dilationH, dilationW;
  int64_t outH, outW;
};

void im2col(const float* x, float* col, const ConvGeometry& g, int threads);
void col2im(const float* col, float* x, const ConvGeometry& g, int threads);

// The same for a batch side by side: image n starts at x + n * imageStride (so a group's channels
// of NCHW data are reached by offsetting x), and col has C * KH * KW rows of batch * OH * OW
// columns, image n's columns at n * OH * OW:
//   col[r * (batch * OH * OW) + n * (OH * OW) + p] = im2col of image n at (r, p).
void im2colBatch(const float* x, float* col, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads);
void col2imBatch(const float* col, float* x, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads);
// im2colBatch over one-byte codes (padding is code 0, +0 in every format).
void im2colBatchCodes(const uint8_t* x, uint8_t* col, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads);

}  // namespace octet
