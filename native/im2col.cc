#include "im2col.h"

#include "parallel.h"

namespace octet {

void im2col(const float* x, float* col, const ConvGeometry& g, int threads) {
  const int64_t plane = g.outH * g.outW;
  const int64_t rows = g.channels * g.kernelH * g.kernelW;
  const int team = rows * plane < 32768 ? 1 : threads;
  parallelFor(rows, team, [&](int64_t r) {
    const int64_t c = r / (g.kernelH * g.kernelW);
    const int64_t i = (r / g.kernelW) % g.kernelH;
    const int64_t j = r % g.kernelW;
    const float* src = x + c * g.height * g.width;
    float* dst = col + r * plane;
    for (int64_t oh = 0; oh < g.outH; ++oh) {
      const int64_t ih = oh * g.strideH - g.padH + i * g.dilationH;
      float* out = dst + oh * g.outW;
      if (ih < 0 || ih >= g.height) {
        for (int64_t ow = 0; ow < g.outW; ++ow) out[ow] = 0.0f;
        continue;
      }
      const float* in = src + ih * g.width;
      const int64_t offset = j * g.dilationW - g.padW;
      if (g.strideW == 1) {
        for (int64_t ow = 0; ow < g.outW; ++ow) {
          const int64_t iw = ow + offset;
          out[ow] = (iw >= 0 && iw < g.width) ? in[iw] : 0.0f;
        }
      } else {
        for (int64_t ow = 0; ow < g.outW; ++ow) {
          const int64_t iw = ow * g.strideW + offset;
          out[ow] = (iw >= 0 && iw < g.width) ? in[iw] : 0.0f;
        }
      }
    }
  });
}

void col2im(const float* col, float* x, const ConvGeometry& g, int threads) {
  const int64_t plane = g.outH * g.outW;
  const int64_t taps = g.kernelH * g.kernelW;
  // One channel per work item: the rows of a channel all add into that channel only.
  const int team = g.channels * taps * plane < 32768 ? 1 : threads;
  parallelFor(g.channels, team, [&](int64_t c) {
    float* dstPlane = x + c * g.height * g.width;
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t i = t / g.kernelW, j = t % g.kernelW;
      const float* src = col + (c * taps + t) * plane;
      for (int64_t oh = 0; oh < g.outH; ++oh) {
        const int64_t ih = oh * g.strideH - g.padH + i * g.dilationH;
        if (ih < 0 || ih >= g.height) continue;
        float* row = dstPlane + ih * g.width;
        const float* in = src + oh * g.outW;
        for (int64_t ow = 0; ow < g.outW; ++ow) {
          const int64_t iw = ow * g.strideW - g.padW + j * g.dilationW;
          if (iw >= 0 && iw < g.width) row[iw] += in[ow];
        }
      }
    }
  });
}

}  // namespace octet
