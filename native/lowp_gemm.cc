#include "lowp_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "codec_core.h"
#include "cpu.h"
#include "im2col.h"
#include "parallel.h"
#include "scratch.h"
#include "sources.h"

namespace octet {
namespace {

using codec_core::encodeOne;
using codec_core::mix32;

// Rows of C per task; columns per task: kLanes.
constexpr int kRows = 12;
constexpr int kLanes = 16;

inline uint32_t cellKey(uint32_t key, uint32_t i, uint32_t j) {
  return mix32(mix32(key ^ (i * 0x85ebca6bu)) ^ (j * 0xc2b2ae35u));
}

inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint32_t floatToBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Largest magnitude of a run of values; NaN sticks (so a NaN operand disables the fast path).
inline float runAmax(const float* v, int64_t n) {
  float worst = 0.0f;
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) {
    worst = std::max(worst, std::fabs(v[i]));
    nan |= v[i] != v[i];
  }
  return nan ? NAN : worst;
}

inline float maxWithNan(float a, float b) { return (a != a || b != b) ? NAN : std::max(a, b); }

// Rows [i0, i0 + rows) of op(A), decoded, into dst (row stride k). Without a transpose the rows
// are one contiguous run of rows * k elements, decoded in one go.
void loadRows(const LowpGemmArgs& g, int64_t i0, int64_t rows, float* dst) {
  const int64_t count = rows * g.k;
  if (!g.transA) {
    if (!g.aCodes) {
      std::memcpy(dst, g.a + i0 * g.k, static_cast<size_t>(count) * sizeof(float));
      return;
    }
    decodeCodes(g.aCodes + i0 * g.k, g.aLut, g.aIsE5M2, count, dst);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    float* row = dst + r * g.k;
    if (g.aCodes) {
      for (int64_t t = 0; t < g.k; ++t) row[t] = g.aLut[g.aCodes[t * g.m + i]];
    } else {
      for (int64_t t = 0; t < g.k; ++t) row[t] = g.a[t * g.m + i];
    }
  }
}

thread_local std::vector<uint8_t> stripCodes;
thread_local std::vector<float> stripValues;

// Column strip s of op(B) = col^T read from the images (g.bColumns): lane l of row t is
// col(j0 + l, t), a run along row j0 + l of the column matrix; runs of kBlock positions at a time,
// so the strip block being filled stays in cache.
void packStripColumns(const LowpGemmArgs& g, int64_t s, float* strip) {
  const ImplicitColumns& src = *g.bColumns;
  const int64_t j0 = s * kLanes, width = std::min<int64_t>(kLanes, g.n - j0);
  constexpr int64_t kBlock = 1024;
  stripCodes.resize(kBlock);
  stripValues.resize(kBlock);
  for (int64_t t0 = 0; t0 < g.k; t0 += kBlock) {
    const int64_t len = std::min(kBlock, g.k - t0);
    for (int64_t l = 0; l < kLanes; ++l) {
      float* values = stripValues.data();
      if (l >= width) {
        std::fill(values, values + len, 0.0f);
      } else if (src.codes) {
        columnRun(src.codes, src.geometry, src.imageStride, j0 + l, t0, len, stripCodes.data());
        decodeCodes(stripCodes.data(), g.bLut, g.bIsE5M2, len, values);
      } else {
        columnRun(src.x, src.geometry, src.imageStride, j0 + l, t0, len, values);
      }
      float* dst = strip + t0 * kLanes + l;
      for (int64_t t = 0; t < len; ++t) dst[t * kLanes] = values[t];
    }
  }
}

// Column strip s of op(B) into strip (k rows of 16, zero past n).
void packStrip(const LowpGemmArgs& g, int64_t s, float* strip) {
  if (g.bColumns) {
    packStripColumns(g, s, strip);
    return;
  }
  const int64_t j0 = s * kLanes, width = std::min<int64_t>(kLanes, g.n - j0);
#ifdef OCTET_X86
  if (g.bCodes && g.bIsE5M2 && !g.transB && haveHalfConversion()) {
    for (int64_t t = 0; t < g.k; ++t) {
      float* row = strip + t * kLanes;
      decodeE5m2(g.bCodes + t * g.n + j0, row, width);
      for (int64_t j = width; j < kLanes; ++j) row[j] = 0.0f;
    }
    return;
  }
#endif
  for (int64_t t = 0; t < g.k; ++t) {
    float* row = strip + t * kLanes;
    for (int64_t j = 0; j < width; ++j) {
      const int64_t at = g.transB ? (j0 + j) * g.k + t : t * g.n + j0 + j;
      row[j] = g.bCodes ? g.bLut[g.bCodes[at]] : g.b[at];
    }
    for (int64_t j = width; j < kLanes; ++j) row[j] = 0.0f;
  }
}

// Largest magnitude of an operand (NaN if it holds one); for codes, the largest value among the
// codes present (defined below).
float operandAmax(const float* values, const uint8_t* codes, const float* lut, bool e5m2, int64_t n, int threads);

// The largest magnitude in the images op(B)'s columns read (every value of the images' channels;
// padding adds only zeros): at least the columns' own, so bounds built on it stay rigorous.
float imagesAmax(const LowpGemmArgs& g, int threads) {
  const ImplicitColumns& src = *g.bColumns;
  const ConvGeometry& geo = src.geometry;
  const int64_t plane = geo.height * geo.width, batch = g.k / (geo.outH * geo.outW);
  float worst = 0.0f;
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t at = n * src.imageStride;
    worst = maxWithNan(worst, src.codes ? operandAmax(nullptr, src.codes + at, g.bLut, g.bIsE5M2, geo.channels * plane, threads)
                                        : operandAmax(src.x + at, nullptr, nullptr, false, geo.channels * plane, threads));
  }
  return worst;
}

