// Winograd convolution F(m x m, 3 x 3) for float32: 3x3 kernels, stride 1, dilation 1.
//
// Each m x m tile of the output comes from an (m + 2) x (m + 2) tile of the input:
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A
// so a layer's product is (m + 2)^2 GEMMs of [K x C] x [C x tiles], one per point of the
// transformed tile, instead of one GEMM with 9 C rows: 4 (m = 2) or 2.25 (m = 4) multiplies per
// output pixel and channel pair instead of 9. The weight gradient is the adjoint of the same
// product: dU = sum over tiles of (A dY A^T) (.) (B^T d B), then dW = G^T dU G.
//
// The tiles are processed in blocks sized for the L2 cache: a block's input transform is written
// straight into the GEMM kernel's packed panel layout, multiplied with the SGEMM's micro-kernel and
// transformed back before the next block, so no transformed tensor is ever stored whole.
//
// The result is the convolution to float32 rounding error, not bit for bit the direct one: the
// transforms add and subtract (m = 4 scales by up to 8), which is why it serves only float32
// arithmetic (the low-precision kernels keep their defined products). Forward threads take whole
// blocks of tiles (each output tile's arithmetic does not depend on its block). Weight-gradient
// threads split the rows of the transform points and each runs over every tile, in groups sized
// for L2: it turns the group's input and output-gradient rows channel-last (16 channels as the
// transforms' lanes, no gathers), forms its points of both transforms and adds the group's
// products to its points of dU, so every element of dU is one chain of fused multiply-adds over
// all tiles in order, on one thread. Every thread count and group size gives the same bits.
#pragma once
#include <cstdint>

namespace octet {

struct WinogradConv {
  int tile;  // m: 2 or 4
  int64_t batch, channels, height, width;  // input images, C x H x W each
  int64_t outChannels, padH, padW, outH, outW;  // outH = height + 2 padH - 2, likewise outW
  int64_t xImageStride;  // elements from one input image to the next (channel planes H * W apart)
  int64_t yImageStride;  // likewise for the output (planes outH * outW apart)
  // The forward's weights read as the input gradient's kernel: w is [channels][outChannels][3][3]
  // (a convolution from outChannels to channels) and the kernel from input channel c to output
  // channel k is w[c][k] rotated by 180 degrees. (Forward calls only.)
  bool flipped = false;
};

// y = conv3x3(x, w) with w [outChannels][channels][3][3]; every output element is written.
void winogradForward(const WinogradConv& conv, const float* x, const float* w, float* y, int threads);

// dw [outChannels][channels][3][3] = the weight gradient for output gradient dy (laid out as y).
void winogradWeightGradient(const WinogradConv& conv, const float* x, const float* dy, float* dw, int threads);

}  // namespace octet
