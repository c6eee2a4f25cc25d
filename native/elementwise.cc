#include "elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu.h"
#include "parallel.h"
#include "sources.h"

namespace octet {
namespace {

constexpr int64_t kChunk = 1 << 16;

template <typename Fn>
void chunks(int64_t n, int threads, Fn fn) {
  const int64_t count = (n + kChunk - 1) / kChunk;
  parallelFor(count, count > 1 ? threads : 1, [&](int64_t c) {
    const int64_t b = c * kChunk, e = b + kChunk < n ? b + kChunk : n;
    fn(b, e);
  });
}

// One channel per work item; a single thread when the tensor is small.
template <typename Fn>
void perChannel(int64_t batch, int64_t channels, int64_t plane, int threads, Fn fn) {
  parallelFor(channels, batch * channels * plane < 32768 ? 1 : threads, fn);
}

// Per-channel sums over the batch run in kLanes lanes: the value at position i of a plane goes to
// lane i % kLanes, and the lanes fold pairwise at the end, ((l0 + l1) + (l2 + l3)) + ((l4 + l5) +
// (l6 + l7)). That order is the contract (src/kernels/elementwise.ts keeps the same one): it lets
// the sums vectorize, where one running sum is a chain of dependent adds.
constexpr int kLanes = 8;

inline double foldLanes(const double* l) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

// Adds term(at) for every element `at` of channel c into lanes.
template <typename Term>
inline void addChannel(int64_t batch, int64_t channels, int64_t plane, int64_t c, double* lanes, Term term) {
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t base = (n * channels + c) * plane;
    int64_t i = 0;
    for (; i + kLanes <= plane; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) lanes[l] += term(base + i + l);
    }
    for (int l = 0; i < plane; ++i, ++l) lanes[l] += term(base + i);
  }
}

void meanVarChannel(const float* x, double* mean, double* var, int64_t batch, int64_t channels, int64_t plane, int64_t c) {
  const double count = static_cast<double>(batch * plane);
  double lanes[kLanes] = {0};
  addChannel(batch, channels, plane, c, lanes, [&](int64_t at) { return static_cast<double>(x[at]); });
  const double m = foldLanes(lanes) / count;
  double squares[kLanes] = {0};
  addChannel(batch, channels, plane, c, squares, [&](int64_t at) {
    const double d = x[at] - m;
    return d * d;
  });
  mean[c] = m;
  var[c] = foldLanes(squares) / count;
}

void sumChannel(const float* g, double* sums, int64_t batch, int64_t channels, int64_t plane, int64_t c) {
  double lanes[kLanes] = {0};
  addChannel(batch, channels, plane, c, lanes, [&](int64_t at) { return static_cast<double>(g[at]); });
  sums[c] = foldLanes(lanes);
}

OCTET_TARGET_AVX2 void sumChannelAvx2(const float* g, double* sums, int64_t batch, int64_t channels, int64_t plane, int64_t c) {
  sumChannel(g, sums, batch, channels, plane, c);
}

void normalizeChannel(const float* x, const double* mean, const float* invStd, const float* gamma, const float* beta, float* xhat,
                      float* out, int64_t batch, int64_t channels, int64_t plane, int64_t c) {
  const double m = mean[c];
  const double inv = invStd[c];
  const float scale = gamma ? gamma[c] : 1.0f;
  const float shift = beta ? beta[c] : 0.0f;
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t base = (n * channels + c) * plane;
    for (int64_t i = 0; i < plane; ++i) {
      const float h = static_cast<float>((x[base + i] - m) * inv);
      xhat[base + i] = h;
      out[base + i] = h * scale + shift;
    }
  }
}

void normBackwardChannel(const float* g, const float* xhat, const float* invStd, const float* gamma, bool training, float* gx,
                         double* sumG, double* sumGX, int64_t batch, int64_t channels, int64_t plane, int64_t c) {
  const double count = static_cast<double>(batch * plane);
  double lanesG[kLanes] = {0}, lanesGX[kLanes] = {0};
  addChannel(batch, channels, plane, c, lanesG, [&](int64_t at) { return static_cast<double>(g[at]); });
  addChannel(batch, channels, plane, c, lanesGX, [&](int64_t at) { return static_cast<double>(g[at]) * xhat[at]; });
  const double sg = foldLanes(lanesG), sgx = foldLanes(lanesGX);
  sumG[c] = sg;
  sumGX[c] = sgx;
  if (!gx) return;
  const double scale = (gamma ? gamma[c] : 1.0f) * static_cast<double>(invStd[c]);
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t base = (n * channels + c) * plane;
    for (int64_t i = 0; i < plane; ++i) {
      gx[base + i] = training ? static_cast<float>(scale / count * (count * g[base + i] - sg - xhat[base + i] * sgx))
                              : static_cast<float>(scale * g[base + i]);
    }
  }
}

#ifdef OCTET_X86
// Batch norm's channel passes on 8 double lanes (one zmm): the same operations per element, in
// the same order per lane, as the loops above (lane l holds plane positions i with i % 8 == l;
// a plane's last partial group goes to lanes 0..r-1 under a mask), so the same bits.
#define OCTET_AVX512_NORM __attribute__((target("avx512f")))

OCTET_AVX512_NORM inline __m512d widen8(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
OCTET_AVX512_NORM inline __m512d widenFirst(const float* p, int r) {
  return _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << r) - 1), p)));
}

OCTET_AVX512_NORM inline double foldVector(__m512d v) {
  double l[kLanes];
  _mm512_storeu_pd(l, v);
  return foldLanes(l);
}