// `e5m2`: the codes are FP8 E5M2, a sign-magnitude byte whose low 7 bits order the magnitudes
// (Inf and NaN above every finite value), so the largest magnitude is the value of the largest
// low-7-bit code.
// The largest sum of magnitudes over a row of op(A), rounded up a little (it is summed in double);
// NaN when A holds a NaN. Times amaxB it bounds every sum of products of that row, far more
// tightly than k * amaxA * amaxB when most of A's values are well below its largest.
double maxRowAbsSum(const LowpGemmArgs& g, int threads) {
  std::vector<double> sums(static_cast<size_t>(g.m), 0.0);
  auto magnitude = [&](int64_t at) -> double { return std::fabs(static_cast<double>(g.aCodes ? g.aLut[g.aCodes[at]] : g.a[at])); };
  if (!g.transA) {
    parallelFor(g.m, g.m * g.k < (1 << 16) ? 1 : threads, [&](int64_t i) {
      double s = 0.0;
      for (int64_t t = 0; t < g.k; ++t) s += magnitude(i * g.k + t);
      sums[static_cast<size_t>(i)] = s;
    });
  } else {
    for (int64_t t = 0; t < g.k; ++t) for (int64_t i = 0; i < g.m; ++i) sums[static_cast<size_t>(i)] += magnitude(t * g.m + i);
  }
  double worst = 0.0;
  for (double v : sums) {
    if (v != v) return NAN;
    worst = std::max(worst, v);
  }
  return worst * (1.0 + std::ldexp(1.0, -30));
}

float operandAmax(const float* values, const uint8_t* codes, const float* lut, bool e5m2, int64_t n, int threads) {
  const int64_t chunk = 1 << 16;
#ifdef OCTET_X86
  if (codes && e5m2 && cpuHasAvx2()) {
    const int64_t chunks = (n + chunk - 1) / chunk;
    std::vector<uint8_t> part(static_cast<size_t>(chunks));
    parallelFor(chunks, n < chunk ? 1 : threads, [&](int64_t c) {
      part[c] = maxLowBits(codes + c * chunk, std::min<int64_t>(chunk, n - c * chunk));
    });
    uint8_t worst = 0;
    for (uint8_t v : part) worst = std::max(worst, v);
    return std::fabs(lut[worst]);
  }
#endif
  const int64_t chunks = (n + chunk - 1) / chunk;
  std::vector<float> part(static_cast<size_t>(chunks));
  parallelFor(chunks, n < chunk ? 1 : threads, [&](int64_t c) {
    const int64_t begin = c * chunk, count = std::min<int64_t>(chunk, n - begin);
    if (!codes) {
      part[c] = runAmax(values + begin, count);
      return;
    }
    bool present[256] = {false};
    for (int64_t i = 0; i < count; ++i) present[codes[begin + i]] = true;
    float worst = 0.0f;
    for (int v = 0; v < 256; ++v) {
      if (present[v]) worst = maxWithNan(worst, std::fabs(lut[v]));
    }
    part[c] = worst;
  });
  float worst = 0.0f;
  for (float v : part) worst = maxWithNan(worst, v);
  return worst;
}

// One element of C from the contract, in scalar code: the reference for the vector paths, the
// exact fallback of the 8-lane fast path, and the path of CPUs without AVX2.
template <int kRounding>
float cellScalar(const LowpGemmArgs& g, const float* arow, const float* strip, int lane, uint32_t i, uint32_t j) {
  CodecParams p = g.acc;
  p.key = cellKey(g.acc.key, i, j);
  auto add = [&](float acc, float term, uint32_t t) {
    const float sum = acc + term;
    return g.lut ? g.lut[encodeOne<kRounding>(floatToBits(sum), p, t)] : sum;
  };
  float acc = 0.0f, partial = 0.0f;
  uint32_t run = 0;
  for (int64_t t = 0; t < g.k; ++t) {
    const float product = arow[t] * strip[t * kLanes + lane];
    if (!g.ends) {
      acc = add(acc, product, static_cast<uint32_t>(t));
    } else {
      partial = add(partial, product, static_cast<uint32_t>(t));
      if (t + 1 == g.ends[run]) {
        acc = add(acc, partial, static_cast<uint32_t>(g.k) + run);
        ++run;
        partial = 0.0f;
      }
    }
  }
  return acc;
}

// Each tile reads its rows of op(A) from rows0 (row i0 first, row stride k) and column strip s of
// op(B) from strip (k rows of 16).
template <int kRounding>
void tileScalar(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s) {
  const int64_t rows = std::min<int64_t>(kRows, g.m - i0);
  const int64_t j0 = s * kLanes, width = std::min<int64_t>(kLanes, g.n - j0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t l = 0; l < width; ++l) {
      g.c[(i0 + r) * g.n + j0 + l] = cellScalar<kRounding>(g, rows0 + r * g.k, strip, static_cast<int>(l),
                                                           static_cast<uint32_t>(i0 + r), static_cast<uint32_t>(j0 + l));
    }
  }
}

