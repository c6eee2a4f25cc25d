// The emulated-accumulation GEMM's fast tile with AVX2 and FMA, for CPUs without AVX-512: the
// rounding steps of lowp_gemm_fast.h on 8 lanes (a strip's two halves in turn), kGroupRows rows of
// a tile at a time so that the accumulators, the strip's row and the rounding's constants fit the
// 16 vector registers. Each accumulator is a chain of dependent steps (multiply-add, splitting
// multiply-add, two subtractions), so a group holds as many independent chains as the registers
// allow. Everything below the pragma compiles for AVX2 and FMA; the driver (lowp_gemm.cc) calls in
// only where the CPU has them.
#include "cpu.h"

#ifdef OCTET_X86
#include <cstdint>

#include "codec_core.h"
#include "lowp_gemm_tiles.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

#include "lowp_gemm_fast.h"
#include "lowp_gemm_order.h"

namespace octet {
namespace lowp {
namespace {

constexpr int kGroupRows = 6;

// (std::min is not used below the pragma: its instantiations could come out built for AVX2 where
// other files link them.)
inline int64_t smaller(int64_t a, int64_t b) { return a < b ? a : b; }

struct Narrow {
  using Float = __m256;
  using Int = __m256i;
  struct Constants {
    __m256 splitter;
    __m256i one, absMask, signFlip, minBitsLess1Flipped, maxBitsLess1, keepMask, stochasticShift, allOnes;
  };

  static Constants constants(const FastRange& r) {
    // Unsigned comparisons as signed ones of the values with their top bit flipped.
    return {_mm256_set1_ps(r.splitter), _mm256_set1_epi32(1), _mm256_set1_epi32(0x7fffffff), _mm256_set1_epi32(static_cast<int>(0x80000000u)),
            _mm256_set1_epi32(static_cast<int>(r.minBitsLess1 ^ 0x80000000u)), _mm256_set1_epi32(static_cast<int>(r.maxBitsLess1)),
            _mm256_set1_epi32(static_cast<int>(r.keepMask)), _mm256_set1_epi32(32 - r.drop), _mm256_set1_epi32(-1)};
  }
  static Float broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Float fma(Float a, Float b, Float c) { return _mm256_fmadd_ps(a, b, c); }
  static Int weyl(uint64_t t) { return _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(t) * 0x9e3779b9u)); }
  static Float round(Float sum, const Constants& f) {
    const Float c = _mm256_fmadd_ps(sum, f.splitter, sum);
    return _mm256_sub_ps(c, _mm256_sub_ps(c, sum));
  }
  static Int roundBits(Float sum, Int keys, Int weylStep, const Constants& f) {
    const Int draw = codec_core::mix8(_mm256_xor_si256(codec_core::mix8(_mm256_add_epi32(weylStep, keys)), keys));
    const Int notDraw = _mm256_xor_si256(draw, f.allOnes);
    const Int bits = _mm256_add_epi32(_mm256_castps_si256(sum), _mm256_srlv_epi32(notDraw, f.stochasticShift));
    return _mm256_and_si256(bits, f.keepMask);
  }
  static void track(Int bits, const Constants& f, Int& worstHigh, Int& worstLow) {
    const Int g = _mm256_sub_epi32(_mm256_and_si256(bits, f.absMask), f.one);
    worstHigh = _mm256_max_epi32(worstHigh, g);
    worstLow = _mm256_min_epu32(worstLow, g);
  }
  static bool inRange(Int worstHigh, Int worstLow, const Constants& f) {
    const Int high = _mm256_cmpgt_epi32(worstHigh, f.maxBitsLess1);
    const Int low = _mm256_cmpgt_epi32(f.minBitsLess1Flipped, _mm256_xor_si256(worstLow, f.signFlip));
    return _mm256_testz_si256(_mm256_or_si256(high, low), f.allOnes) != 0;
  }
};

// Rows [r0, r0 + kGroupRows) (clamped to the tile's) of a tile, lanes [8 * h, 8 * h + 8), into out
// (kGroupRows rows of 8). Returns false when a value left the fast rounding's range.
template <bool kFma, bool kCheck, bool kStochastic>
bool groupRows(const LowpGemmArgs& g, const Narrow::Constants& f, const float* strip, const float* rows0, int64_t i0, int64_t j0, int64_t rows,
               int r0, int h, float* out) {
  const float* arow[kGroupRows];
  __m256i keys[kGroupRows];
  for (int r = 0; r < kGroupRows; ++r) {
    const int64_t row = smaller(r0 + r, rows - 1);
    arow[r] = rows0 + row * g.k;
    keys[r] = _mm256_setzero_si256();
    if (kStochastic) {
      alignas(32) uint32_t lanes[8];
      cellKeys(g.acc.key, i0 + row, j0 + 8 * h, 8, lanes);
      keys[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
    }
  }
  __m256 acc[kGroupRows];
  if (!fastRows<Narrow, kGroupRows, kFma, kCheck, kStochastic>(g, f, arow, strip + 8 * h, keys, acc)) return false;
  for (int r = 0; r < kGroupRows; ++r) _mm256_storeu_ps(out + r * 8, acc[r]);
  return true;
}

// A tile on the 8-lane fast path: every group into a buffer first, so that nothing is stored when
// a value left the range (the caller then recomputes the tile exactly).
template <bool kFma, bool kCheck, bool kStochastic>
struct NarrowTile {
  static bool run(const LowpGemmArgs& g, const FastRange& range, const float* strip, const float* rows0, int64_t i0, int64_t s) {
    const int64_t rows = smaller(kRows, g.m - i0);
    const int64_t j0 = s * kLanes, width = smaller(kLanes, g.n - j0);
    const int halves = width > 8 ? 2 : 1;
    const Narrow::Constants f = Narrow::constants(range);
    constexpr int kGroups = (kRows + kGroupRows - 1) / kGroupRows;
    alignas(32) float result[2][kGroups * kGroupRows * 8];
    for (int h = 0; h < halves; ++h) {
      for (int r0 = 0; r0 < rows; r0 += kGroupRows) {
        if (!groupRows<kFma, kCheck, kStochastic>(g, f, strip, rows0, i0, j0, rows, r0, h, result[h] + r0 * 8)) return false;
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      float* dst = g.c + (i0 + r) * g.n + j0;
      for (int64_t l = 0; l < width; ++l) dst[l] = result[l / 8][r * 8 + l % 8];
    }
    return true;
  }
};

}  // namespace

FastTile avx2FastTile(bool stochastic, bool fma, bool unchecked) { return pickFastTile<NarrowTile>(stochastic, fma, unchecked); }

}  // namespace lowp
}  // namespace octet

#pragma GCC pop_options
#endif