// Channels [c0, c1) image by image (a block of channels is contiguous in each image, so small
// planes stream), each channel's lanes in a vector kept in `lanes` between images.
OCTET_AVX512_NORM void meanVarBlockAvx512(const float* x, double* mean, double* var, int64_t batch, int64_t channels, int64_t plane,
                                          int64_t c0, int64_t c1) {
  const double count = static_cast<double>(batch * plane);
  const int64_t full = plane & ~int64_t(kLanes - 1);
  const int r = static_cast<int>(plane - full);
  const __mmask8 tail = static_cast<__mmask8>((1u << r) - 1);
  std::vector<double> lanes(static_cast<size_t>((c1 - c0) * kLanes), 0.0);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      const float* p = x + (n * channels + c) * plane;
      __m512d acc = _mm512_loadu_pd(&lanes[(c - c0) * kLanes]);
      for (int64_t i = 0; i < full; i += kLanes) acc = _mm512_add_pd(acc, widen8(p + i));
      if (r) acc = _mm512_mask_add_pd(acc, tail, acc, widenFirst(p + full, r));
      _mm512_storeu_pd(&lanes[(c - c0) * kLanes], acc);
    }
  }
  for (int64_t c = c0; c < c1; ++c) mean[c] = foldLanes(&lanes[(c - c0) * kLanes]) / count;
  std::fill(lanes.begin(), lanes.end(), 0.0);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      const float* p = x + (n * channels + c) * plane;
      const __m512d mv = _mm512_set1_pd(mean[c]);
      __m512d squares = _mm512_loadu_pd(&lanes[(c - c0) * kLanes]);
      for (int64_t i = 0; i < full; i += kLanes) {
        const __m512d d = _mm512_sub_pd(widen8(p + i), mv);
        squares = _mm512_add_pd(squares, _mm512_mul_pd(d, d));
      }
      if (r) {
        const __m512d d = _mm512_sub_pd(widenFirst(p + full, r), mv);
        squares = _mm512_mask_add_pd(squares, tail, squares, _mm512_mul_pd(d, d));
      }
      _mm512_storeu_pd(&lanes[(c - c0) * kLanes], squares);
    }
  }
  for (int64_t c = c0; c < c1; ++c) var[c] = foldLanes(&lanes[(c - c0) * kLanes]) / count;
}

// Rows [row0, row1) of the [N*C, plane] view (row = n * channels + c), in memory order.
OCTET_AVX512_NORM void normalizeRowsAvx512(const float* x, const double* mean, const float* invStd, const float* gamma, const float* beta,
                                           float* xhat, float* out, int64_t channels, int64_t plane, int64_t row0, int64_t row1) {
  const int64_t full = plane & ~int64_t(kLanes - 1);
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t c = row % channels, base = row * plane;
    const double m = mean[c];
    const double inv = invStd[c];
    const float scale = gamma ? gamma[c] : 1.0f;
    const float shift = beta ? beta[c] : 0.0f;
    const __m512d mv = _mm512_set1_pd(m), iv = _mm512_set1_pd(inv);
    const __m256 sv = _mm256_set1_ps(scale), tv = _mm256_set1_ps(shift);
    for (int64_t i = 0; i < full; i += kLanes) {
      const __m256 h = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(widen8(x + base + i), mv), iv));
      _mm256_storeu_ps(xhat + base + i, h);
      _mm256_storeu_ps(out + base + i, _mm256_add_ps(_mm256_mul_ps(h, sv), tv));
    }
    for (int64_t i = full; i < plane; ++i) {
      const float h = static_cast<float>((x[base + i] - m) * inv);
      xhat[base + i] = h;
      out[base + i] = h * scale + shift;
    }
  }
}