#ifdef OCTET_X86
#define OCTET_WIDE __attribute__((target("avx512f")))
using codec_core::encode16;

// The exact path on 16 lanes: the codec's rounding (encode16) and a table lookup per addition.
template <int kRounding>
OCTET_WIDE __m512 addRounded16(__m512 acc, __m512 term, const LowpGemmArgs& g, __m512i keys, uint32_t t) {
  const __m512 sum = _mm512_add_ps(acc, term);
  if (!g.lut) return sum;
  const __m512i weyl = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(t * 0x9e3779b9u)), keys);
  const __m512i codes = encode16<kRounding>(_mm512_castps_si512(sum), g.acc, keys, weyl);
  return _mm512_i32gather_ps(codes, g.lut, 4);
}

template <int kRounding>
OCTET_WIDE void tileExact16(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s) {
  const int64_t rows = std::min<int64_t>(kRows, g.m - i0);
  const int64_t j0 = s * kLanes, width = std::min<int64_t>(kLanes, g.n - j0);
  const __mmask16 store = static_cast<__mmask16>((1u << width) - 1u);
  for (int64_t r = 0; r < rows; ++r) {
    const float* arow = rows0 + r * g.k;
    alignas(64) uint32_t keyLanes[kLanes];
    for (int l = 0; l < kLanes; ++l) keyLanes[l] = cellKey(g.acc.key, static_cast<uint32_t>(i0 + r), static_cast<uint32_t>(j0 + l));
    const __m512i keys = _mm512_load_si512(keyLanes);
    __m512 acc = _mm512_setzero_ps(), partial = _mm512_setzero_ps();
    uint32_t run = 0;
    for (int64_t t = 0; t < g.k; ++t) {
      const __m512 product = _mm512_mul_ps(_mm512_set1_ps(arow[t]), _mm512_loadu_ps(strip + t * kLanes));
      if (!g.ends) {
        acc = addRounded16<kRounding>(acc, product, g, keys, static_cast<uint32_t>(t));
      } else {
        partial = addRounded16<kRounding>(partial, product, g, keys, static_cast<uint32_t>(t));
        if (t + 1 == g.ends[run]) {
          acc = addRounded16<kRounding>(acc, partial, g, keys, static_cast<uint32_t>(g.k) + run);
          ++run;
          partial = _mm512_setzero_ps();
        }
      }
    }
    _mm512_mask_storeu_ps(g.c + (i0 + r) * g.n + j0, store, acc);
  }
}

// Nearest rounding of normal values to F's precision by Veltkamp splitting: with
// c = fl(s * (2^d + 1)) (one fused multiply-add) and hi = c - (c - s), hi is s rounded to nearest,
// ties to even, to 24 - d significant bits, for every normal float32 s with s * 2^d finite
// (checked exhaustively: every d from 1 to 22 over four binades, the result being invariant under
// scaling by powers of two, and d = 13, 14, 16 over binades 2^-60 to 2^60). It equals the codec
// wherever the sum and the result lie in F's normal range; any lane that leaves it (or reaches
// Inf/NaN) marks the tile, which is then recomputed exactly. Zeros stay zeros.
struct FastRounding {
  __m512 splitter;
  __m512i one, absMask;
  __m512i minBitsLess1, maxBitsLess1;
  // Stochastic rounding on the bits: (~draw) >> (32 - d) added below the kept bits.
  __m512i keepMask, stochasticShift;
};

// Track |r| - 1 of rounded values: zero wraps to 0xffffffff (ignored by both checks), values
// below F's normal range fall under minBits - 1 (unsigned), overflow and Inf/NaN rise above
// maxBits - 1 (signed).
OCTET_WIDE __attribute__((always_inline)) inline void trackRange(__m512i roundedBits, const FastRounding& f, __m512i& worstHigh,
                                                                  __m512i& worstLow) {
  const __m512i g = _mm512_sub_epi32(_mm512_and_si512(roundedBits, f.absMask), f.one);
  worstHigh = _mm512_max_epi32(worstHigh, g);
  worstLow = _mm512_min_epu32(worstLow, g);
}

template <bool kCheck>
OCTET_WIDE __attribute__((always_inline)) inline __m512 roundFast(__m512 sum, const FastRounding& f, __m512i& worstHigh, __m512i& worstLow) {
  const __m512 c = _mm512_fmadd_ps(sum, f.splitter, sum);
  const __m512 rounded = _mm512_sub_ps(c, _mm512_sub_ps(c, sum));
  if (kCheck) trackRange(_mm512_castps_si512(rounded), f, worstHigh, worstLow);
  return rounded;
}

