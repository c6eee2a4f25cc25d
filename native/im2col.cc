#include "im2col.h"

#include <cstring>

#include "cpu.h"
#include "parallel.h"

namespace octet {

namespace {

template <typename T>
void im2colBatchOf(const T* x, T* col, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads) {
  const int64_t plane = g.outH * g.outW;
  const int64_t rows = g.channels * g.kernelH * g.kernelW;
  const int team = rows * plane * batch * int64_t(sizeof(T)) < 131072 ? 1 : threads;
  parallelFor(rows, team, [&](int64_t r) { columnRun(x, g, imageStride, r, 0, batch * plane, col + r * batch * plane); });
}

// Adds channel c's rows of one image's column matrix (taps rows of OH * OW, `rowStride` apart)
// back into that channel's plane.
void col2imChannel(const float* col, int64_t rowStride, float* dstPlane, const ConvGeometry& g, int64_t c) {
  const int64_t taps = g.kernelH * g.kernelW;
  for (int64_t t = 0; t < taps; ++t) col2imRow(col + (c * taps + t) * rowStride, c * taps + t, g, dstPlane - c * g.height * g.width);
}

}  // namespace

#ifdef OCTET_X86
// One output row's adds, row[ow] += src[ow] for ow in [lo, hi), 16 lanes at a time (the same adds).
static __attribute__((target("avx512f"))) void addRowAvx512(float* row, const float* src, int64_t lo, int64_t hi) {
  int64_t ow = lo;
  for (; ow + 16 <= hi; ow += 16) _mm512_storeu_ps(row + ow, _mm512_add_ps(_mm512_loadu_ps(row + ow), _mm512_loadu_ps(src + ow)));
  if (ow < hi) {
    const __mmask16 m = static_cast<__mmask16>((1u << (hi - ow)) - 1u);
    _mm512_mask_storeu_ps(row + ow, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, row + ow), _mm512_maskz_loadu_ps(m, src + ow)));
  }
}
#endif

#ifdef OCTET_X86
// addRowAvx512 on 8 lanes, the last partial group one add at a time (the same adds).
static __attribute__((target("avx2"))) void addRowAvx2(float* row, const float* src, int64_t lo, int64_t hi) {
  int64_t ow = lo;
  for (; ow + 8 <= hi; ow += 8) _mm256_storeu_ps(row + ow, _mm256_add_ps(_mm256_loadu_ps(row + ow), _mm256_loadu_ps(src + ow)));
  for (; ow < hi; ++ow) row[ow] += src[ow];
}
#endif

#ifdef OCTET_X86
// One output row's adds at stride 2, row[2 ow] += src[ow] for ow in [lo, hi): 8 outputs expanded
// into the even lanes of 16 (the odd ones neither loaded nor stored; the same adds).
static __attribute__((target("avx512f"))) void addRowStride2Avx512(float* row, const float* src, int64_t lo, int64_t hi) {
  for (int64_t ow = lo; ow < hi; ow += 8) {
    const int64_t n = std::min<int64_t>(8, hi - ow);
    const __mmask16 m = static_cast<__mmask16>(0x5555u & ((1u << (2 * n)) - 1u));
    float* at = row + 2 * ow;
    _mm512_mask_storeu_ps(at, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, at), _mm512_maskz_expandloadu_ps(m, src + ow)));
  }
}
#endif

void col2imRow(const float* in, int64_t r, const ConvGeometry& g, float* image) {
  const int64_t taps = g.kernelH * g.kernelW;
  const int64_t c = r / taps, i = (r / g.kernelW) % g.kernelH, j = r % g.kernelW;
  const int64_t offset = j * g.dilationW - g.padW;
  int64_t lo, hi;
  insideRange(g.outW, g.width, g.strideW, offset, lo, hi);
  float* channel = image + c * g.height * g.width;
#ifdef OCTET_X86
  const bool wide = cpuHasAvx512(), avx2 = !wide && cpuHasAvx2();
#endif
  for (int64_t oh = 0; oh < g.outH; ++oh) {
    const int64_t ih = oh * g.strideH - g.padH + i * g.dilationH;
    if (ih < 0 || ih >= g.height) continue;
    float* row = channel + ih * g.width + offset;
    const float* src = in + oh * g.outW;
    if (g.strideW == 1) {
#ifdef OCTET_X86
      if (wide) {
        addRowAvx512(row, src, lo, hi);
        continue;
      }
      if (avx2) {
        addRowAvx2(row, src, lo, hi);
        continue;
      }
#endif
      for (int64_t ow = lo; ow < hi; ++ow) row[ow] += src[ow];
    } else {
#ifdef OCTET_X86
      if (wide && g.strideW == 2) {
        addRowStride2Avx512(row, src, lo, hi);
        continue;
      }
#endif
      for (int64_t ow = lo; ow < hi; ++ow) row[ow * g.strideW] += src[ow];
    }
  }
}