// The two sums in one pass over g and xhat (each lane's adds in the order of the two loops of
// normBackwardChannel), channels [c0, c1) image by image as meanVarBlockAvx512 goes; then gx.
// xhatRow(base) gives the plane of xhat that starts at `base` (the array itself, or codes decoded
// into a buffer of the calling thread).
template <class XhatRow>
OCTET_AVX512_NORM void normBackwardBlockAvx512(const float* g, XhatRow xhatRow, const float* invStd, const float* gamma, bool training,
                                               float* gx, double* sumG, double* sumGX, int64_t batch, int64_t channels, int64_t plane,
                                               int64_t c0, int64_t c1) {
  const double count = static_cast<double>(batch * plane);
  const int64_t full = plane & ~int64_t(kLanes - 1);
  const int r = static_cast<int>(plane - full);
  const __mmask8 tail = static_cast<__mmask8>((1u << r) - 1);
  std::vector<double> lanes(static_cast<size_t>((c1 - c0) * 2 * kLanes), 0.0);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t base = (n * channels + c) * plane;
      const float* xh = xhatRow(base);
      double* l = &lanes[(c - c0) * 2 * kLanes];
      __m512d accG = _mm512_loadu_pd(l), accGX = _mm512_loadu_pd(l + kLanes);
      for (int64_t i = 0; i < full; i += kLanes) {
        const __m512d gd = widen8(g + base + i);
        accG = _mm512_add_pd(accG, gd);
        accGX = _mm512_add_pd(accGX, _mm512_mul_pd(gd, widen8(xh + i)));
      }
      if (r) {
        const __m512d gd = widenFirst(g + base + full, r);
        accG = _mm512_mask_add_pd(accG, tail, accG, gd);
        accGX = _mm512_mask_add_pd(accGX, tail, accGX, _mm512_mul_pd(gd, widenFirst(xh + full, r)));
      }
      _mm512_storeu_pd(l, accG);
      _mm512_storeu_pd(l + kLanes, accGX);
    }
  }
  for (int64_t c = c0; c < c1; ++c) {
    sumG[c] = foldLanes(&lanes[(c - c0) * 2 * kLanes]);
    sumGX[c] = foldLanes(&lanes[(c - c0) * 2 * kLanes + kLanes]);
  }
  if (!gx) return;
  const __m512d cv = _mm512_set1_pd(count);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t base = (n * channels + c) * plane;
      const float* xh = xhatRow(base);
      const double sg = sumG[c], sgx = sumGX[c];
      const double scale = (gamma ? gamma[c] : 1.0f) * static_cast<double>(invStd[c]);
      const double k = scale / count;
      const __m512d kv = _mm512_set1_pd(training ? k : scale), sgv = _mm512_set1_pd(sg), sgxv = _mm512_set1_pd(sgx);
      if (training) {
        for (int64_t i = 0; i < full; i += kLanes) {
          const __m512d t = _mm512_sub_pd(_mm512_sub_pd(_mm512_mul_pd(cv, widen8(g + base + i)), sgv), _mm512_mul_pd(widen8(xh + i), sgxv));
          _mm256_storeu_ps(gx + base + i, _mm512_cvtpd_ps(_mm512_mul_pd(kv, t)));
        }
      } else {
        for (int64_t i = 0; i < full; i += kLanes) _mm256_storeu_ps(gx + base + i, _mm512_cvtpd_ps(_mm512_mul_pd(kv, widen8(g + base + i))));
      }
      for (int64_t i = full; i < plane; ++i) {
        gx[base + i] = training ? static_cast<float>(k * (count * g[base + i] - sg - xh[i] * sgx)) : static_cast<float>(scale * g[base + i]);
      }
    }
  }
}

// The same blocks on AVX2: the 8 double lanes as two vectors of 4 (lanes 0-3 and 4-7), a plane's
// last partial group added lane by lane into lanes 0..r-1 (the masked add's lanes); every lane the
// same operations in the same order as the AVX-512 blocks and the plain loops (the build keeps
// multiplies and adds apart, -ffp-contract=off), so the same bits.
#define OCTET_AVX2_NORM __attribute__((target("avx2")))

OCTET_AVX2_NORM inline __m256d widen4(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }

OCTET_AVX2_NORM void meanVarBlockAvx2(const float* x, double* mean, double* var, int64_t batch, int64_t channels, int64_t plane, int64_t c0,
                                      int64_t c1) {
  const double count = static_cast<double>(batch * plane);
  const int64_t full = plane & ~int64_t(kLanes - 1);
  std::vector<double> lanes(static_cast<size_t>((c1 - c0) * kLanes), 0.0);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      const float* p = x + (n * channels + c) * plane;
      double* l = &lanes[(c - c0) * kLanes];
      __m256d lo = _mm256_loadu_pd(l), hi = _mm256_loadu_pd(l + 4);
      for (int64_t i = 0; i < full; i += kLanes) {
        lo = _mm256_add_pd(lo, widen4(p + i));
        hi = _mm256_add_pd(hi, widen4(p + i + 4));
      }
      _mm256_storeu_pd(l, lo);
      _mm256_storeu_pd(l + 4, hi);
      for (int64_t i = full; i < plane; ++i) l[i - full] += static_cast<double>(p[i]);
    }
  }
  for (int64_t c = c0; c < c1; ++c) mean[c] = foldLanes(&lanes[(c - c0) * kLanes]) / count;
  std::fill(lanes.begin(), lanes.end(), 0.0);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      const float* p = x + (n * channels + c) * plane;
      const double m = mean[c];
      const __m256d mv = _mm256_set1_pd(m);
      double* l = &lanes[(c - c0) * kLanes];
      __m256d lo = _mm256_loadu_pd(l), hi = _mm256_loadu_pd(l + 4);
      for (int64_t i = 0; i < full; i += kLanes) {
        const __m256d d0 = _mm256_sub_pd(widen4(p + i), mv), d1 = _mm256_sub_pd(widen4(p + i + 4), mv);
        lo = _mm256_add_pd(lo, _mm256_mul_pd(d0, d0));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(d1, d1));
      }
      _mm256_storeu_pd(l, lo);
      _mm256_storeu_pd(l + 4, hi);
      for (int64_t i = full; i < plane; ++i) {
        const double d = p[i] - m;
        l[i - full] += d * d;
      }
    }
  }
  for (int64_t c = c0; c < c1; ++c) var[c] = foldLanes(&lanes[(c - c0) * kLanes]) / count;
}

// normalizeRowsAvx512 on AVX2.
OCTET_AVX2_NORM void normalizeRowsAvx2(const float* x, const double* mean, const float* invStd, const float* gamma, const float* beta, float* xhat,
                                       float* out, int64_t channels, int64_t plane, int64_t row0, int64_t row1) {
  const int64_t full = plane & ~int64_t(kLanes - 1);
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t c = row % channels, base = row * plane;
    const double m = mean[c];
    const double inv = invStd[c];
    const float scale = gamma ? gamma[c] : 1.0f;
    const float shift = beta ? beta[c] : 0.0f;
    const __m256d mv = _mm256_set1_pd(m), iv = _mm256_set1_pd(inv);
    const __m256 sv = _mm256_set1_ps(scale), tv = _mm256_set1_ps(shift);
    for (int64_t i = 0; i < full; i += kLanes) {
      const __m128 h0 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(widen4(x + base + i), mv), iv));
      const __m128 h1 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(widen4(x + base + i + 4), mv), iv));
      const __m256 h = _mm256_set_m128(h1, h0);
      _mm256_storeu_ps(xhat + base + i, h);
      _mm256_storeu_ps(out + base + i, _mm256_add_ps(_mm256_mul_ps(h, sv), tv));
    }
    for (int64_t i = full; i < plane; ++i) {
      const float h = static_cast<float>((x[base + i] - m) * inv);
      xhat[base + i] = h;
      out[base + i] = h * scale + shift;
    }
  }
}