// Stochastic rounding of normal values on the float32 bits, as the codec's vector path does: the
// draw of element (i, j) for addition t is mix(mix(t * golden + key) ^ key) with key = the cell's
// key; (~draw) >> (32 - d) carries into the kept bits exactly when draw < floor(fraction * 2^32).
template <bool kCheck>
OCTET_WIDE __attribute__((always_inline)) inline __m512 roundFastStochastic(__m512 sum, __m512i keys, __m512i weylStep, const FastRounding& f,
                                                                             __m512i& worstHigh, __m512i& worstLow) {
  const __m512i draw = codec_core::mix16(_mm512_xor_si512(codec_core::mix16(_mm512_add_epi32(weylStep, keys)), keys));
  const __m512i bits = _mm512_add_epi32(_mm512_castps_si512(sum), _mm512_srlv_epi32(_mm512_ternarylogic_epi32(draw, draw, draw, 0x55), f.stochasticShift));
  const __m512i rounded = _mm512_and_si512(bits, f.keepMask);
  if (kCheck) trackRange(rounded, f, worstHigh, worstLow);
  return _mm512_castsi512_ps(rounded);
}

// One rounded addition of the fast paths: nearest (Veltkamp) or stochastic (on the bits, with the
// draw of addition t for the tile's cell keys).
template <bool kStochastic, bool kCheck>
OCTET_WIDE __attribute__((always_inline)) inline __m512 roundStep(__m512 sum, __m512i keys, __m512i weylStep, const FastRounding& f,
                                                                   __m512i& worstHigh, __m512i& worstLow) {
  if (kStochastic) return roundFastStochastic<kCheck>(sum, keys, weylStep, f, worstHigh, worstLow);
  return roundFast<kCheck>(sum, f, worstHigh, worstLow);
}

OCTET_WIDE inline __m512i weylOf(uint64_t t) { return _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(t) * 0x9e3779b9u)); }

// Accumulate products t0..t1-1 of the tile's rows into v (kept in registers once inlined).
template <bool kFma, bool kCheck, bool kStochastic>
OCTET_WIDE __attribute__((always_inline)) inline void accumulateRun(const float* const* arow, const float* strip, int64_t t0,
                                                                    int64_t t1, __m512 (&v)[kRows], const __m512i (&keys)[kRows],
                                                                    const FastRounding& f, __m512i& worstHigh, __m512i& worstLow) {
  for (int64_t t = t0; t < t1; ++t) {
    const __m512 b = _mm512_loadu_ps(strip + t * kLanes);
    const __m512i weylStep = kStochastic ? weylOf(static_cast<uint64_t>(t)) : _mm512_setzero_si512();
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
      const __m512 a = _mm512_set1_ps(arow[r][t]);
      const __m512 sum = kFma ? _mm512_fmadd_ps(a, b, v[r]) : _mm512_add_ps(v[r], _mm512_mul_ps(a, b));
      v[r] = roundStep<kStochastic, kCheck>(sum, keys[r], weylStep, f, worstHigh, worstLow);
    }
  }
}

// A tile on the fast path. kCheck false: the caller has shown that no sum can leave the range
// where the fast rounding is exact (no overflow by the operands' magnitudes, no rounding below
// the normal range by their quanta), so the range checks are skipped. Returns false, having
// stored nothing, when a value left the range.
template <bool kFma, bool kCheck, bool kStochastic>
OCTET_WIDE bool tileFast(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s, const FastRounding& f) {
  const int64_t rows = std::min<int64_t>(kRows, g.m - i0);
  const int64_t j0 = s * kLanes, width = std::min<int64_t>(kLanes, g.n - j0);
  const float* arow[kRows];
  __m512i keys[kRows];
  for (int r = 0; r < kRows; ++r) {
    arow[r] = rows0 + std::min<int64_t>(r, rows - 1) * g.k;
    keys[r] = _mm512_setzero_si512();
    if (kStochastic) {
      alignas(64) uint32_t lanes[kLanes];
      for (int l = 0; l < kLanes; ++l) lanes[l] = cellKey(g.acc.key, static_cast<uint32_t>(i0 + r), static_cast<uint32_t>(j0 + l));
      keys[r] = _mm512_load_si512(lanes);
    }
  }
  __m512 acc[kRows];
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
  __m512i worstHigh = _mm512_set1_epi32(-1), worstLow = _mm512_set1_epi32(-1);
  if (!g.ends) {
    accumulateRun<kFma, kCheck, kStochastic>(arow, strip, 0, g.k, acc, keys, f, worstHigh, worstLow);
  } else {
    for (int64_t run = 0; run < g.endCount; ++run) {
      const int64_t t = run == 0 ? 0 : g.ends[run - 1];
      __m512 partial[kRows];
#pragma GCC unroll 16
      for (int r = 0; r < kRows; ++r) partial[r] = _mm512_setzero_ps();
      accumulateRun<kFma, kCheck, kStochastic>(arow, strip, t, g.ends[run], partial, keys, f, worstHigh, worstLow);
      const __m512i weylStep = kStochastic ? weylOf(static_cast<uint64_t>(g.k + run)) : _mm512_setzero_si512();
#pragma GCC unroll 16
      for (int r = 0; r < kRows; ++r) {
        acc[r] = roundStep<kStochastic, kCheck>(_mm512_add_ps(acc[r], partial[r]), keys[r], weylStep, f, worstHigh, worstLow);
      }
    }
  }
  const bool outOfRange = kCheck && (_mm512_cmpgt_epi32_mask(worstHigh, f.maxBitsLess1) != 0 ||
                                     _mm512_cmplt_epu32_mask(worstLow, f.minBitsLess1) != 0);
  if (outOfRange) return false;
  const __mmask16 store = static_cast<__mmask16>((1u << width) - 1u);
  for (int r = 0; r < rows; ++r) _mm512_mask_storeu_ps(g.c + (i0 + r) * g.n + j0, store, acc[r]);
  return true;
}

