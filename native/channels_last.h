// Channel-last runs for the kernels whose lanes are channels (the Winograd weight gradient, the
// direct convolution's weight gradient): 16 channel planes' runs turned so that a position's 16
// channels lie side by side.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cpu.h"

namespace octet {

// dst[x * 16 + c] = src[c * planeStride + x] for x < nx
// and c < 16, zero for channels c >= nc: up to 16 channel planes' runs of nx floats, turned so
// that a position's channels lie side by side (16 at a time: the lanes of the transforms).
inline void channelsLast16(const float* src, int64_t planeStride, int64_t nx, int nc, float* dst) {
  for (int64_t x = 0; x < nx; ++x)
    for (int ch = 0; ch < 16; ++ch) dst[x * 16 + ch] = ch < nc ? src[ch * planeStride + x] : 0.0f;
}

#ifdef OCTET_X86
// channelsLast16 by 16 x 16 transposes in registers. (GCC 12 warns that its own headers' shuffles
// read an uninitialized value, GCC bug 105593: the value is the intrinsic's don't-care operand.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// out[i] = column i of the 16 x 16 matrix whose rows are r[0..16): pairs of rows interleaved,
// then quads, then the 128-bit lanes gathered across quads.
__attribute__((target("avx512f"))) inline void transpose16x16(const __m512 (&r)[16], __m512 (&out)[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; ++g) {
    const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d c2 = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c2));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c2));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // u[4g + j] holds rows 4g..4g+3 of columns 4q + j (q: the 128-bit lane).
  for (int j = 0; j < 4; ++j) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88), w1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
    out[j] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    out[4 + j] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    out[8 + j] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    out[12 + j] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
}

__attribute__((target("avx512f"))) inline void channelsLast16Avx512(const float* src, int64_t planeStride, int64_t nx, int nc, float* dst) {
  for (int64_t x0 = 0; x0 < nx; x0 += 16) {
    const int width = static_cast<int>(std::min<int64_t>(16, nx - x0));
    const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1);
    __m512 r[16], cols[16];
    for (int ch = 0; ch < 16; ++ch) r[ch] = ch < nc ? _mm512_maskz_loadu_ps(mask, src + ch * planeStride + x0) : _mm512_setzero_ps();
    transpose16x16(r, cols);
    for (int x = 0; x < width; ++x) _mm512_storeu_ps(dst + (x0 + x) * 16, cols[x]);
  }
}

// The inverse: dst[c * planeStride + x] = src[x * 16 + c] for c < nc and x < nx (channel-last
// runs back into channel planes).
__attribute__((target("avx512f"))) inline void channelsFirst16Avx512(const float* src, int64_t nx, int nc, float* dst, int64_t planeStride) {
  for (int64_t x0 = 0; x0 < nx; x0 += 16) {
    const int width = static_cast<int>(std::min<int64_t>(16, nx - x0));
    const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1);
    __m512 r[16], planes[16];
    for (int x = 0; x < 16; ++x) r[x] = x < width ? _mm512_loadu_ps(src + (x0 + x) * 16) : _mm512_setzero_ps();
    transpose16x16(r, planes);
    for (int ch = 0; ch < nc; ++ch) _mm512_mask_storeu_ps(dst + ch * planeStride + x0, mask, planes[ch]);
  }
}

// out[i] = column i of the 8 x 8 matrix whose rows are r[0..8) (transpose16x16's steps on 8 lanes:
// pairs of rows interleaved, then quads, then the two 128-bit halves swapped across).
__attribute__((target("avx2"))) inline void transpose8x8(const __m256 (&r)[8], __m256 (&out)[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 2; ++g) {
    const __m256d a = _mm256_castps_pd(t[4 * g]), b = _mm256_castps_pd(t[4 * g + 1]);
    const __m256d c2 = _mm256_castps_pd(t[4 * g + 2]), d = _mm256_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c2));
    u[4 * g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c2));
    u[4 * g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d));
    u[4 * g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
  }
  // u[4g + j]: rows 4g..4g+3 of column j (low half) and of column j + 4 (high half).
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    out[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

// The first `count` lanes of 8 floats at p (the rest +0; nothing past them is read).
__attribute__((target("avx2"), always_inline)) inline __m256 loadFirstAvx2(const float* p, int count) {
  if (count >= 8) return _mm256_loadu_ps(p);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes));
}

// channelsLast16 by 8 x 8 transposes: 8 positions at a time, the lower 8 channels then the upper.
__attribute__((target("avx2"))) inline void channelsLast16Avx2(const float* src, int64_t planeStride, int64_t nx, int nc, float* dst) {
  for (int64_t x0 = 0; x0 < nx; x0 += 8) {
    const int width = static_cast<int>(std::min<int64_t>(8, nx - x0));
    for (int h = 0; h < 2; ++h) {
      __m256 r[8], cols[8];
      for (int ch = 0; ch < 8; ++ch) r[ch] = h * 8 + ch < nc ? loadFirstAvx2(src + (h * 8 + ch) * planeStride + x0, width) : _mm256_setzero_ps();
      transpose8x8(r, cols);
      for (int x = 0; x < width; ++x) _mm256_storeu_ps(dst + (x0 + x) * 16 + h * 8, cols[x]);
    }
  }
}
#pragma GCC diagnostic pop
#endif


// channelsLast16 with the widest transposes this CPU has.
inline void channelsLast16Best(const float* src, int64_t planeStride, int64_t nx, int nc, float* dst) {
#ifdef OCTET_X86
  if (cpuHasAvx512()) {
    channelsLast16Avx512(src, planeStride, nx, nc, dst);
    return;
  }
  if (cpuHasAvx2()) {
    channelsLast16Avx2(src, planeStride, nx, nc, dst);
    return;
  }
#endif
  channelsLast16(src, planeStride, nx, nc, dst);
}

}  // namespace octet