// normBackwardBlockAvx512 on AVX2.
template <class XhatRow>
OCTET_AVX2_NORM void normBackwardBlockAvx2(const float* g, XhatRow xhatRow, const float* invStd, const float* gamma, bool training, float* gx,
                                           double* sumG, double* sumGX, int64_t batch, int64_t channels, int64_t plane, int64_t c0, int64_t c1) {
  const double count = static_cast<double>(batch * plane);
  const int64_t full = plane & ~int64_t(kLanes - 1);
  std::vector<double> lanes(static_cast<size_t>((c1 - c0) * 2 * kLanes), 0.0);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t base = (n * channels + c) * plane;
      const float* xh = xhatRow(base);
      double* l = &lanes[(c - c0) * 2 * kLanes];
      __m256d g0 = _mm256_loadu_pd(l), g1 = _mm256_loadu_pd(l + 4), gx0 = _mm256_loadu_pd(l + kLanes), gx1 = _mm256_loadu_pd(l + kLanes + 4);
      for (int64_t i = 0; i < full; i += kLanes) {
        const __m256d a = widen4(g + base + i), b = widen4(g + base + i + 4);
        g0 = _mm256_add_pd(g0, a);
        g1 = _mm256_add_pd(g1, b);
        gx0 = _mm256_add_pd(gx0, _mm256_mul_pd(a, widen4(xh + i)));
        gx1 = _mm256_add_pd(gx1, _mm256_mul_pd(b, widen4(xh + i + 4)));
      }
      _mm256_storeu_pd(l, g0);
      _mm256_storeu_pd(l + 4, g1);
      _mm256_storeu_pd(l + kLanes, gx0);
      _mm256_storeu_pd(l + kLanes + 4, gx1);
      for (int64_t i = full; i < plane; ++i) {
        const double gd = g[base + i];
        l[i - full] += gd;
        l[kLanes + i - full] += gd * static_cast<double>(xh[i]);
      }
    }
  }
  for (int64_t c = c0; c < c1; ++c) {
    sumG[c] = foldLanes(&lanes[(c - c0) * 2 * kLanes]);
    sumGX[c] = foldLanes(&lanes[(c - c0) * 2 * kLanes + kLanes]);
  }
  if (!gx) return;
  const __m256d cv = _mm256_set1_pd(count);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t base = (n * channels + c) * plane;
      const float* xh = xhatRow(base);
      const double sg = sumG[c], sgx = sumGX[c];
      const double scale = (gamma ? gamma[c] : 1.0f) * static_cast<double>(invStd[c]);
      const double k = scale / count;
      const __m256d kv = _mm256_set1_pd(training ? k : scale), sgv = _mm256_set1_pd(sg), sgxv = _mm256_set1_pd(sgx);
      for (int64_t i = 0; i < full; i += 4) {
        const __m256d gd = widen4(g + base + i);
        const __m256d t = training ? _mm256_sub_pd(_mm256_sub_pd(_mm256_mul_pd(cv, gd), sgv), _mm256_mul_pd(widen4(xh + i), sgxv)) : gd;
        _mm_storeu_ps(gx + base + i, _mm256_cvtpd_ps(_mm256_mul_pd(kv, t)));
      }
      for (int64_t i = full; i < plane; ++i) {
        gx[base + i] = training ? static_cast<float>(k * (count * g[base + i] - sg - xh[i] * sgx)) : static_cast<float>(scale * g[base + i]);
      }
    }
  }
}

// Channels a task takes so that a block's values (two arrays of float32) stay within about 512 KB
// between its passes, and every thread gets several tasks.
inline int64_t channelBlock(int64_t batch, int64_t channels, int64_t plane, int threads) {
  const int64_t bytes = std::max<int64_t>(1, batch * plane * 8);
  const int64_t fit = std::max<int64_t>(1, (int64_t(1) << 19) / bytes);
  const int64_t spread = std::max<int64_t>(1, channels / (4 * std::max(threads, 1)));
  return std::min(fit, spread);
}

template <typename Fn>
void perChannelBlock(int64_t batch, int64_t channels, int64_t plane, int threads, Fn fn) {
  const int64_t cb = channelBlock(batch, channels, plane, threads);
  const int64_t tasks = (channels + cb - 1) / cb;
  parallelFor(tasks, batch * channels * plane < 32768 ? 1 : threads, [&](int64_t t) { fn(t * cb, std::min(channels, (t + 1) * cb)); });
}
#endif

inline void adamwMomentsRange(float* m, float* v, const float* g, double beta1, double beta2, int64_t b, int64_t e) {
  const double a1 = 1.0 - beta1, a2 = 1.0 - beta2;
  for (int64_t i = b; i < e; ++i) {
    const double gi = g[i];
    m[i] = static_cast<float>(beta1 * m[i] + a1 * gi);
    v[i] = static_cast<float>(beta2 * v[i] + a2 * gi * gi);
  }
}