FlatFold flatFoldPlan(const ConvGeometry& g) {
  FlatFold f;
#ifdef OCTET_X86
  if (g.strideH != 1 || g.strideW != 1 || g.outW != g.width || !cpuHasAvx2()) return f;
  const int64_t plane = g.outH * g.outW, taps = g.kernelH * g.kernelW;
  f.on = true;
  f.vectors = (plane + 15) / 16;
  f.masks.assign(static_cast<size_t>(taps * f.vectors), 0);
  f.shifts.resize(static_cast<size_t>(taps));
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t a = (t / g.kernelW) * g.dilationH - g.padH, b = (t % g.kernelW) * g.dilationW - g.padW;
    f.shifts[t] = a * g.width + b;
    for (int64_t p = 0; p < plane; ++p) {
      const int64_t ih = p / g.outW + a, iw = p % g.outW + b;
      if (ih >= 0 && ih < g.height && iw >= 0 && iw < g.width) f.masks[t * f.vectors + p / 16] |= static_cast<uint16_t>(1u << (p % 16));
    }
  }
#else
  (void)g;
#endif
  return f;
}

#ifdef OCTET_X86
namespace {

// flatFoldRow's adds on 8 lanes: each 16-output mask as two halves of lane masks (masked-off
// lanes are neither loaded nor stored by VMASKMOV).
__attribute__((target("avx2"))) void flatFoldRowAvx2(const float* in, int64_t r, const ConvGeometry& g, const FlatFold& f, float* image) {
  const int64_t taps = g.kernelH * g.kernelW, c = r / taps, t = r % taps;
  float* base = image + c * g.height * g.width + f.shifts[t];
  const uint16_t* masks = f.masks.data() + t * f.vectors;
  const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int64_t v = 0; v < f.vectors; ++v) {
    const uint32_t m16 = masks[v];
    if (!m16) continue;
    for (int h = 0; h < 2; ++h) {
      const uint32_t m = (m16 >> (8 * h)) & 0xffu;
      if (!m) continue;
      float* at = base + 16 * v + 8 * h;
      const float* from = in + 16 * v + 8 * h;
      if (m == 0xffu) {
        _mm256_storeu_ps(at, _mm256_add_ps(_mm256_loadu_ps(at), _mm256_loadu_ps(from)));
        continue;
      }
      const __m256i lanes = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(m)), bits), bits);
      _mm256_maskstore_ps(at, lanes, _mm256_add_ps(_mm256_maskload_ps(at, lanes), _mm256_maskload_ps(from, lanes)));
    }
  }
}

}  // namespace

static __attribute__((target("avx512f"))) void flatFoldRowAvx512(const float* in, int64_t r, const ConvGeometry& g, const FlatFold& f, float* image) {
  const int64_t taps = g.kernelH * g.kernelW, c = r / taps, t = r % taps;
  float* base = image + c * g.height * g.width + f.shifts[t];
  const uint16_t* masks = f.masks.data() + t * f.vectors;
  for (int64_t v = 0; v < f.vectors; ++v) {
    const __mmask16 m = masks[v];
    if (!m) continue;
    // Masked-off lanes neither load nor store (they may lie outside the image's planes).
    float* at = base + 16 * v;
    _mm512_mask_storeu_ps(at, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, at), _mm512_maskz_loadu_ps(m, in + 16 * v)));
  }
}

void flatFoldRow(const float* in, int64_t r, const ConvGeometry& g, const FlatFold& f, float* image) {
  if (cpuHasAvx512()) flatFoldRowAvx512(in, r, g, f, image);
  else flatFoldRowAvx2(in, r, g, f, image);
}
#else
void flatFoldRow(const float*, int64_t, const ConvGeometry&, const FlatFold&, float*) {}
#endif

void im2col(const float* x, float* col, const ConvGeometry& g, int threads) {
  const int64_t plane = g.outH * g.outW;
  const int64_t rows = g.channels * g.kernelH * g.kernelW;
  const int team = rows * plane < 32768 ? 1 : threads;
  parallelFor(rows, team, [&](int64_t r) { columnRun(x, g, 0, r, 0, plane, col + r * plane); });
}

