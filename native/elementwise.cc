#include "elementwise.h"

#include <cmath>
#include <limits>
#include <vector>

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

}  // namespace

float absMax(const float* x, int64_t n, int threads) {
  const int team = n < 65536 ? 1 : threads;
  std::vector<float> partial(team, 0.0f);
  std::vector<int> bad(team, 0);
  parallelChunks(n, team, [&](int t, int64_t begin, int64_t end) {
    float m = 0.0f;
    int nonFinite = 0;
    for (int64_t i = begin; i < end; ++i) {
      const float a = std::fabs(x[i]);
      nonFinite |= !(a <= 3.4028234663852886e38f);
      m = a > m ? a : m;
    }
    partial[t] = m;
    bad[t] = nonFinite;
  });
  float m = 0.0f;
  for (int t = 0; t < team; ++t) {
    if (bad[t]) return std::numeric_limits<float>::quiet_NaN();
    m = partial[t] > m ? partial[t] : m;
  }
  return m;
}

int64_t scaleCountOverflow(const float* x, float scale, float* out, int64_t n, float maxFinite, int threads) {
  const int team = n < 65536 ? 1 : threads;
  std::vector<int64_t> partial(team, 0);
  parallelChunks(n, team, [&](int t, int64_t begin, int64_t end) {
    int64_t count = 0;
    for (int64_t i = begin; i < end; ++i) {
      const float v = x[i] * scale;
      out[i] = v;
      count += !(std::fabs(v) <= maxFinite);
    }
    partial[t] = count;
  });
  int64_t total = 0;
  for (int64_t c : partial) total += c;
  return total;
}

}  // namespace octet