OCTET_TARGET_AVX2 void adamwMomentsRangeAvx2(float* m, float* v, const float* g, double beta1, double beta2, int64_t b, int64_t e) {
  adamwMomentsRange(m, v, g, beta1, beta2, b, e);
}

inline void adamwApplyRange(float* p, const float* m, const float* v, double decay, double stepSize, double c2Sqrt, double eps, int64_t b,
                            int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    p[i] = static_cast<float>(p[i] * decay - (stepSize * m[i]) / (std::sqrt(static_cast<double>(v[i])) / c2Sqrt + eps));
  }
}

OCTET_TARGET_AVX2 void adamwApplyRangeAvx2(float* p, const float* m, const float* v, double decay, double stepSize, double c2Sqrt,
                                           double eps, int64_t b, int64_t e) {
  adamwApplyRange(p, m, v, decay, stepSize, c2Sqrt, eps, b, e);
}

// Both halves of AdamW for the entries where keep is nonzero (the others left as they are), each
// entry's operations those of adamwMomentsRange then adamwApplyRange. Runs of eight pruned entries
// are passed over with one load of their mask bytes.
inline void adamwMaskedRange(float* p, float* m, float* v, const float* g, const uint8_t* keep, double beta1, double beta2, double decay,
                             double stepSize, double c2Sqrt, double eps, int64_t b, int64_t e) {
  const double a1 = 1.0 - beta1, a2 = 1.0 - beta2;
  for (int64_t i = b; i < e;) {
    if (i + 8 <= e) {
      uint64_t bytes;
      std::memcpy(&bytes, keep + i, 8);
      if (bytes == 0) {
        i += 8;
        continue;
      }
    }
    const int64_t end = std::min(e, i + 8);
    for (; i < end; ++i) {
      if (!keep[i]) continue;
      const double gi = g[i];
      const float mi = static_cast<float>(beta1 * m[i] + a1 * gi);
      const float vi = static_cast<float>(beta2 * v[i] + a2 * gi * gi);
      m[i] = mi;
      v[i] = vi;
      p[i] = static_cast<float>(p[i] * decay - (stepSize * mi) / (std::sqrt(static_cast<double>(vi)) / c2Sqrt + eps));
    }
  }
}

#ifdef OCTET_X86
// ReLU over [b, e) (b a multiple of 16) with the mask from the comparison's bits.
__attribute__((target("avx512f"))) void reluAvx512(const float* x, float* out, uint8_t* mask, int64_t b, int64_t e) {
  const __m512 zero = _mm512_setzero_ps();
  int64_t i = b;
  for (; i + 16 <= e; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __mmask16 positive = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
    _mm512_storeu_ps(out + i, _mm512_maskz_mov_ps(positive, v));
    if (mask) std::memcpy(mask + (i >> 3), &positive, 2);
  }
  if (i < e) {
    const __mmask16 live = static_cast<__mmask16>((1u << (e - i)) - 1u);
    const __m512 v = _mm512_maskz_loadu_ps(live, x + i);
    const __mmask16 positive = _mm512_mask_cmp_ps_mask(live, v, zero, _CMP_GT_OQ);
    _mm512_mask_storeu_ps(out + i, live, _mm512_maskz_mov_ps(positive, v));
    if (mask) {
      mask[i >> 3] = static_cast<uint8_t>(positive);
      if (e - i > 8) mask[(i >> 3) + 1] = static_cast<uint8_t>(positive >> 8);
    }
  }
}

__attribute__((target("avx512f"))) void reluBackwardAvx512(const uint8_t* mask, const float* g, float* out, int64_t b, int64_t e) {
  int64_t i = b;
  for (; i + 16 <= e; i += 16) {
    __mmask16 keep;
    std::memcpy(&keep, mask + (i >> 3), 2);
    _mm512_storeu_ps(out + i, _mm512_maskz_loadu_ps(keep, g + i));
  }
  for (; i < e; ++i) out[i] = (mask[i >> 3] >> (i & 7)) & 1u ? g[i] : 0.0f;
}

// The same two on AVX2 (b a multiple of 8): a mask byte per 8 lanes, from the sign bits of the
// comparison; the backward spreads a byte over 8 lanes by testing one bit per lane.
__attribute__((target("avx2"))) void reluAvx2(const float* x, float* out, uint8_t* mask, int64_t b, int64_t e) {
  const __m256 zero = _mm256_setzero_ps();
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 positive = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
    _mm256_storeu_ps(out + i, _mm256_and_ps(v, positive));
    if (mask) mask[i >> 3] = static_cast<uint8_t>(_mm256_movemask_ps(positive));
  }
  if (i < e) {
    unsigned bits = 0;
    for (int64_t j = i; j < e; ++j) {
      out[j] = x[j] > 0.0f ? x[j] : 0.0f;
      bits |= unsigned(x[j] > 0.0f) << (j - i);
    }
    if (mask) mask[i >> 3] = static_cast<uint8_t>(bits);
  }
}

__attribute__((target("avx2"))) void reluBackwardAvx2(const uint8_t* mask, const float* g, float* out, int64_t b, int64_t e) {
  const __m256i laneBit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    const __m256i keep = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(mask[i >> 3]), laneBit), laneBit);
    _mm256_storeu_ps(out + i, _mm256_and_ps(_mm256_loadu_ps(g + i), _mm256_castsi256_ps(keep)));
  }
  for (; i < e; ++i) out[i] = (mask[i >> 3] >> (i & 7)) & 1u ? g[i] : 0.0f;
}
#endif

}  // namespace