template <bool kStochastic>
OCTET_WIDE bool tileFastDispatch(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s,
                                 const FastRounding& f, bool unchecked) {
  if (unchecked) {
    return g.exactProducts ? tileFast<true, false, kStochastic>(g, strip, rows0, i0, s, f)
                           : tileFast<false, false, kStochastic>(g, strip, rows0, i0, s, f);
  }
  return g.exactProducts ? tileFast<true, true, kStochastic>(g, strip, rows0, i0, s, f)
                         : tileFast<false, true, kStochastic>(g, strip, rows0, i0, s, f);
}

OCTET_WIDE FastRounding fastRoundingConstants(const CodecParams& p) {
  const int drop = 23 - p.mantissaBits;
  const uint32_t minBits = static_cast<uint32_t>(p.emin + 127) << 23;
  const uint32_t maxBits = (static_cast<uint32_t>(p.maxBiasedExponent - p.bias + 127) << 23) |
                           (static_cast<uint32_t>(p.maxMantissaAtTop) << drop);
  FastRounding f;
  f.splitter = _mm512_set1_ps(std::ldexp(1.0f, drop));
  f.one = _mm512_set1_epi32(1);
  f.absMask = _mm512_set1_epi32(0x7fffffff);
  f.minBitsLess1 = _mm512_set1_epi32(static_cast<int>(minBits - 1));
  f.maxBitsLess1 = _mm512_set1_epi32(static_cast<int>(maxBits - 1));
  f.keepMask = _mm512_set1_epi32(static_cast<int>(~((1u << drop) - 1u)));
  f.stochasticShift = _mm512_set1_epi32(32 - drop);
  return f;
}

// The fast paths with AVX2 and FMA, for CPUs without AVX-512: the same rounding steps on 8 lanes
// (a strip's two halves in turn), kNarrowRows rows of a tile at a time so that the accumulators,
// the strip's row and the rounding's constants fit the 16 vector registers. Each accumulator is a
// chain of dependent steps (multiply-add, splitting multiply-add, two subtractions), so a group
// holds as many independent chains as the registers allow.
#define OCTET_NARROW __attribute__((target("avx2,fma")))
constexpr int kNarrowRows = 6;

struct NarrowRounding {
  __m256 splitter;
  __m256i one, absMask, signFlip;
  __m256i minBitsLess1Flipped, maxBitsLess1;
  __m256i keepMask, stochasticShift, allOnes;
};

OCTET_NARROW NarrowRounding narrowRoundingConstants(const CodecParams& p) {
  const int drop = 23 - p.mantissaBits;
  const uint32_t minBits = static_cast<uint32_t>(p.emin + 127) << 23;
  const uint32_t maxBits = (static_cast<uint32_t>(p.maxBiasedExponent - p.bias + 127) << 23) |
                           (static_cast<uint32_t>(p.maxMantissaAtTop) << drop);
  NarrowRounding f;
  f.splitter = _mm256_set1_ps(std::ldexp(1.0f, drop));
  f.one = _mm256_set1_epi32(1);
  f.absMask = _mm256_set1_epi32(0x7fffffff);
  f.signFlip = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  // Unsigned comparisons as signed ones of the values with their top bit flipped.
  f.minBitsLess1Flipped = _mm256_set1_epi32(static_cast<int>((minBits - 1) ^ 0x80000000u));
  f.maxBitsLess1 = _mm256_set1_epi32(static_cast<int>(maxBits - 1));
  f.keepMask = _mm256_set1_epi32(static_cast<int>(~((1u << drop) - 1u)));
  f.stochasticShift = _mm256_set1_epi32(32 - drop);
  f.allOnes = _mm256_set1_epi32(-1);
  return f;
}

// trackRange on 8 lanes (AVX2 has the same unsigned minimum; only the final check differs).
OCTET_NARROW __attribute__((always_inline)) inline void trackRange8(__m256i roundedBits, const NarrowRounding& f, __m256i& worstHigh,
                                                                    __m256i& worstLow) {
  const __m256i g = _mm256_sub_epi32(_mm256_and_si256(roundedBits, f.absMask), f.one);
  worstHigh = _mm256_max_epi32(worstHigh, g);
  worstLow = _mm256_min_epu32(worstLow, g);
}

