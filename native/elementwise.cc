#include "elementwise.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu.h"
#include "parallel.h"

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

}  // namespace

// Chunks are multiples of 8 elements, so threads write disjoint mask bytes.
void reluForward(const float* x, float* out, uint8_t* mask, int64_t n, int threads) {
  chunks(n, threads, [&](int64_t b, int64_t e) {
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
    for (int64_t i = b; i < e; ++i) out[i] = (mask[i >> 3] >> (i & 7)) & 1u ? g[i] : 0.0f;
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
  perChannel(batch, channels, plane, threads, [&](int64_t c) {
    double s = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const float* p = g + (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) s += p[i];
    }
    sums[c] = s;
  });
}

void channelMeanVar(const float* x, double* mean, double* var, int64_t batch, int64_t channels, int64_t plane,
                    int threads) {
  const double count = static_cast<double>(batch * plane);
  perChannel(batch, channels, plane, threads, [&](int64_t c) {
    double s = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const float* p = x + (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) s += p[i];
    }
    const double m = s / count;
    double v = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const float* p = x + (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) {
        const double d = p[i] - m;
        v += d * d;
      }
    }
    mean[c] = m;
    var[c] = v / count;
  });
}

void batchNormForward(const float* x, const double* mean, const float* invStd, const float* gamma, const float* beta,
                      float* xhat, float* out, int64_t batch, int64_t channels, int64_t plane, int threads) {
  perChannel(batch, channels, plane, threads, [&](int64_t c) {
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
  });
}

void batchNormBackward(const float* g, const float* xhat, const float* invStd, const float* gamma, bool training,
                       float* gx, double* sumG, double* sumGX, int64_t batch, int64_t channels, int64_t plane,
                       int threads) {
  const double count = static_cast<double>(batch * plane);
  perChannel(batch, channels, plane, threads, [&](int64_t c) {
    double sg = 0.0, sgx = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const int64_t base = (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) {
        sg += g[base + i];
        sgx += static_cast<double>(g[base + i]) * xhat[base + i];
      }
    }
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
  });
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