// Chunks are multiples of 8 elements, so threads write disjoint mask bytes.
namespace {
template <typename T>
void zeroWhereTyped(T* v, const uint8_t* keep, int64_t n, int threads) {
  const int64_t slice = 1 << 16;
  parallelFor((n + slice - 1) / slice, n < (int64_t(1) << 18) ? 1 : threads, [&](int64_t s) {
    const int64_t end = std::min(n, (s + 1) * slice);
    for (int64_t i = s * slice; i < end; ++i) v[i] = keep[i] ? v[i] : T(0);
  });
}
}  // namespace

void zeroWhere(void* values, int bytes, const uint8_t* keep, int64_t n, int threads) {
  if (bytes == 4) zeroWhereTyped(static_cast<uint32_t*>(values), keep, n, threads);
  else if (bytes == 2) zeroWhereTyped(static_cast<uint16_t*>(values), keep, n, threads);
  else zeroWhereTyped(static_cast<uint8_t*>(values), keep, n, threads);
}

void reluForward(const float* x, float* out, uint8_t* mask, int64_t n, int threads) {
  chunks(n, threads, [&](int64_t b, int64_t e) {
#ifdef OCTET_X86
    if (cpuHasAvx512()) {
      reluAvx512(x, out, mask, b, e);
      return;
    }
    if (cpuHasAvx2()) {
      reluAvx2(x, out, mask, b, e);
      return;
    }
#endif
    for (int64_t i = b; i < e; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
    if (!mask) return;
    for (int64_t i = b; i < e; i += 8) {
      unsigned bits = 0;
      const int64_t end = i + 8 < e ? i + 8 : e;
      for (int64_t j = i; j < end; ++j) bits |= unsigned(x[j] > 0.0f) << (j - i);
      mask[i >> 3] = uint8_t(bits);
    }
  });
}

void reluBackward(const uint8_t* mask, const float* g, float* out, int64_t n, int threads) {
  chunks(n, threads, [&](int64_t b, int64_t e) {
#ifdef OCTET_X86
    if (cpuHasAvx512()) {
      reluBackwardAvx512(mask, g, out, b, e);
      return;
    }
    if (cpuHasAvx2()) {
      reluBackwardAvx2(mask, g, out, b, e);
      return;
    }
#endif
    for (int64_t i = b; i < e; ++i) out[i] = (mask[i >> 3] >> (i & 7)) & 1u ? g[i] : 0.0f;
  });
}

#ifdef OCTET_X86
// adamwMaskedRange eight entries at a time in double lanes (the same operations per entry), the
// results stored where kept; runs of eight pruned entries passed over.
__attribute__((target("avx512f"))) void adamwMaskedAvx512(float* p, float* m, float* v, const float* g, const uint8_t* keep, double beta1, double beta2,
                                                          double decay, double stepSize, double c2Sqrt, double eps, int64_t b, int64_t e) {
  const __m512d b1 = _mm512_set1_pd(beta1), b2 = _mm512_set1_pd(beta2), a1 = _mm512_set1_pd(1.0 - beta1), a2 = _mm512_set1_pd(1.0 - beta2);
  const __m512d dv = _mm512_set1_pd(decay), sv = _mm512_set1_pd(stepSize), cv = _mm512_set1_pd(c2Sqrt), ev = _mm512_set1_pd(eps);
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    uint64_t bytes;
    std::memcpy(&bytes, keep + i, 8);
    if (bytes == 0) continue;
    // One bit per nonzero byte.
    uint64_t t = bytes | (bytes >> 4);
    t |= t >> 2;
    t |= t >> 1;
    t &= 0x0101010101010101ull;
    const __mmask16 kept = static_cast<__mmask16>((t * 0x0102040810204080ull) >> 56);
    const __m512d gd = _mm512_cvtps_pd(_mm256_loadu_ps(g + i));
    const __m256 mf = _mm512_cvtpd_ps(_mm512_add_pd(_mm512_mul_pd(b1, _mm512_cvtps_pd(_mm256_loadu_ps(m + i))), _mm512_mul_pd(a1, gd)));
    const __m256 vf = _mm512_cvtpd_ps(_mm512_add_pd(_mm512_mul_pd(b2, _mm512_cvtps_pd(_mm256_loadu_ps(v + i))), _mm512_mul_pd(_mm512_mul_pd(a2, gd), gd)));
    const __m512d step = _mm512_div_pd(_mm512_mul_pd(sv, _mm512_cvtps_pd(mf)), _mm512_add_pd(_mm512_div_pd(_mm512_sqrt_pd(_mm512_cvtps_pd(vf)), cv), ev));
    const __m256 pf = _mm512_cvtpd_ps(_mm512_sub_pd(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(p + i)), dv), step));
    _mm512_mask_storeu_ps(m + i, kept, _mm512_castps256_ps512(mf));
    _mm512_mask_storeu_ps(v + i, kept, _mm512_castps256_ps512(vf));
    _mm512_mask_storeu_ps(p + i, kept, _mm512_castps256_ps512(pf));
  }
  adamwMaskedRange(p, m, v, g, keep, beta1, beta2, decay, stepSize, c2Sqrt, eps, i, e);
}
#endif

