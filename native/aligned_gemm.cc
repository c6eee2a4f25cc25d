#include "aligned_gemm.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

#include "cpu.h"
#include "parallel.h"

namespace octet {
namespace {

constexpr int kNone = -100000;  // "no exponent yet": below every real one

inline int bitLength(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }

// v * 2^s truncated toward zero (s may be negative).
inline int64_t shiftTrunc(int64_t v, int s) {
  if (s >= 0) return v * (int64_t(1) << (s < 62 ? s : 62));
  const int r = -s;
  if (r >= 63) return 0;
  const int64_t magnitude = (v < 0 ? -v : v) >> r;
  return v < 0 ? -magnitude : magnitude;
}

// One element, in scalar code (the contract as the TypeScript reference runs it).
float elementScalar(const AlignedGemmArgs& g, const uint8_t* arow, int64_t j, const std::vector<uint8_t>& colBad) {
  const AlignedTables& ta = g.ta;
  const AlignedTables& tb = g.tb;
  bool bad = colBad[j] != 0;
  for (int64_t t = 0; t < g.k && !bad; ++t) bad = ta.bad[arow[t]] != 0;
  if (bad) return std::numeric_limits<float>::quiet_NaN();
  const int64_t interval = g.interval > 0 ? g.interval : (g.k > 0 ? g.k : 1);
  const int shiftBase = -ta.mantissaBits - tb.mantissaBits + g.keep;
  float total = 0.0f;
  for (int64_t start = 0; start < g.k; start += interval) {
    const int64_t end = std::min(g.k, start + interval);
    int64_t accInt = 0;
    int accExp = 0;
    for (int64_t g0 = start; g0 < end; g0 += g.group) {
      const int64_t g1 = std::min(end, g0 + g.group);
      int x = accInt ? bitLength(static_cast<uint64_t>(accInt < 0 ? -accInt : accInt)) - 1 + accExp : kNone;
      for (int64_t t = g0; t < g1; ++t) {
        const uint8_t ca = arow[t], cb = g.b[t * g.n + j];
        if (ta.sig[ca] != 0 && tb.sig[cb] != 0) x = std::max(x, ta.exp[ca] + tb.exp[cb]);
      }
      if (x == kNone) continue;
      int64_t sum = shiftTrunc(accInt, accExp - x + g.keep);
      for (int64_t t = g0; t < g1; ++t) {
        const uint8_t ca = arow[t], cb = g.b[t * g.n + j];
        const int64_t p = int64_t(ta.sig[ca]) * tb.sig[cb];
        if (p) sum += shiftTrunc(p, ta.exp[ca] + tb.exp[cb] - x + shiftBase);
      }
      uint64_t magnitude = static_cast<uint64_t>(sum < 0 ? -sum : sum);
      const int drop = bitLength(magnitude) - g.significant;
      if (drop > 0) magnitude = (magnitude >> drop) << drop;
      accInt = sum < 0 ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
      accExp = x - g.keep;
    }
    total = total + static_cast<float>(std::ldexp(static_cast<double>(accInt), accExp));
  }
  return total;
}

#ifdef OCTET_X86
// v * 2^s truncated toward zero, 16 lanes (int32; |v| < 2^24 and left shifts keep it below 2^31).
__attribute__((target("avx512f"), always_inline)) inline __m512i shiftTrunc16(__m512i v, __m512i s) {
  const __mmask16 left = _mm512_cmpge_epi32_mask(s, _mm512_setzero_si512());
  const __m512i up = _mm512_sllv_epi32(v, s);
  const __m512i down = _mm512_srlv_epi32(_mm512_abs_epi32(v), _mm512_sub_epi32(_mm512_setzero_si512(), s));
  const __mmask16 negative = _mm512_cmplt_epi32_mask(v, _mm512_setzero_si512());
  const __m512i signedDown = _mm512_mask_sub_epi32(down, negative, _mm512_setzero_si512(), down);
  return _mm512_mask_blend_epi32(left, signedDown, up);
}

// Bit length of |v| for |v| < 2^24 (exact as a float: the exponent field gives it).
__attribute__((target("avx512f"), always_inline)) inline __m512i bitLength16(__m512i magnitude) {
  const __m512i bits = _mm512_castps_si512(_mm512_cvtepi32_ps(magnitude));
  const __m512i length = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126));
  return _mm512_maskz_mov_epi32(_mm512_test_epi32_mask(magnitude, magnitude), length);
}

