#include "im2col.h"

#include "parallel.h"

namespace octet {

namespace {

// The output columns [lo, hi) whose input column ow * stride + offset lies inside [0, width).
inline void insideRange(int64_t outW, int64_t width, int64_t stride, int64_t offset, int64_t& lo, int64_t& hi) {
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = width - 1 - offset < 0 ? 0 : (width - 1 - offset) / stride + 1;
  if (hi > outW) hi = outW;
  if (lo > hi) lo = hi;
}

// Row r of one image's column matrix (OH * OW values) into dst. The columns that read padding
// are zero-filled and the rest copied without a per-element bounds test, so the copy vectorizes.
// T is float, or uint8_t for FP8 codes (code 0 is +0 in every format).
template <typename T>
void im2colRow(const T* x, T* dst, const ConvGeometry& g, int64_t r) {
  const int64_t c = r / (g.kernelH * g.kernelW);
  const int64_t i = (r / g.kernelW) % g.kernelH;
  const int64_t j = r % g.kernelW;
  const T* src = x + c * g.height * g.width;
  const int64_t offset = j * g.dilationW - g.padW;
  int64_t lo, hi;
  insideRange(g.outW, g.width, g.strideW, offset, lo, hi);
  for (int64_t oh = 0; oh < g.outH; ++oh) {
    const int64_t ih = oh * g.strideH - g.padH + i * g.dilationH;
    T* out = dst + oh * g.outW;
    if (ih < 0 || ih >= g.height) {
      for (int64_t ow = 0; ow < g.outW; ++ow) out[ow] = T(0);
      continue;
    }
    const T* in = src + ih * g.width + offset;
    for (int64_t ow = 0; ow < lo; ++ow) out[ow] = T(0);
    if (g.strideW == 1) {
      for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow];
    } else {
      for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * g.strideW];
    }
    for (int64_t ow = hi; ow < g.outW; ++ow) out[ow] = T(0);
  }
}

template <typename T>
void im2colBatchOf(const T* x, T* col, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads) {
  const int64_t plane = g.outH * g.outW;
  const int64_t rows = g.channels * g.kernelH * g.kernelW;
  const int team = rows * plane * batch * int64_t(sizeof(T)) < 131072 ? 1 : threads;
  parallelFor(rows, team, [&](int64_t r) {
    for (int64_t n = 0; n < batch; ++n) im2colRow(x + n * imageStride, col + r * batch * plane + n * plane, g, r);
  });
}

// Adds channel c's rows of one image's column matrix (taps rows of OH * OW, `rowStride` apart)
// back into that channel's plane.
void col2imChannel(const float* col, int64_t rowStride, float* dstPlane, const ConvGeometry& g, int64_t c) {
  const int64_t taps = g.kernelH * g.kernelW;
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t i = t / g.kernelW, j = t % g.kernelW;
    const float* src = col + (c * taps + t) * rowStride;
    const int64_t offset = j * g.dilationW - g.padW;
    int64_t lo, hi;
    insideRange(g.outW, g.width, g.strideW, offset, lo, hi);
    for (int64_t oh = 0; oh < g.outH; ++oh) {
      const int64_t ih = oh * g.strideH - g.padH + i * g.dilationH;
      if (ih < 0 || ih >= g.height) continue;
      float* row = dstPlane + ih * g.width + offset;
      const float* in = src + oh * g.outW;
      if (g.strideW == 1) {
        for (int64_t ow = lo; ow < hi; ++ow) row[ow] += in[ow];
      } else {
        for (int64_t ow = lo; ow < hi; ++ow) row[ow * g.strideW] += in[ow];
      }
    }
  }
}

}  // namespace

void im2col(const float* x, float* col, const ConvGeometry& g, int threads) {
  const int64_t plane = g.outH * g.outW;
  const int64_t rows = g.channels * g.kernelH * g.kernelW;
  const int team = rows * plane < 32768 ? 1 : threads;
  parallelFor(rows, team, [&](int64_t r) { im2colRow(x, col + r * plane, g, r); });
}

void im2colBatch(const float* x, float* col, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads) {
  im2colBatchOf(x, col, g, batch, imageStride, threads);
}

void im2colBatchCodes(const uint8_t* x, uint8_t* col, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads) {
  im2colBatchOf(x, col, g, batch, imageStride, threads);
}

void col2imBatch(const float* col, float* x, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads) {
  const int64_t plane = g.outH * g.outW;
  const int64_t taps = g.kernelH * g.kernelW;
  const int team = g.channels * taps * plane * batch < 32768 ? 1 : threads;
  // One (image, channel) per work item: its rows add into that channel of that image only.
  parallelFor(batch * g.channels, team, [&](int64_t item) {
    const int64_t n = item / g.channels, c = item % g.channels;
    col2imChannel(col + n * plane, batch * plane, x + n * imageStride + c * g.height * g.width, g, c);
  });
}

void col2im(const float* col, float* x, const ConvGeometry& g, int threads) {
  const int64_t plane = g.outH * g.outW;
  const int64_t taps = g.kernelH * g.kernelW;
  // One channel per work item: the rows of a channel all add into that channel only.
  const int team = g.channels * taps * plane < 32768 ? 1 : threads;
  parallelFor(g.channels, team, [&](int64_t c) { col2imChannel(col, plane, x + c * g.height * g.width, g, c); });
}

}  // namespace octet