void adamwMasked(float* p, float* m, float* v, const float* g, const uint8_t* keep, double beta1, double beta2, double decay, double stepSize,
                 double c2Sqrt, double eps, int64_t n, int threads) {
#ifdef OCTET_X86
  if (cpuHasAvx512()) {
    chunks(n, threads, [&](int64_t b, int64_t e) { adamwMaskedAvx512(p, m, v, g, keep, beta1, beta2, decay, stepSize, c2Sqrt, eps, b, e); });
    return;
  }
#endif
  chunks(n, threads, [&](int64_t b, int64_t e) { adamwMaskedRange(p, m, v, g, keep, beta1, beta2, decay, stepSize, c2Sqrt, eps, b, e); });
}

void adamwMoments(float* m, float* v, const float* g, double beta1, double beta2, int64_t n, int threads) {
  const bool avx2 = cpuHasAvx2();
  chunks(n, threads, [&](int64_t b, int64_t e) {
    if (avx2) adamwMomentsRangeAvx2(m, v, g, beta1, beta2, b, e);
    else adamwMomentsRange(m, v, g, beta1, beta2, b, e);
  });
}

void adamwApply(float* p, const float* m, const float* v, double decay, double stepSize, double c2Sqrt, double eps, int64_t n,
                int threads) {
  const bool avx2 = cpuHasAvx2();
  chunks(n, threads, [&](int64_t b, int64_t e) {
    if (avx2) adamwApplyRangeAvx2(p, m, v, decay, stepSize, c2Sqrt, eps, b, e);
    else adamwApplyRange(p, m, v, decay, stepSize, c2Sqrt, eps, b, e);
  });
}

void addArrays(const float* a, const float* b, float* out, int64_t n, int threads) {
  chunks(n, threads, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) out[i] = a[i] + b[i];
  });
}

void channelBiasAdd(float* out, const float* bias, int64_t batch, int64_t channels, int64_t plane, int threads) {
  perChannel(batch, channels, plane, threads, [&](int64_t c) {
    const float v = bias[c];
    for (int64_t n = 0; n < batch; ++n) {
      float* p = out + (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) p[i] += v;
    }
  });
}

void channelSum(const float* g, double* sums, int64_t batch, int64_t channels, int64_t plane, int threads) {
  const bool avx2 = cpuHasAvx2();
  perChannel(batch, channels, plane, threads, [&](int64_t c) {
    if (avx2) sumChannelAvx2(g, sums, batch, channels, plane, c);
    else sumChannel(g, sums, batch, channels, plane, c);
  });
}

void channelMeanVar(const float* x, double* mean, double* var, int64_t batch, int64_t channels, int64_t plane,
                    int threads) {
#ifdef OCTET_X86
  const bool avx2 = cpuHasAvx2();
  if (cpuHasAvx512()) {
    return perChannelBlock(batch, channels, plane, threads, [&](int64_t c0, int64_t c1) { meanVarBlockAvx512(x, mean, var, batch, channels, plane, c0, c1); });
  }
  if (avx2) {
    return perChannelBlock(batch, channels, plane, threads, [&](int64_t c0, int64_t c1) { meanVarBlockAvx2(x, mean, var, batch, channels, plane, c0, c1); });
  }
#endif
  perChannel(batch, channels, plane, threads, [&](int64_t c) { meanVarChannel(x, mean, var, batch, channels, plane, c); });
}

void batchNormForward(const float* x, const double* mean, const float* invStd, const float* gamma, const float* beta,
                      float* xhat, float* out, int64_t batch, int64_t channels, int64_t plane, int threads) {
#ifdef OCTET_X86
  const bool avx2 = cpuHasAvx2();
  if (cpuHasAvx512() || avx2) {
    // Elementwise once the statistics are known: rows in memory order, about 16K values a task.
    const bool wide = cpuHasAvx512();
    const int64_t rows = batch * channels, per = std::max<int64_t>(1, 16384 / std::max<int64_t>(plane, 1));
    const int64_t tasks = (rows + per - 1) / per;
    parallelFor(tasks, batch * channels * plane < 32768 ? 1 : threads, [&](int64_t t) {
      if (wide) normalizeRowsAvx512(x, mean, invStd, gamma, beta, xhat, out, channels, plane, t * per, std::min(rows, (t + 1) * per));
      else normalizeRowsAvx2(x, mean, invStd, gamma, beta, xhat, out, channels, plane, t * per, std::min(rows, (t + 1) * per));
    });
    return;
  }
#endif
  perChannel(batch, channels, plane, threads, [&](int64_t c) { normalizeChannel(x, mean, invStd, gamma, beta, xhat, out, batch, channels, plane, c); });
}

void batchNormBackward(const float* g, const float* xhat, const float* invStd, const float* gamma, bool training,
                       float* gx, double* sumG, double* sumGX, int64_t batch, int64_t channels, int64_t plane,
                       int threads) {
#ifdef OCTET_X86
  const bool avx2 = cpuHasAvx2();
  if (cpuHasAvx512()) {
    return perChannelBlock(batch, channels, plane, threads, [&](int64_t c0, int64_t c1) {
      normBackwardBlockAvx512(g, [xhat](int64_t base) { return xhat + base; }, invStd, gamma, training, gx, sumG, sumGX, batch, channels, plane, c0, c1);
    });
  }
  if (avx2) {
    return perChannelBlock(batch, channels, plane, threads, [&](int64_t c0, int64_t c1) {
      normBackwardBlockAvx2(g, [xhat](int64_t base) { return xhat + base; }, invStd, gamma, training, gx, sumG, sumGX, batch, channels, plane, c0, c1);
    });
  }
#endif
  perChannel(batch, channels, plane, threads, [&](int64_t c) { normBackwardChannel(g, xhat, invStd, gamma, training, gx, sumG, sumGX, batch, channels, plane, c); });
}