void im2colBatch(const float* x, float* col, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads) {
  im2colBatchOf(x, col, g, batch, imageStride, threads);
}

void im2colBatchCodes(const uint8_t* x, uint8_t* col, const ConvGeometry& g, int64_t batch, int64_t imageStride, int threads) {
  im2colBatchOf(x, col, g, batch, imageStride, threads);
}

void windowImagesCodes(const uint8_t* x, const ConvGeometry& g, int64_t batch, int64_t imageStride, uint8_t* out, int threads) {
  const ReadWindow win = readWindow(g);
  const int64_t plane = win.height * win.width;
  // Window column w reads plane column w - padW: columns [c0, c1) of the window lie inside.
  const int64_t c0 = std::clamp<int64_t>(g.padW, 0, win.width), c1 = std::clamp<int64_t>(g.padW + g.width, c0, win.width);
  const int team = batch * g.channels * plane < 65536 ? 1 : threads;
  parallelFor(batch * g.channels, team, [&](int64_t item) {
    const int64_t n = item / g.channels, c = item % g.channels;
    const uint8_t* in = x + n * imageStride + c * g.height * g.width;
    uint8_t* o = out + item * plane;
    for (int64_t r = 0; r < win.height; ++r) {
      uint8_t* row = o + r * win.width;
      const int64_t h = r - g.padH;
      if (h < 0 || h >= g.height) {
        std::memset(row, 0, static_cast<size_t>(win.width));
        continue;
      }
      std::memset(row, 0, static_cast<size_t>(c0));
      std::memcpy(row + c0, in + h * g.width + (c0 - g.padW), static_cast<size_t>(c1 - c0));
      std::memset(row + c1, 0, static_cast<size_t>(win.width - c1));
    }
  });
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

template <typename T>
void moveRows(T* matrix, T* images, int64_t rows, int64_t count, int64_t plane, int64_t channels, int64_t c0, int64_t n0,
              bool toImages, int threads) {
  const int team = rows * count * plane * int64_t(sizeof(T)) < 262144 ? 1 : threads;
  parallelFor(rows, team, [&](int64_t r) {
    for (int64_t n = 0; n < count; ++n) {
      T* m = matrix + (r * count + n) * plane;
      T* image = images + ((n0 + n) * channels + c0 + r) * plane;
      if (toImages) std::memcpy(image, m, static_cast<size_t>(plane) * sizeof(T));
      else std::memcpy(m, image, static_cast<size_t>(plane) * sizeof(T));
    }
  });
}

void scatterPhase(const float* matrix, float* images, int64_t rows, int64_t count, int64_t channels, int64_t c0, int64_t n0, int64_t height,
                  int64_t width, int64_t ph, int64_t pw, int64_t strideH, int64_t strideW, int64_t phaseRows, int64_t phaseCols, int threads) {
  const int64_t phasePixels = phaseRows * phaseCols;
  const int team = rows * count * phasePixels < 65536 ? 1 : threads;
  parallelFor(rows * count, team, [&](int64_t item) {
    const int64_t r = item / count, n = item % count;
    const float* from = matrix + item * phasePixels;
    float* plane = images + ((n0 + n) * channels + c0 + r) * height * width;
    for (int64_t u = 0; u < phaseRows; ++u) {
      float* row = plane + (ph + strideH * u) * width + pw;
      const float* src = from + u * phaseCols;
      for (int64_t v = 0; v < phaseCols; ++v) row[strideW * v] = src[v];
    }
  });
}

template <typename T>
void rotateKernel(const T* w, T* out, int64_t group, int64_t ocg, int64_t cg, int64_t taps, int threads) {
  const int64_t k = ocg * taps;
  const int team = cg * k * int64_t(sizeof(T)) < 262144 ? 1 : threads;
  parallelFor(cg, team, [&](int64_t c) {
    for (int64_t oc = 0; oc < ocg; ++oc) {
      const T* from = w + ((group * ocg + oc) * cg + c) * taps + taps - 1;
      T* to = out + c * k + oc * taps;
      for (int64_t t = 0; t < taps; ++t) to[t] = from[-t];
    }
  });
}

template void moveRows<float>(float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, int);
template void moveRows<uint8_t>(uint8_t*, uint8_t*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, int);
template void rotateKernel<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, int);
template void rotateKernel<uint8_t>(const uint8_t*, uint8_t*, int64_t, int64_t, int64_t, int64_t, int);

}  // namespace octet