template <bool kStochastic, bool kCheck>
OCTET_NARROW __attribute__((always_inline)) inline __m256 roundStep8(__m256 sum, __m256i keys, __m256i weylStep, const NarrowRounding& f,
                                                                    __m256i& worstHigh, __m256i& worstLow) {
  if (kStochastic) {
    const __m256i draw = codec_core::mix8(_mm256_xor_si256(codec_core::mix8(_mm256_add_epi32(weylStep, keys)), keys));
    const __m256i notDraw = _mm256_xor_si256(draw, f.allOnes);
    const __m256i bits = _mm256_add_epi32(_mm256_castps_si256(sum), _mm256_srlv_epi32(notDraw, f.stochasticShift));
    const __m256i rounded = _mm256_and_si256(bits, f.keepMask);
    if (kCheck) trackRange8(rounded, f, worstHigh, worstLow);
    return _mm256_castsi256_ps(rounded);
  }
  const __m256 c = _mm256_fmadd_ps(sum, f.splitter, sum);
  const __m256 rounded = _mm256_sub_ps(c, _mm256_sub_ps(c, sum));
  if (kCheck) trackRange8(_mm256_castps_si256(rounded), f, worstHigh, worstLow);
  return rounded;
}

OCTET_NARROW inline __m256i weylOf8(uint64_t t) { return _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(t) * 0x9e3779b9u)); }

// Products t0..t1-1 of a group's rows with one half of the strip (its 8 lanes at half).
template <bool kFma, bool kCheck, bool kStochastic>
OCTET_NARROW __attribute__((always_inline)) inline void accumulateRun8(const float* const* arow, const float* half, int64_t t0, int64_t t1,
                                                                      __m256 (&v)[kNarrowRows], const __m256i (&keys)[kNarrowRows],
                                                                      const NarrowRounding& f, __m256i& worstHigh, __m256i& worstLow) {
  for (int64_t t = t0; t < t1; ++t) {
    const __m256 b = _mm256_loadu_ps(half + t * kLanes);
    const __m256i weylStep = kStochastic ? weylOf8(static_cast<uint64_t>(t)) : _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int r = 0; r < kNarrowRows; ++r) {
      const __m256 a = _mm256_broadcast_ss(arow[r] + t);
      const __m256 sum = kFma ? _mm256_fmadd_ps(a, b, v[r]) : _mm256_add_ps(v[r], _mm256_mul_ps(a, b));
      v[r] = roundStep8<kStochastic, kCheck>(sum, keys[r], weylStep, f, worstHigh, worstLow);
    }
  }
}

// Rows [r0, r0 + kNarrowRows) (clamped to the tile's) of a tile, lanes [8 * h, 8 * h + 8), into
// out (kNarrowRows rows of 8). Returns false when a value left the fast rounding's range.
template <bool kFma, bool kCheck, bool kStochastic>
OCTET_NARROW bool groupFast8(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t j0, int64_t rows, int r0,
                             int h, const NarrowRounding& f, float* out) {
  const float* arow[kNarrowRows];
  __m256i keys[kNarrowRows];
  for (int r = 0; r < kNarrowRows; ++r) {
    const int64_t row = std::min<int64_t>(r0 + r, rows - 1);
    arow[r] = rows0 + row * g.k;
    keys[r] = _mm256_setzero_si256();
    if (kStochastic) {
      alignas(32) uint32_t lanes[8];
      for (int l = 0; l < 8; ++l) lanes[l] = cellKey(g.acc.key, static_cast<uint32_t>(i0 + row), static_cast<uint32_t>(j0 + 8 * h + l));
      keys[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
    }
  }
  const float* half = strip + 8 * h;
  __m256 acc[kNarrowRows];
#pragma GCC unroll 8
  for (int r = 0; r < kNarrowRows; ++r) acc[r] = _mm256_setzero_ps();
  __m256i worstHigh = _mm256_set1_epi32(-1), worstLow = _mm256_set1_epi32(-1);
  if (!g.ends) {
    accumulateRun8<kFma, kCheck, kStochastic>(arow, half, 0, g.k, acc, keys, f, worstHigh, worstLow);
  } else {
    for (int64_t run = 0; run < g.endCount; ++run) {
      const int64_t t = run == 0 ? 0 : g.ends[run - 1];
      __m256 partial[kNarrowRows];
#pragma GCC unroll 8
      for (int r = 0; r < kNarrowRows; ++r) partial[r] = _mm256_setzero_ps();
      accumulateRun8<kFma, kCheck, kStochastic>(arow, half, t, g.ends[run], partial, keys, f, worstHigh, worstLow);
      const __m256i weylStep = kStochastic ? weylOf8(static_cast<uint64_t>(g.k + run)) : _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int r = 0; r < kNarrowRows; ++r) {
        acc[r] = roundStep8<kStochastic, kCheck>(_mm256_add_ps(acc[r], partial[r]), keys[r], weylStep, f, worstHigh, worstLow);
      }
    }
  }
  if (kCheck) {
    const __m256i high = _mm256_cmpgt_epi32(worstHigh, f.maxBitsLess1);
    const __m256i low = _mm256_cmpgt_epi32(f.minBitsLess1Flipped, _mm256_xor_si256(worstLow, f.signFlip));
    if (!_mm256_testz_si256(_mm256_or_si256(high, low), f.allOnes)) return false;
  }
  for (int r = 0; r < kNarrowRows; ++r) _mm256_storeu_ps(out + r * 8, acc[r]);
  return true;
}

