#include "block_scaled.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "codec_core.h"
#include "parallel.h"

namespace octet {
namespace {

constexpr int kMinScaleExponent = -100;
constexpr int kMaxScaleExponent = 100;

// floor(log2 |x|) of a finite nonzero float32, from its fields (subnormals included).
inline int floorLog2(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u &= 0x7fffffffu;
  const int field = static_cast<int>(u >> 23);
  if (field != 0) return field - 127;
  return 31 - __builtin_clz(u) - 149;
}

// The divisor of a block from its finite amax (block_quant.ts, blockScale).
float blockScale(float amax, const BlockQuantParams& p) {
  if (p.scaleKind == 0) {
    int e = amax > 0 ? floorLog2(amax) - p.emax : -127;
    e = e < -127 ? -127 : (e > 127 ? 127 : e);
    return std::ldexp(1.0f, -e);
  }
  if (!(amax > 0)) return 1.0f;
  if (p.scaleKind == 1) {
    const int ea = floorLog2(amax), ef = floorLog2(p.maxFinite);
    int t = ef - ea - p.margin - (std::ldexp(static_cast<double>(amax), -ea) > std::ldexp(static_cast<double>(p.maxFinite), -ef) ? 1 : 0);
    t = t < kMinScaleExponent ? kMinScaleExponent : (t > kMaxScaleExponent ? kMaxScaleExponent : t);
    return std::ldexp(1.0f, t);
  }
  float s = static_cast<float>(static_cast<double>(p.maxFinite) / (static_cast<double>(amax) * std::ldexp(1.0, p.margin)));
  const float lo = std::ldexp(1.0f, kMinScaleExponent), hi = std::ldexp(1.0f, kMaxScaleExponent);
  return s < lo ? lo : (s > hi ? hi : s);
}

inline uint32_t bitsOf(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}

template <int kRounding>
int64_t quantizeKBlock(const float* values, uint8_t* codes, float* scales, const BlockQuantParams& p, int64_t kb) {
  const int64_t R = p.rows, K = p.k;
  const int64_t k0 = kb * p.blockK, k1 = k0 + p.blockK < K ? k0 + p.blockK : K;
  const int64_t rowBlocks = (R + p.blockRows - 1) / p.blockRows;
  const CodecParams& c = p.codec;
  // amax of each row over the block's K range (finite values), then of each block row.
  std::vector<float> rowMax(static_cast<size_t>(R), 0.0f);
  int64_t nonFinite = 0;
  if (p.kMajorInput) {
    for (int64_t t = k0; t < k1; ++t) {
      const float* v = values + t * R;
      for (int64_t r = 0; r < R; ++r) {
        const float a = std::fabs(v[r]);
        const bool finite = a <= 3.4028234663852886e38f;
        nonFinite += !finite;
        const float f = finite ? a : 0.0f;
        rowMax[r] = f > rowMax[r] ? f : rowMax[r];
      }
    }
  } else {
    for (int64_t r = 0; r < R; ++r) {
      const float* v = values + r * K;
      float m = 0.0f;
      for (int64_t t = k0; t < k1; ++t) {
        const float a = std::fabs(v[t]);
        const bool finite = a <= 3.4028234663852886e38f;
        nonFinite += !finite;
        const float f = finite ? a : 0.0f;
        m = f > m ? f : m;
      }
      rowMax[r] = m;
    }
  }
  std::vector<float> rowScale(static_cast<size_t>(R));
  for (int64_t rb = 0; rb < rowBlocks; ++rb) {
    const int64_t r0 = rb * p.blockRows, r1 = r0 + p.blockRows < R ? r0 + p.blockRows : R;
    float amax = 0.0f;
    for (int64_t r = r0; r < r1; ++r) amax = rowMax[r] > amax ? rowMax[r] : amax;
    const float s = blockScale(amax, p);
    scales[kb * rowBlocks + rb] = s;
    for (int64_t r = r0; r < r1; ++r) rowScale[r] = s;
  }
  for (int64_t t = k0; t < k1; ++t) {
    uint8_t* out = codes + t * R;
    const uint32_t counter = c.counterOffset + static_cast<uint32_t>(t * R);
    if (p.kMajorInput) {
      const float* v = values + t * R;
      for (int64_t r = 0; r < R; ++r) {
        out[r] = static_cast<uint8_t>(codec_core::encodeOne<kRounding>(bitsOf(v[r] * rowScale[r]), c, counter + static_cast<uint32_t>(r)));
      }
    } else {
      for (int64_t r = 0; r < R; ++r) {
        out[r] = static_cast<uint8_t>(codec_core::encodeOne<kRounding>(bitsOf(values[r * K + t] * rowScale[r]), c, counter + static_cast<uint32_t>(r)));
      }
    }
  }
  return nonFinite;
}

}  // namespace

int64_t blockQuantize(const float* values, uint8_t* codes, float* scales, const BlockQuantParams& p, int threads) {
  const int64_t kBlocks = (p.k + p.blockK - 1) / p.blockK;
  std::vector<int64_t> counts(static_cast<size_t>(kBlocks), 0);
  const bool small = p.rows * p.k < 32768;
  parallelFor(kBlocks, small ? 1 : threads, [&](int64_t kb) {
    counts[kb] = p.codec.rounding == kStochastic ? quantizeKBlock<kStochastic>(values, codes, scales, p, kb)
                                                 : quantizeKBlock<kNearest>(values, codes, scales, p, kb);
  });
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  return total;
}

void blockScaleAdd(const float* partial, float* acc, int64_t m, int64_t n, const float* sa, int64_t blockRowsA, const float* sb,
                   int64_t blockRowsB, const CodecParams* outer, const float* lut, int threads) {
  std::vector<float> column(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) column[j] = sb[j / blockRowsB];
  const float* b = column.data();
  // A power-of-two divisor s has an exact reciprocal (2^-127 included, a float32 subnormal), and
  // x * (1 / s) is the same real number as x / s, so it rounds the same: multiply instead.
  auto powerOfTwo = [](float s) {
    int e;
    return std::frexp(s, &e) == 0.5f;
  };
  bool reciprocal = true;
  for (int64_t j = 0; j < n && reciprocal; ++j) reciprocal = powerOfTwo(b[j]);
  for (int64_t i = 0; i < (m + blockRowsA - 1) / blockRowsA && reciprocal; ++i) reciprocal = powerOfTwo(sa[i]);
  std::vector<float> inverse(reciprocal ? static_cast<size_t>(n) : 0);
  for (int64_t j = 0; reciprocal && j < n; ++j) inverse[j] = 1.0f / b[j];
  const float* rb = inverse.data();
  parallelFor(m, m * n < 32768 ? 1 : threads, [&](int64_t i) {
    const float a = sa[i / blockRowsA];
    const float* p = partial + i * n;
    float* c = acc + i * n;
    if (!lut && reciprocal) {
      const float ra = 1.0f / a;
      for (int64_t j = 0; j < n; ++j) c[j] = c[j] + (p[j] * ra) * rb[j];
    } else if (!lut) {
      for (int64_t j = 0; j < n; ++j) c[j] = c[j] + (p[j] / a) / b[j];
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const float sum = c[j] + (p[j] / a) / b[j];
        c[j] = lut[codec_core::encodeOne<kNearest>(bitsOf(sum), *outer, 0)];
      }
    }
  });
}

}  // namespace octet