void batchNormBackwardCodes(const float* g, const uint8_t* codes, const float* table, bool e5m2, double scale, const float* invStd, const float* gamma,
                            bool training, float* gx, double* sumG, double* sumGX, int64_t batch, int64_t channels, int64_t plane, int threads) {
  // dequantize's values: decode, then x / scale (a power of two with |log2| < 126: x * (1 / scale) in float32).
  const int exponent = std::ilogb(scale);
  const bool powerOfTwo = std::ldexp(1.0, exponent) == scale && std::abs(exponent) < 126;
  const float inverse = static_cast<float>(1.0 / scale);
  auto decodeRow = [&](const uint8_t* from, float* to) {
    decodeCodes(from, table, e5m2, plane, to);
    if (scale == 1.0) return;
    if (powerOfTwo) {
      for (int64_t i = 0; i < plane; ++i) to[i] = to[i] * inverse;
    } else {
      for (int64_t i = 0; i < plane; ++i) to[i] = static_cast<float>(to[i] / scale);
    }
  };
#ifdef OCTET_X86
  if (cpuHasAvx512() || cpuHasAvx2()) {
    const bool wide = cpuHasAvx512();
    return perChannelBlock(batch, channels, plane, threads, [&](int64_t c0, int64_t c1) {
      thread_local std::vector<float> row;
      row.resize(static_cast<size_t>(plane));
      auto decoded = [&](int64_t base) {
        decodeRow(codes + base, row.data());
        return static_cast<const float*>(row.data());
      };
      if (wide) normBackwardBlockAvx512(g, decoded, invStd, gamma, training, gx, sumG, sumGX, batch, channels, plane, c0, c1);
      else normBackwardBlockAvx2(g, decoded, invStd, gamma, training, gx, sumG, sumGX, batch, channels, plane, c0, c1);
    });
  }
#endif
  std::vector<float> xhat(static_cast<size_t>(batch * channels * plane));
  parallelFor(batch * channels, threads, [&](int64_t r) { decodeRow(codes + r * plane, xhat.data() + r * plane); });
  batchNormBackward(g, xhat.data(), invStd, gamma, training, gx, sumG, sumGX, batch, channels, plane, threads);
}

}  // namespace octet

namespace octet {
namespace {

// fn(t, begin, end) for `team` contiguous slices of [0, n).
template <typename Fn>
void parallelChunks(int64_t n, int team, Fn fn) {
  parallelFor(team, team, [&](int64_t t) { fn(int(t), n * t / team, n * (t + 1) / team); });
}

// The largest magnitude as bits: for non-negative floats the integer order of the bit patterns is
// the numeric order, and Inf and NaN lie above every finite value, so an unsigned integer max
// (which vectorizes, unlike a float max with NaN rules) finds both the amax and any non-finite.
inline uint32_t absMaxBits(const uint32_t* x, int64_t begin, int64_t end) {
  uint32_t m = 0;
  for (int64_t i = begin; i < end; ++i) {
    const uint32_t a = x[i] & 0x7fffffffu;
    m = a > m ? a : m;
  }
  return m;
}

OCTET_TARGET_AVX2 uint32_t absMaxBitsAvx2(const uint32_t* x, int64_t begin, int64_t end) { return absMaxBits(x, begin, end); }

// out = fl32(x * scale); counts |out| > maxFinite (NaN included) by the same bit order.
inline int64_t scaleCount(const float* x, float scale, float* out, uint32_t maxBits, int64_t begin, int64_t end) {
  int64_t count = 0;
  for (int64_t i = begin; i < end; ++i) {
    const float v = x[i] * scale;
    out[i] = v;
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    count += (bits & 0x7fffffffu) > maxBits;
  }
  return count;
}

OCTET_TARGET_AVX2 int64_t scaleCountAvx2(const float* x, float scale, float* out, uint32_t maxBits, int64_t begin, int64_t end) {
  return scaleCount(x, scale, out, maxBits, begin, end);
}

}  // namespace

float absMax(const float* x, int64_t n, int threads) {
  const int team = n < 65536 ? 1 : threads;
  std::vector<uint32_t> partial(team, 0);
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(x);
  const bool avx2 = cpuHasAvx2();
  parallelChunks(n, team, [&](int t, int64_t begin, int64_t end) {
    partial[t] = avx2 ? absMaxBitsAvx2(bits, begin, end) : absMaxBits(bits, begin, end);
  });
  uint32_t m = 0;
  for (uint32_t p : partial) m = p > m ? p : m;
  if (m >= 0x7f800000u) return std::numeric_limits<float>::quiet_NaN();
  float result;
  std::memcpy(&result, &m, 4);
  return result;
}

int64_t scaleCountOverflow(const float* x, float scale, float* out, int64_t n, float maxFinite, int threads) {
  const int team = n < 65536 ? 1 : threads;
  std::vector<int64_t> partial(team, 0);
  uint32_t maxBits;
  std::memcpy(&maxBits, &maxFinite, 4);
  maxBits &= 0x7fffffffu;
  const bool avx2 = cpuHasAvx2();
  parallelChunks(n, team, [&](int t, int64_t begin, int64_t end) {
    partial[t] = avx2 ? scaleCountAvx2(x, scale, out, maxBits, begin, end) : scaleCount(x, scale, out, maxBits, begin, end);
  });
  int64_t total = 0;
  for (int64_t c : partial) total += c;
  return total;
}

}  // namespace octet
