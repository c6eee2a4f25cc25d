// The emulated-accumulation GEMM's tiles on AVX-512 (16 lanes): the fast tile (lowp_gemm_fast.h)
// and the exact one, which rounds every addition with the codec's own rounding (encode16) and a
// table lookup. Everything below the pragma compiles for AVX-512F; the driver (lowp_gemm.cc) calls
// in only where the CPU has it.
#include "cpu.h"

#ifdef OCTET_X86
#include <cstdint>
#include <cstring>

#include "codec_core.h"
#include "lowp_gemm_tiles.h"

#pragma GCC push_options
#pragma GCC target("avx512f")

#include "lowp_gemm_fast.h"
#include "lowp_gemm_order.h"

namespace octet {
namespace lowp {
namespace {

// (std::min is not used below the pragma: its instantiations could come out built for AVX-512
// where other files link them.)
inline int64_t smaller(int64_t a, int64_t b) { return a < b ? a : b; }

struct Wide {
  using Float = __m512;
  using Int = __m512i;
  struct Constants {
    __m512 splitter;
    __m512i one, absMask, minBitsLess1, maxBitsLess1, keepMask, stochasticShift;
  };

  static Constants constants(const FastRange& r) {
    return {_mm512_set1_ps(r.splitter), _mm512_set1_epi32(1), _mm512_set1_epi32(0x7fffffff), _mm512_set1_epi32(static_cast<int>(r.minBitsLess1)),
            _mm512_set1_epi32(static_cast<int>(r.maxBitsLess1)), _mm512_set1_epi32(static_cast<int>(r.keepMask)), _mm512_set1_epi32(32 - r.drop)};
  }
  static Float broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static Float fma(Float a, Float b, Float c) { return _mm512_fmadd_ps(a, b, c); }
  static Int weyl(uint64_t t) { return _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(t) * 0x9e3779b9u)); }
  static Float round(Float sum, const Constants& f) {
    const Float c = _mm512_fmadd_ps(sum, f.splitter, sum);
    return _mm512_sub_ps(c, _mm512_sub_ps(c, sum));
  }
  static Int roundBits(Float sum, Int keys, Int weylStep, const Constants& f) {
    const Int draw = codec_core::mix16(_mm512_xor_si512(codec_core::mix16(_mm512_add_epi32(weylStep, keys)), keys));
    const Int bits = _mm512_add_epi32(_mm512_castps_si512(sum), _mm512_srlv_epi32(_mm512_ternarylogic_epi32(draw, draw, draw, 0x55), f.stochasticShift));
    return _mm512_and_si512(bits, f.keepMask);
  }
  static void track(Int bits, const Constants& f, Int& worstHigh, Int& worstLow) {
    const Int g = _mm512_sub_epi32(_mm512_and_si512(bits, f.absMask), f.one);
    worstHigh = _mm512_max_epi32(worstHigh, g);
    worstLow = _mm512_min_epu32(worstLow, g);
  }
  static bool inRange(Int worstHigh, Int worstLow, const Constants& f) {
    return _mm512_cmpgt_epi32_mask(worstHigh, f.maxBitsLess1) == 0 && _mm512_cmplt_epu32_mask(worstLow, f.minBitsLess1) == 0;
  }
};

template <bool kFma, bool kCheck, bool kStochastic>
struct WideTile {
  static bool run(const LowpGemmArgs& g, const FastRange& range, const float* strip, const float* rows0, int64_t i0, int64_t s) {
    const int64_t rows = smaller(kRows, g.m - i0);
    const int64_t j0 = s * kLanes, width = smaller(kLanes, g.n - j0);
    const Wide::Constants f = Wide::constants(range);
    const float* arow[kRows];
    __m512i keys[kRows];
    for (int r = 0; r < kRows; ++r) {
      arow[r] = rows0 + smaller(r, rows - 1) * g.k;
      keys[r] = _mm512_setzero_si512();
      if (kStochastic) {
        alignas(64) uint32_t lanes[kLanes];
        cellKeys(g.acc.key, i0 + r, j0, kLanes, lanes);
        keys[r] = _mm512_load_si512(lanes);
      }
    }
    __m512 acc[kRows];
    if (!fastRows<Wide, kRows, kFma, kCheck, kStochastic>(g, f, arow, strip, keys, acc)) return false;
    const __mmask16 store = static_cast<__mmask16>((1u << width) - 1u);
    for (int r = 0; r < rows; ++r) _mm512_mask_storeu_ps(g.c + (i0 + r) * g.n + j0, store, acc[r]);
    return true;
  }
};

// One exact addition on 16 lanes: the codec's rounding (encode16) and a table lookup.
template <int kRounding>
__m512 addRounded16(__m512 acc, __m512 term, const LowpGemmArgs& g, __m512i keys, uint32_t t) {
  const __m512 sum = _mm512_add_ps(acc, term);
  if (!g.lut) return sum;
  const __m512i weyl = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(t * 0x9e3779b9u)), keys);
  const __m512i codes = codec_core::encode16<kRounding>(_mm512_castps_si512(sum), g.acc, keys, weyl);
  return _mm512_i32gather_ps(codes, g.lut, 4);
}

template <int kRounding>
void exactTile(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s) {
  const int64_t rows = smaller(kRows, g.m - i0);
  const int64_t j0 = s * kLanes, width = smaller(kLanes, g.n - j0);
  const __mmask16 store = static_cast<__mmask16>((1u << width) - 1u);
  for (int64_t r = 0; r < rows; ++r) {
    const float* arow = rows0 + r * g.k;
    alignas(64) uint32_t keyLanes[kLanes];
    cellKeys(g.acc.key, i0 + r, j0, kLanes, keyLanes);
    const __m512i keys = _mm512_load_si512(keyLanes);
    __m512 acc;
    sumInContractOrder(
        g, acc, [](__m512& sum) { sum = _mm512_setzero_ps(); },
        [&](__m512& sum, int64_t t0, int64_t t1) {
          for (int64_t t = t0; t < t1; ++t) {
            const __m512 product = _mm512_mul_ps(_mm512_set1_ps(arow[t]), _mm512_loadu_ps(strip + t * kLanes));
            sum = addRounded16<kRounding>(sum, product, g, keys, static_cast<uint32_t>(t));
          }
        },
        [&](__m512& total, __m512& partial, int64_t run) {
          total = addRounded16<kRounding>(total, partial, g, keys, static_cast<uint32_t>(g.k + run));
        });
    _mm512_mask_storeu_ps(g.c + (i0 + r) * g.n + j0, store, acc);
  }
}

}  // namespace

FastTile avx512FastTile(bool stochastic, bool fma, bool unchecked) { return pickFastTile<WideTile>(stochastic, fma, unchecked); }

void avx512ExactTile(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s) {
  if (g.acc.rounding == kStochastic) exactTile<kStochastic>(g, strip, rows0, i0, s);
  else exactTile<kNearest>(g, strip, rows0, i0, s);
}

}  // namespace lowp
}  // namespace octet

#pragma GCC pop_options
#endif
