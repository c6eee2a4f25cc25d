// im2col / col2im for one image in CHW layout (float32), as used by convolution through GEMM.
//
// col has (C * KH * KW) rows and (OH * OW) columns, row-major:
//   col[((c * KH + i) * KW + j) * (OH * OW) + oh * OW + ow]
//     = x[c * H * W + (oh * SH - PH + i * DH) * W + (ow * SW - PW + j * DW)], or 0 outside.
// col2im is its adjoint: it adds every col entry back into x (x is accumulated, not cleared).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

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
// Row r (channel, kernel row, kernel column) of one image's column matrix, `in` (OH * OW), added
// into the image (C planes of H x W) where that row reads: col2im for one row.
void col2imRow(const float* in, int64_t r, const ConvGeometry& g, float* image);

// col2imRow where every row is one shifted add over the flattened plane: stride 1 with OW = W,
// so output p = oh * OW + ow reads input p + (i * DH - PH) * W + (j * DW - PW), lanes whose
// input lies outside the image left out. Built once per geometry (for each tap and 16 outputs a
// mask of the lanes that add); `on` is false where it does not apply (other geometries, or
// neither AVX-512 nor AVX2), and then flatFoldRow must not be called. The same adds as col2imRow.
struct FlatFold {
  bool on = false;
  int64_t vectors = 0;
  std::vector<uint16_t> masks;  // [tap * vectors + v]: lanes of outputs 16 v .. 16 v + 15 that add
  std::vector<int64_t> shifts;  // [tap]: input position - output position
};
FlatFold flatFoldPlan(const ConvGeometry& g);
void flatFoldRow(const float* in, int64_t r, const ConvGeometry& g, const FlatFold& f, float* image);

// The same for a batch side by side: image n starts at x + n * imageStride (so a group's channels
// of NCHW data are reached by offsetting x), and col has C * KH * KW rows of batch * OH * OW
// columns, image n's columns at n * OH * OW:
//   col[r * (batch * OH * OW) + n * (OH * OW) + p] = im2col of image n at (r, p).
void im2colBatch(const float* x, float* col, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads);
void col2imBatch(const float* col, float* x, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads);
// im2colBatch over one-byte codes (padding is code 0, +0 in every format).
void im2colBatchCodes(const uint8_t* x, uint8_t* col, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads);

// The output columns [lo, hi) whose input column ow * stride + offset lies inside [0, width).
inline void insideRange(int64_t outW, int64_t width, int64_t stride, int64_t offset, int64_t& lo, int64_t& hi) {
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = width - 1 - offset < 0 ? 0 : (width - 1 - offset) / stride + 1;
  if (hi > outW) hi = outW;
  if (lo > hi) lo = hi;
}

// A run of one row of the batched column matrix, never stored as a whole: out[t] = col(r, q0 + t)
// for t in [0, len), where column q = n * OH * OW + oh * OW + ow is image n's output position
// (oh, ow) and image n starts at x + n * imageStride. Padding reads as T(0) (code 0 is +0 in every
// format). Copies within an output row need no bounds test, so they vectorize.
template <typename T>
inline void columnRun(const T* x, const ConvGeometry& g, int64_t imageStride, int64_t r, int64_t q0, int64_t len, T* out) {
  const int64_t taps = g.kernelH * g.kernelW;
  const int64_t c = r / taps, i = (r / g.kernelW) % g.kernelH, j = r % g.kernelW;
  const int64_t offset = j * g.dilationW - g.padW;
  int64_t lo, hi;
  insideRange(g.outW, g.width, g.strideW, offset, lo, hi);
  const int64_t plane = g.outH * g.outW;
  const T* channel = x + c * g.height * g.width;
  int64_t n = q0 / plane, pix = q0 % plane;
  int64_t oh = pix / g.outW, ow0 = pix % g.outW;
  for (int64_t t = 0; t < len;) {
    const int64_t seg = std::min(g.outW - ow0, len - t);
    T* o = out + t - ow0;  // o[ow] is output column ow of this output row
    const int64_t ih = oh * g.strideH - g.padH + i * g.dilationH;
    const int64_t end = ow0 + seg;
    if (ih < 0 || ih >= g.height) {
      for (int64_t ow = ow0; ow < end; ++ow) o[ow] = T(0);
    } else {
      const T* in = channel + n * imageStride + ih * g.width + offset;
      const int64_t a = std::max(ow0, std::min(lo, end)), b = std::max(a, std::min(hi, end));
      for (int64_t ow = ow0; ow < a; ++ow) o[ow] = T(0);
      if (g.strideW == 1) {
        for (int64_t ow = a; ow < b; ++ow) o[ow] = in[ow];
      } else {
        for (int64_t ow = a; ow < b; ++ow) o[ow] = in[ow * g.strideW];
      }
      for (int64_t ow = b; ow < end; ++ow) o[ow] = T(0);
    }
    t += seg;
    ow0 = 0;
    if (++oh == g.outH) {
      oh = 0;
      ++n;
    }
  }
}

