// Depthwise convolution kernels (native/depthwise.h). Each body is built for AVX-512, AVX2+FMA and
// the baseline; the loops over an output row vectorize (every lane its own chain, in tap order).
#include "depthwise.h"
#include <cmath>
#include "cpu.h"
#include "parallel.h"

namespace octet {
namespace {

inline void forwardPlane(const float* x, const float* w, float* y, const ConvGeometry& g) {
  for (int64_t oh = 0; oh < g.outH; ++oh) {
    float* row = y + oh * g.outW;
    for (int64_t ow = 0; ow < g.outW; ++ow) row[ow] = 0.0f;
    for (int64_t i = 0; i < g.kernelH; ++i) {
      const int64_t ih = oh * g.strideH - g.padH + i * g.dilationH;
      if (ih < 0 || ih >= g.height) continue;
      const float* xrow = x + ih * g.width;
      for (int64_t j = 0; j < g.kernelW; ++j) {
        const float wv = w[i * g.kernelW + j];
        const int64_t offset = j * g.dilationW - g.padW;
        int64_t lo, hi;
        insideRange(g.outW, g.width, g.strideW, offset, lo, hi);
        if (g.strideW == 1) {
          const float* xs = xrow + offset;
          for (int64_t ow = lo; ow < hi; ++ow) row[ow] = std::fma(wv, xs[ow], row[ow]);
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) row[ow] = std::fma(wv, xrow[ow * g.strideW + offset], row[ow]);
        }
      }
    }
  }
}

inline void inputGradientPlane(const float* dy, const float* w, float* gx, const ConvGeometry& g) {
  for (int64_t i = 0; i < g.kernelH; ++i) {
    for (int64_t j = 0; j < g.kernelW; ++j) {
      const float wv = w[i * g.kernelW + j];
      const int64_t offset = j * g.dilationW - g.padW;
      int64_t lo, hi;
      insideRange(g.outW, g.width, g.strideW, offset, lo, hi);
      for (int64_t oh = 0; oh < g.outH; ++oh) {
        const int64_t ih = oh * g.strideH - g.padH + i * g.dilationH;
        if (ih < 0 || ih >= g.height) continue;
        float* xrow = gx + ih * g.width;
        const float* drow = dy + oh * g.outW;
        for (int64_t ow = lo; ow < hi; ++ow) {
          const float p = wv * drow[ow];
          xrow[ow * g.strideW + offset] += p;
        }
      }
    }
  }
}

// One channel's taps, each its own chain over the batch and the output positions in order.
template <int T>
inline void weightGradientChannel(const float* dy, const float* x, float* gw, const ConvGeometry& g, int64_t batch, int64_t dyStride, int64_t xStride) {
  float acc[T];
  for (int t = 0; t < T; ++t) acc[t] = 0.0f;
  int64_t lo[T], hi[T], off[T];
  for (int t = 0; t < T; ++t) {
    off[t] = (t % g.kernelW) * g.dilationW - g.padW;
    insideRange(g.outW, g.width, g.strideW, off[t], lo[t], hi[t]);
  }
  for (int64_t n = 0; n < batch; ++n) {
    const float* d = dy + n * dyStride;
    const float* xi = x + n * xStride;
    for (int64_t oh = 0; oh < g.outH; ++oh) {
      const float* drow = d + oh * g.outW;
      for (int t = 0; t < T; ++t) {
        const int64_t ih = oh * g.strideH - g.padH + (t / g.kernelW) * g.dilationH;
        if (ih < 0 || ih >= g.height) continue;
        const float* xrow = xi + ih * g.width + off[t];
        float a = acc[t];
        for (int64_t ow = lo[t]; ow < hi[t]; ++ow) a = std::fma(drow[ow], xrow[ow * g.strideW], a);
        acc[t] = a;
      }
    }
  }
  for (int t = 0; t < T; ++t) gw[t] = acc[t];
}

// The general tap count (not 3x3): one tap at a time.
inline void weightGradientChannelAny(const float* dy, const float* x, float* gw, const ConvGeometry& g, int64_t batch, int64_t dyStride, int64_t xStride) {
  const int64_t taps = g.kernelH * g.kernelW;
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t offset = (t % g.kernelW) * g.dilationW - g.padW;
    int64_t lo, hi;
    insideRange(g.outW, g.width, g.strideW, offset, lo, hi);
    float a = 0.0f;
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t oh = 0; oh < g.outH; ++oh) {
        const int64_t ih = oh * g.strideH - g.padH + (t / g.kernelW) * g.dilationH;
        if (ih < 0 || ih >= g.height) continue;
        const float* drow = dy + n * dyStride + oh * g.outW;
        const float* xrow = x + n * xStride + ih * g.width + offset;
        for (int64_t ow = lo; ow < hi; ++ow) a = std::fma(drow[ow], xrow[ow * g.strideW], a);
      }
    }
    gw[t] = a;
  }
}