// Row i, columns [j0, j0 + 16) (stored masked past n). sigB/expB: B's codes decoded to int8,
// k x n plus 16 bytes of padding, so a row's last 16 lanes read past its end: those lanes are
// independent of the others and never stored.
__attribute__((target("avx512f"))) void tile16(const AlignedGemmArgs& g, const uint8_t* arow, const int8_t* sigB, const int8_t* expB, int64_t j0,
                                               __mmask16 lanes, float* out) {
  const AlignedTables& ta = g.ta;
  const int64_t interval = g.interval > 0 ? g.interval : (g.k > 0 ? g.k : 1);
  const __m512i keep = _mm512_set1_epi32(g.keep);
  const __m512i shiftBase = _mm512_set1_epi32(-ta.mantissaBits - g.tb.mantissaBits + g.keep);
  const __m512i none = _mm512_set1_epi32(kNone);
  const __m512i significant = _mm512_set1_epi32(g.significant);
  __m512 total = _mm512_setzero_ps();
  for (int64_t start = 0; start < g.k; start += interval) {
    const int64_t end = std::min(g.k, start + interval);
    __m512i accInt = _mm512_setzero_si512(), accExp = _mm512_setzero_si512();
    for (int64_t g0 = start; g0 < end; g0 += g.group) {
      const int64_t g1 = std::min(end, g0 + g.group);
      const __m512i accAbs = _mm512_abs_epi32(accInt);
      __m512i x = _mm512_mask_blend_epi32(_mm512_test_epi32_mask(accInt, accInt), none,
                                          _mm512_add_epi32(_mm512_sub_epi32(bitLength16(accAbs), _mm512_set1_epi32(1)), accExp));
      for (int64_t t = g0; t < g1; ++t) {
        if (ta.sig[arow[t]] == 0) continue;
        const __m512i sb = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sigB + t * g.n + j0)));
        const __m512i eb = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(expB + t * g.n + j0)));
        x = _mm512_mask_max_epi32(x, _mm512_test_epi32_mask(sb, sb), x, _mm512_add_epi32(eb, _mm512_set1_epi32(ta.exp[arow[t]])));
      }
      const __mmask16 active = _mm512_cmpgt_epi32_mask(x, none);
      if (!active) continue;
      __m512i sum = shiftTrunc16(accInt, _mm512_add_epi32(_mm512_sub_epi32(accExp, x), keep));
      for (int64_t t = g0; t < g1; ++t) {
        const int sa = ta.sig[arow[t]];
        if (sa == 0) continue;
        const __m512i sb = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sigB + t * g.n + j0)));
        const __m512i eb = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(expB + t * g.n + j0)));
        const __m512i p = _mm512_mullo_epi32(sb, _mm512_set1_epi32(sa));
        const __m512i s = _mm512_add_epi32(_mm512_sub_epi32(_mm512_add_epi32(eb, _mm512_set1_epi32(ta.exp[arow[t]])), x), shiftBase);
        sum = _mm512_add_epi32(sum, shiftTrunc16(p, s));
      }
      __m512i magnitude = _mm512_abs_epi32(sum);
      const __m512i drop = _mm512_max_epi32(_mm512_sub_epi32(bitLength16(magnitude), significant), _mm512_setzero_si512());
      magnitude = _mm512_sllv_epi32(_mm512_srlv_epi32(magnitude, drop), drop);
      const __m512i truncated = _mm512_mask_sub_epi32(magnitude, _mm512_cmplt_epi32_mask(sum, _mm512_setzero_si512()), _mm512_setzero_si512(), magnitude);
      accInt = _mm512_mask_mov_epi32(accInt, active, truncated);
      accExp = _mm512_mask_mov_epi32(accExp, active, _mm512_sub_epi32(x, keep));
    }
    // acc = accInt * 2^accExp, exact as a float (at most `significant` bits), then one float add.
    const __m512 value = _mm512_scalef_ps(_mm512_cvtepi32_ps(accInt), _mm512_cvtepi32_ps(accExp));
    total = _mm512_add_ps(total, value);
  }
  _mm512_mask_storeu_ps(out, lanes, total);
}
#endif

}  // namespace

void alignedGemm(const AlignedGemmArgs& g, int threads) {
  std::vector<uint8_t> colBad(static_cast<size_t>(g.n), 0);
  for (int64_t t = 0; t < g.k; ++t)
    for (int64_t j = 0; j < g.n; ++j) colBad[j] |= g.tb.bad[g.b[t * g.n + j]];
#ifdef OCTET_X86
  // The vector path keeps sums in int32 and finds bit lengths through float conversion: both need
  // |sum| < 2^24, which groups of at most 256 products of at most 8-bit codes keep.
  const bool wide = cpuHasAvx512() && g.group <= 256 && g.keep <= 14 && g.significant <= 24;
#else
  const bool wide = false;
#endif
  std::vector<int8_t> sigB, expB;
  if (wide) {
    sigB.assign(static_cast<size_t>(g.k * g.n + 16), 0);
    expB.assign(static_cast<size_t>(g.k * g.n + 16), 0);
    parallelFor(g.k, g.k * g.n < 65536 ? 1 : threads, [&](int64_t t) {
      for (int64_t j = 0; j < g.n; ++j) {
        const uint8_t c = g.b[t * g.n + j];
        sigB[t * g.n + j] = g.tb.sig[c];
        expB[t * g.n + j] = g.tb.exp[c];
      }
    });
  }
  const int64_t blocks = (g.n + 15) / 16;
  parallelFor(g.m * blocks, g.m * g.n * g.k < (1 << 16) ? 1 : threads, [&](int64_t item) {
    const int64_t i = item / blocks, j0 = (item % blocks) * 16, j1 = std::min(g.n, j0 + 16);
    const uint8_t* arow = g.a + i * g.k;
    float* out = g.c + i * g.n;
#ifdef OCTET_X86
    if (wide) {
      bool rowBad = false;
      for (int64_t t = 0; t < g.k && !rowBad; ++t) rowBad = g.ta.bad[arow[t]] != 0;
      const __mmask16 lanes = static_cast<__mmask16>(j1 - j0 >= 16 ? 0xffff : (1u << (j1 - j0)) - 1u);
      tile16(g, arow, sigB.data(), expB.data(), j0, lanes, out + j0);
      for (int64_t j = j0; j < j1; ++j)
        if (rowBad || colBad[j]) out[j] = std::numeric_limits<float>::quiet_NaN();
      return;
    }
#endif
    for (int64_t j = j0; j < j1; ++j) out[j] = elementScalar(g, arow, j, colBad);
  });
}

}  // namespace octet