// A tile on the 8-lane fast path: every group into a buffer first, so that nothing is stored when
// a value left the range (the caller then recomputes the tile exactly).
template <bool kFma, bool kCheck, bool kStochastic>
OCTET_NARROW bool tileFast8(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s, const NarrowRounding& f) {
  const int64_t rows = std::min<int64_t>(kRows, g.m - i0);
  const int64_t j0 = s * kLanes, width = std::min<int64_t>(kLanes, g.n - j0);
  const int halves = width > 8 ? 2 : 1;
  constexpr int kGroups = (kRows + kNarrowRows - 1) / kNarrowRows;
  alignas(32) float result[2][kGroups * kNarrowRows * 8];
  for (int h = 0; h < halves; ++h) {
    for (int r0 = 0; r0 < rows; r0 += kNarrowRows) {
      if (!groupFast8<kFma, kCheck, kStochastic>(g, strip, rows0, i0, j0, rows, r0, h, f, result[h] + r0 * 8)) return false;
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = g.c + (i0 + r) * g.n + j0;
    for (int64_t l = 0; l < width; ++l) dst[l] = result[l / 8][r * 8 + l % 8];
  }
  return true;
}

template <bool kStochastic>
OCTET_NARROW bool tileFast8Dispatch(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s,
                                    const NarrowRounding& f, bool unchecked) {
  if (unchecked) {
    return g.exactProducts ? tileFast8<true, false, kStochastic>(g, strip, rows0, i0, s, f)
                           : tileFast8<false, false, kStochastic>(g, strip, rows0, i0, s, f);
  }
  return g.exactProducts ? tileFast8<true, true, kStochastic>(g, strip, rows0, i0, s, f)
                         : tileFast8<false, true, kStochastic>(g, strip, rows0, i0, s, f);
}

bool hasAvx2Fma() {
  static const bool yes = [] {
    __builtin_cpu_init();
    const char* forced = std::getenv("OCTET_CODEC_KERNEL");
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !(forced && std::string(forced) == "portable");
  }();
  return yes;
}

bool hasAvx512() {
  static const bool yes = [] {
    __builtin_cpu_init();
    const char* forced = std::getenv("OCTET_CODEC_KERNEL");
    return __builtin_cpu_supports("avx512f") && !(forced && std::string(forced) != "avx512");
  }();
  return yes;
}
#endif

// The calling thread's decoded op(A) or packed op(B), and packed strips beside a decoded op(A):
// kept from call to call (every element is written before it is read). Fresh per call they cost
// a zeroing memset and a page fault per 4 KiB: about 8% of an e6m9 ResNet-18 training step, whose
// GEMMs allocate some 250 MB of them, up to 16 MB at a time.
thread_local AlignedFloats callerOperand, callerStrips;

}  // namespace