// The rows and columns a convolution's columns read, padding included: rows [-padH, lastRow]
// and columns [-padW, lastCol] of each plane (lastRow can pass H - 1 by more than padH, as in
// the phases of strided input gradients, whose output size is their own; padding can be
// negative, a crop).
struct ReadWindow {
  int64_t height, width;  // rows and columns of the window
};
inline ReadWindow readWindow(const ConvGeometry& g) {
  const int64_t lastRow = (g.outH - 1) * g.strideH - g.padH + (g.kernelH - 1) * g.dilationH;
  const int64_t lastCol = (g.outW - 1) * g.strideW - g.padW + (g.kernelW - 1) * g.dilationW;
  return {lastRow + g.padH + 1, lastCol + g.padW + 1};
}
// Whether the window is the planes themselves (no padding, nothing read outside).
inline bool readsInside(const ConvGeometry& g) {
  const ReadWindow w = readWindow(g);
  return g.padH == 0 && g.padW == 0 && w.height <= g.height && w.width <= g.width;
}
// Each plane's read window written out, code 0 where it lies outside the plane, for runs that
// need no bounds tests: image n at out + n * windowImageStride(g); windowGeometry is the same
// convolution over them (no padding, every tap inside, the same output size).
inline ConvGeometry windowGeometry(const ConvGeometry& g) {
  const ReadWindow w = readWindow(g);
  ConvGeometry p = g;
  p.height = w.height;
  p.width = w.width;
  p.padH = 0;
  p.padW = 0;
  return p;
}
inline int64_t windowImageStride(const ConvGeometry& g) {
  const ReadWindow w = readWindow(g);
  return g.channels * w.height * w.width;
}
void windowImagesCodes(const uint8_t* x, const ConvGeometry& g, int64_t batch, int64_t imageStride, uint8_t* out, int threads);

// columnRun over images without padding that it reads inside (readsInside, windowGeometry):
// each output row's segment is a copy from one input row, with no bounds tests; segments of 4 to
// 32 codes copy as one fixed-size move.
inline void unpaddedColumnRun(const uint8_t* x, const ConvGeometry& g, int64_t imageStride, int64_t r, int64_t q0, int64_t len, uint8_t* out) {
  const int64_t taps = g.kernelH * g.kernelW;
  const int64_t c = r / taps, i = (r / g.kernelW) % g.kernelH, j = r % g.kernelW;
  const int64_t plane = g.outH * g.outW;
  const uint8_t* channel = x + c * g.height * g.width + i * g.dilationH * g.width + j * g.dilationW;
  int64_t n = q0 / plane, pix = q0 % plane;
  int64_t oh = pix / g.outW, ow0 = pix % g.outW;
  const int64_t rowStep = g.strideH * g.width;
  const uint8_t* row = channel + n * imageStride + oh * rowStep;
  for (int64_t t = 0; t < len;) {
    const int64_t seg = std::min(g.outW - ow0, len - t);
    const uint8_t* in = row + ow0 * g.strideW;
    uint8_t* o = out + t;
    if (g.strideW != 1) {
      for (int64_t ow = 0; ow < seg; ++ow) o[ow] = in[ow * g.strideW];
    } else if (seg == 32) {
      std::memcpy(o, in, 32);
    } else if (seg == 16) {
      std::memcpy(o, in, 16);
    } else if (seg == 8) {
      std::memcpy(o, in, 8);
    } else if (seg == 4) {
      std::memcpy(o, in, 4);
    } else {
      std::memcpy(o, in, static_cast<size_t>(seg));
    }
    t += seg;
    ow0 = 0;
    if (++oh == g.outH) {
      oh = 0;
      ++n;
      row = channel + n * imageStride;
    } else {
      row += rowStep;
    }
  }
}

}  // namespace octet

namespace octet {

// Between a GEMM's row-major [rows x count * plane] matrix (row r, image n at column n * plane)
// and NCHW images with `channels` channels: image n0 + n, channel c0 + r. toImages copies the
// matrix into the images (a scatter), else the images into the matrix (a gather). T is float or
// uint8_t (codes).
template <typename T>
void moveRows(T* matrix, T* images, int64_t rows, int64_t count, int64_t plane, int64_t channels, int64_t c0, int64_t n0,
              bool toImages, int threads);

// A phase of a strided input gradient into NCHW images: matrix row r, image n, phase position
// (u, v) (row-major [rows x count * phaseRows * phaseCols]) to image n0 + n, channel c0 + r, pixel
// (ph + strideH * u, pw + strideW * v) of height x width planes.
void scatterPhase(const float* matrix, float* images, int64_t rows, int64_t count, int64_t channels, int64_t c0, int64_t n0, int64_t height,
                  int64_t width, int64_t ph, int64_t pw, int64_t strideH, int64_t strideW, int64_t phaseRows, int64_t phaseCols, int threads);

// Group g's rotated, transposed kernel: out[c * K + oc * taps + t] = w[((g * ocg + oc) * cg + c) *
// taps + taps - 1 - t] for K = ocg * taps (see src/kernels/conv_layout.ts).
template <typename T>
void rotateKernel(const T* w, T* out, int64_t group, int64_t ocg, int64_t cg, int64_t taps, int threads);

}  // namespace octet
