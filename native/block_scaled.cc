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

struct Counts {
  int64_t nonFinite = 0, nonzero = 0, underflow = 0;
};

// One work item: K-block kb, rows [r0, r1) (whole block rows). The slab is gathered k-major,
// then per row amax over the block's K range (finite values), the block rows' scales, and the
// elements scaled in place and encoded by the codec's own (vectorized) encoder, element counter
// t * R + r. Underflow = codes without magnitude bits among non-NaN elements, less the zeros.
Counts quantizeItem(const float* values, uint8_t* codes, float* scales, const BlockQuantParams& p, int64_t kb, int64_t r0, int64_t r1) {
  const int64_t R = p.rows, K = p.k, n = r1 - r0;
  const int64_t k0 = kb * p.blockK, k1 = k0 + p.blockK < K ? k0 + p.blockK : K, len = k1 - k0;
  const int64_t rowBlocks = (R + p.blockRows - 1) / p.blockRows;
  std::vector<float> slab(static_cast<size_t>(len * n)), rowMax(static_cast<size_t>(n), 0.0f), rowScale(static_cast<size_t>(n));
  if (p.kMajorInput) {
    for (int64_t t = 0; t < len; ++t) std::memcpy(slab.data() + t * n, values + (k0 + t) * R + r0, static_cast<size_t>(n) * 4);
  } else {
    for (int64_t r = 0; r < n; ++r) {
      const float* v = values + (r0 + r) * K + k0;
      for (int64_t t = 0; t < len; ++t) slab[t * n + r] = v[t];
    }
  }
  Counts counts;
  int64_t zeros = 0;
  for (int64_t t = 0; t < len; ++t) {
    const float* v = slab.data() + t * n;
    int64_t nonFinite = 0, zero = 0;
    for (int64_t r = 0; r < n; ++r) {
      const float a = std::fabs(v[r]);
      const bool finite = a <= 3.4028234663852886e38f;
      nonFinite += !finite;
      zero += a == 0.0f;
      const float f = finite ? a : 0.0f;
      rowMax[r] = f > rowMax[r] ? f : rowMax[r];
    }
    counts.nonFinite += nonFinite;
    zeros += zero;
  }
  for (int64_t b0 = r0; b0 < r1; b0 += p.blockRows) {
    const int64_t b1 = b0 + p.blockRows < r1 ? b0 + p.blockRows : r1;
    float amax = 0.0f;
    for (int64_t r = b0; r < b1; ++r) amax = rowMax[r - r0] > amax ? rowMax[r - r0] : amax;
    const float s = blockScale(amax, p);
    scales[kb * rowBlocks + b0 / p.blockRows] = s;
    for (int64_t r = b0; r < b1; ++r) rowScale[r - r0] = s;
  }
  int64_t nan = 0;
  for (int64_t t = 0; t < len; ++t) {
    float* v = slab.data() + t * n;
    int64_t q = 0;
    for (int64_t r = 0; r < n; ++r) {
      v[r] = v[r] * rowScale[r];
      q += v[r] != v[r];
    }
    nan += q;
  }
  CodecParams c = p.codec;
  if (n == R) {
    c.counterOffset = p.codec.counterOffset + static_cast<uint32_t>(k0 * R);
    encode(slab.data(), codes + k0 * R, 1, len * n, c, 1);
  } else {
    for (int64_t t = 0; t < len; ++t) {
      c.counterOffset = p.codec.counterOffset + static_cast<uint32_t>((k0 + t) * R + r0);
      encode(slab.data() + t * n, codes + (k0 + t) * R + r0, 1, n, c, 1);
    }
  }
  int64_t noMagnitude = 0;
  for (int64_t t = 0; t < len; ++t) {
    const uint8_t* out = codes + (k0 + t) * R + r0;
    const float* v = slab.data() + t * n;
    int64_t m = 0;
    for (int64_t r = 0; r < n; ++r) m += ((out[r] & p.magnitudeMask) == 0) & (v[r] == v[r]);
    noMagnitude += m;
  }
  counts.nonzero = len * n - zeros - nan;
  counts.underflow = noMagnitude - zeros;
  return counts;
}

}  // namespace

void blockQuantize(const float* values, uint8_t* codes, float* scales, const BlockQuantParams& p, int64_t out[3], int threads) {
  const int64_t kBlocks = (p.k + p.blockK - 1) / p.blockK;
  // Items: K-blocks times chunks of whole block rows of about 4096 rows (or one block row).
  const int64_t chunkRows = p.blockRows >= 4096 ? p.blockRows : ((4096 + p.blockRows - 1) / p.blockRows) * p.blockRows;
  const int64_t rChunks = p.rows > 0 ? (p.rows + chunkRows - 1) / chunkRows : 0;
  std::vector<Counts> counts(static_cast<size_t>(kBlocks * rChunks));
  const bool small = p.rows * p.k < 32768;
  parallelFor(kBlocks * rChunks, small ? 1 : threads, [&](int64_t item) {
    const int64_t kb = item / rChunks, r0 = (item % rChunks) * chunkRows;
    counts[item] = quantizeItem(values, codes, scales, p, kb, r0, r0 + chunkRows < p.rows ? r0 + chunkRows : p.rows);
  });
  out[0] = out[1] = out[2] = 0;
  for (const Counts& c : counts) {
    out[0] += c.nonFinite;
    out[1] += c.nonzero;
    out[2] += c.underflow;
  }
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