void lowpGemm(const LowpGemmArgs& args, int threads) {
  if (args.m <= 0 || args.n <= 0) return;
  if (args.k <= 0) {
    std::fill(args.c, args.c + args.m * args.n, 0.0f);
    return;
  }
  // The chunks as the ends of the nonempty ones (an empty chunk adds nothing).
  std::vector<int64_t> ends;
  if (args.chunkEnds) {
    for (int64_t c = 0; c < args.chunkCount; ++c) {
      if (args.chunkEnds[c] > (ends.empty() ? 0 : ends.back())) ends.push_back(args.chunkEnds[c]);
    }
  } else if (args.chunk > 0) {
    for (int64_t e = args.chunk; e < args.k + args.chunk; e += args.chunk) ends.push_back(std::min(e, args.k));
  }
  LowpGemmArgs g = args;
  g.ends = ends.empty() ? nullptr : ends.data();
  g.endCount = static_cast<int64_t>(ends.size());
  const int64_t rowBlocks = (g.m + kRows - 1) / kRows;
  const int64_t strips = (g.n + kLanes - 1) / kLanes;
  const int team = g.m * g.n * g.k < (1 << 16) ? 1 : threads;
  const bool stochastic = g.acc.rounding == kStochastic;
  // One tile: a fast path where it applies (16 lanes with AVX-512, 8 with AVX2; a tile where a
  // value left its range is recomputed exactly: on 16 lanes, or in scalar code after the 8-lane
  // path), else scalar code.
  std::function<void(const float*, const float*, int64_t, int64_t)> tile = [&](const float* strip, const float* rows0,
                                                                               int64_t i0, int64_t s) {
    if (stochastic) tileScalar<kStochastic>(g, strip, rows0, i0, s);
    else tileScalar<kNearest>(g, strip, rows0, i0, s);
  };
#ifdef OCTET_X86
  FastRounding f{};
  NarrowRounding f8{};
  const bool wide = hasAvx512(), narrow = !wide && hasAvx2Fma();
  bool fast = false, unchecked = false;
  if (wide || narrow) {
    // The fast paths need a normal float32 target with at least one dropped bit.
    fast = g.lut && g.acc.mantissaBits < 23 && g.acc.subnormalsKept;
    if (fast) {
      if (wide) f = fastRoundingConstants(g.acc);
      else f8 = narrowRoundingConstants(g.acc);
      // No sum can overflow when k products of the largest magnitudes, grown by a relative half
      // unit per rounding, stay below F's largest value; and the splitting multiplies by
      // 2^(23 - m), so sums must stay below 2^(127 - (23 - m)) as well.
      const float amaxA = operandAmax(g.a, g.aCodes, g.aLut, g.aIsE5M2, g.m * g.k, threads);
      const float amaxB = g.bColumns ? imagesAmax(g, threads) : operandAmax(g.b, g.bCodes, g.bLut, g.bIsE5M2, g.k * g.n, threads);
      const double maxFinite = std::ldexp(1.0 + g.acc.maxMantissaAtTop / std::ldexp(1.0, g.acc.mantissaBits),
                                          g.acc.maxBiasedExponent - g.acc.bias);
      // Each rounding grows a magnitude by at most half a unit (nearest) or one unit (stochastic):
      // a factor (1 + u) per rounding a value goes through. Without chunks a sum goes through k
      // roundings; with chunks of L, a chunk's partial sum through at most L and the running
      // total through one per chunk, so every value stays below (1 + u)^(L + ceil(k / L)) times
      // the sum of the products' magnitudes.
      const double growth = std::ldexp(1.0, -(g.acc.mantissaBits + (stochastic ? 0 : 1)));
      int64_t longest = 0;
      for (int64_t c = 0; c < g.endCount; ++c) longest = std::max(longest, g.ends[c] - (c ? g.ends[c - 1] : 0));
      const int64_t roundings = g.ends ? longest + g.endCount : g.k;
      const double factor = std::exp(static_cast<double>(roundings + 1) * growth);
      const double limit = std::min(maxFinite, std::ldexp(1.0, 127 - (23 - g.acc.mantissaBits)));
      unchecked = g.productsOnSubnormalGrid && static_cast<double>(g.k) * amaxA * amaxB * factor < limit;
      // k * amaxA * amaxB is pessimistic for real tensors (most values far below the largest);
      // when it fails, the rows' actual sums of magnitudes may still pass (one pass over A).
      if (g.productsOnSubnormalGrid && !unchecked && amaxB == amaxB) unchecked = maxRowAbsSum(g, threads) * amaxB * factor < limit;
    }
    if (wide) {
      tile = [&](const float* strip, const float* rows0, int64_t i0, int64_t s) {
        if (fast && (stochastic ? tileFastDispatch<true>(g, strip, rows0, i0, s, f, unchecked)
                                : tileFastDispatch<false>(g, strip, rows0, i0, s, f, unchecked))) {
          return;
        }
        if (stochastic) tileExact16<kStochastic>(g, strip, rows0, i0, s);
        else tileExact16<kNearest>(g, strip, rows0, i0, s);
      };
    } else if (fast) {
      tile = [&](const float* strip, const float* rows0, int64_t i0, int64_t s) {
        if (stochastic ? tileFast8Dispatch<true>(g, strip, rows0, i0, s, f8, unchecked)
                       : tileFast8Dispatch<false>(g, strip, rows0, i0, s, f8, unchecked)) {
          return;
        }
        if (stochastic) tileScalar<kStochastic>(g, strip, rows0, i0, s);
        else tileScalar<kNearest>(g, strip, rows0, i0, s);
      };
    }
  }
#endif
  if (g.m * g.k * static_cast<int64_t>(sizeof(float)) > (1 << 21) && rowBlocks >= 2 * team &&
      strips * kLanes <= g.m) {
    // A large op(A), and a packed B no larger than A: pack every strip of B once, then each task
    // decodes a block of rows of A and runs it against every strip. (When B is the larger one, the
    // path below decodes A once instead: the memory held is the smaller of the two.)
    float* packed = callerOperand.get(static_cast<size_t>(strips * g.k * kLanes));
    parallelFor(strips, g.k * g.n < 65536 ? 1 : threads, [&](int64_t s) { packStrip(g, s, packed + s * g.k * kLanes); });
    parallelFor(rowBlocks, team, [&](int64_t b) {
      thread_local std::vector<float> rows;
      rows.resize(static_cast<size_t>(kRows * g.k));
      const int64_t i0 = b * kRows;
      loadRows(g, i0, std::min<int64_t>(kRows, g.m - i0), rows.data());
      for (int64_t s = 0; s < strips; ++s) tile(packed + s * g.k * kLanes, rows.data(), i0, s);
    });
  } else {
    // A small op(A): decode it once; with enough strips, each task packs one strip of B (it stays
    // in cache) and runs every row block against it, so B is read once.
    float* all = callerOperand.get(static_cast<size_t>(g.m * g.k));
    loadRows(g, 0, g.m, all);
    if (strips >= 2 * team || rowBlocks == 1) {
      parallelFor(strips, team, [&](int64_t s) {
        thread_local std::vector<float> strip;
        strip.resize(static_cast<size_t>(g.k * kLanes));
        packStrip(g, s, strip.data());
        for (int64_t b = 0; b < rowBlocks; ++b) tile(strip.data(), all + b * kRows * g.k, b * kRows, s);
      });
    } else {
      // Few strips: pack them once, and split the work over row blocks too.
      float* packed = callerStrips.get(static_cast<size_t>(strips * g.k * kLanes));
      for (int64_t s = 0; s < strips; ++s) packStrip(g, s, packed + s * g.k * kLanes);
      parallelFor(rowBlocks * strips, team, [&](int64_t task) {
        const int64_t i0 = (task / strips) * kRows, s = task % strips;
        tile(packed + s * g.k * kLanes, all + i0 * g.k, i0, s);
      });
    }
  }
}

}  // namespace octet