#define OCTET_DEPTHWISE_VARIANT(NAME, ATTR)                                                                                   \
  ATTR void NAME##Forward(const float* x, const float* w, float* y, const ConvGeometry& g) { forwardPlane(x, w, y, g); }   \
  ATTR void NAME##InputGradient(const float* dy, const float* w, float* gx, const ConvGeometry& g) {                      \
    inputGradientPlane(dy, w, gx, g);                                                                                     \
  }                                                                                                                       \
  ATTR void NAME##WeightGradient(const float* dy, const float* x, float* gw, const ConvGeometry& g, int64_t batch,        \
                                 int64_t dyStride, int64_t xStride) {                                                     \
    if (g.kernelH == 3 && g.kernelW == 3) weightGradientChannel<9>(dy, x, gw, g, batch, dyStride, xStride);               \
    else weightGradientChannelAny(dy, x, gw, g, batch, dyStride, xStride);                                                \
  }

#ifdef OCTET_X86
OCTET_DEPTHWISE_VARIANT(avx512, __attribute__((target("avx512f"))))
OCTET_DEPTHWISE_VARIANT(avx2, __attribute__((target("avx2,fma"))))
#endif
OCTET_DEPTHWISE_VARIANT(portable, )

enum class Isa { avx512, avx2, portable };
Isa isa() {
  if (cpuHasAvx512()) return Isa::avx512;
  if (cpuHasAvx2()) return Isa::avx2;
  return Isa::portable;
}

}  // namespace

void depthwiseForward(const float* x, const float* w, float* y, const ConvGeometry& g, int64_t batch, int threads) {
  const int64_t C = g.channels, in = g.height * g.width, out = g.outH * g.outW;
  const Isa v = isa();
  parallelFor(batch * C, threads, [&](int64_t k) {
    const int64_t c = k % C;
    const float* xp = x + k * in;
    const float* wp = w + c * g.kernelH * g.kernelW;
    float* yp = y + k * out;
#ifdef OCTET_X86
    if (v == Isa::avx512) return avx512Forward(xp, wp, yp, g);
    if (v == Isa::avx2) return avx2Forward(xp, wp, yp, g);
#endif
    portableForward(xp, wp, yp, g);
  });
}

void depthwiseInputGradientStrided(const float* dy, const float* w, float* gx, const ConvGeometry& g, int64_t batch, int threads) {
  const int64_t C = g.channels, in = g.height * g.width, out = g.outH * g.outW;
  const Isa v = isa();
  parallelFor(batch * C, threads, [&](int64_t k) {
    const int64_t c = k % C;
    const float* dp = dy + k * out;
    const float* wp = w + c * g.kernelH * g.kernelW;
    float* xp = gx + k * in;
#ifdef OCTET_X86
    if (v == Isa::avx512) return avx512InputGradient(dp, wp, xp, g);
    if (v == Isa::avx2) return avx2InputGradient(dp, wp, xp, g);
#endif
    portableInputGradient(dp, wp, xp, g);
  });
}

void depthwiseWeightGradient(const float* dy, const float* x, float* gw, const ConvGeometry& g, int64_t batch, int threads) {
  const int64_t C = g.channels, in = g.height * g.width, out = g.outH * g.outW, taps = g.kernelH * g.kernelW;
  const Isa v = isa();
  parallelFor(C, threads, [&](int64_t c) {
    const float* dp = dy + c * out;
    const float* xp = x + c * in;
    float* wp = gw + c * taps;
#ifdef OCTET_X86
    if (v == Isa::avx512) return avx512WeightGradient(dp, xp, wp, g, batch, C * out, C * in);
    if (v == Isa::avx2) return avx2WeightGradient(dp, xp, wp, g, batch, C * out, C * in);
#endif
    portableWeightGradient(dp, xp, wp, g, batch, C * out, C * in);
  });
}

}  // namespace octet
