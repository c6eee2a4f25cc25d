// The codec's per-element rounding, shared by the codec and the low-precision GEMM: one float32
// bit pattern (or 16 lanes of them) to a code of a format, with the contract of
// src/formats/codec.ts. Internal to the native core.
#pragma once
#include <cstdint>

#include "codec.h"
#include "cpu.h"

namespace octet {
namespace codec_core {

inline uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

inline uint32_t draw32(uint32_t key, uint32_t counter) { return mix32(mix32(counter * 0x9e3779b9u + key) ^ key); }

// Encode one float32 bit pattern. Written as arithmetic and selects on 32-bit lanes, without
// early exits, so that compilers vectorize the loops around it.
template <int kRounding>
inline uint32_t encodeOne(uint32_t u, const CodecParams& p, uint32_t counter) {
  const uint32_t sign = (u >> 31) * p.signMask;
  const uint32_t ax = u & 0x7fffffffu;
  const int32_t exp8 = static_cast<int32_t>(ax >> 23);
  // x = sig * 2^(E - 23); float32 subnormals keep E = -126 with sig < 2^23.
  const int32_t E = (exp8 > 1 ? exp8 : 1) - 127;
  const uint32_t sig = (ax & 0x7fffffu) | (static_cast<uint32_t>(exp8 != 0) << 23);
  int32_t targetE = E > p.emin ? E : p.emin;
  const int32_t s = 23 - p.mantissaBits + targetE - E;
  // sig < 2^24, so a shift of 25 discards all of it, as any larger one would.
  const int32_t sh = s < 25 ? s : 25;
  uint32_t n = sig >> sh;
  const uint32_t rem = sig - (n << sh);
  uint32_t up = 0;
  if (kRounding == kNearest) {
    // half = 2^(sh-1); for sh = 0 there is nothing to round (rem = 0 < half = 2^32 - 1).
    const uint32_t half = (1u << sh) >> 1;
    const uint32_t halfOrMax = sh > 0 ? half : 0xffffffffu;
    up = static_cast<uint32_t>(rem > halfOrMax) | (static_cast<uint32_t>(rem == halfOrMax) & n & 1u);
  } else if (kRounding == kStochastic) {
    // floor(rem / 2^s * 2^32); from s = 56 on it is 0 since rem < 2^24.
    const uint32_t fraction32 = s <= 32 ? (rem << (32 - s)) : (s < 56 ? (rem >> (s - 32)) : 0u);
    up = static_cast<uint32_t>(draw32(p.key, counter) < fraction32);
  }
  n += up;
  const uint32_t twoM = 1u << p.mantissaBits;
  const uint32_t carry = static_cast<uint32_t>(n == (twoM << 1));
  n = carry ? twoM : n;
  targetE += static_cast<int32_t>(carry);
  const int32_t biased = targetE + p.bias;
  const uint32_t mantissa = n - twoM;
  const bool overflow = biased > p.maxBiasedExponent ||
                        (biased == p.maxBiasedExponent && mantissa > static_cast<uint32_t>(p.maxMantissaAtTop));
  uint32_t code = static_cast<uint32_t>(biased) * twoM + mantissa;
  code = overflow ? p.finiteOverflow : code;
  code = n < twoM ? n * p.subnormalsKept : code;  // subnormal (or zero) results
  const bool nan = ax > 0x7f800000u;
  code = nan ? p.nanCode : code;
  code = ax == 0x7f800000u ? p.infResult : code;
  // No sign on a zero of a format without -0, on the fnuz NaN (only the sign bit set), or on a
  // NaN code that carries none (src/formats/codec.ts, withSign).
  const bool unsignedCode = nan ? p.signedNaN == 0 : (code >= p.signMask) | ((code == 0) & (p.signedZero == 0));
  return (unsignedCode ? 0u : sign) + code;
}

#ifdef OCTET_X86
#define OCTET_WIDE __attribute__((target("avx512f")))
OCTET_WIDE inline __m512i mix16(__m512i h) {
  h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
  h = _mm512_mullo_epi32(h, _mm512_set1_epi32(static_cast<int>(0x85ebca6bu)));
  h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 13));
  h = _mm512_mullo_epi32(h, _mm512_set1_epi32(static_cast<int>(0xc2b2ae35u)));
  return _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
}

// mix32 on 8 lanes with AVX2 (the low-precision GEMM's fast path on CPUs without AVX-512).
__attribute__((target("avx2"), always_inline)) inline __m256i mix8(__m256i h) {
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
  h = _mm256_mullo_epi32(h, _mm256_set1_epi32(static_cast<int>(0x85ebca6bu)));
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
  h = _mm256_mullo_epi32(h, _mm256_set1_epi32(static_cast<int>(0xc2b2ae35u)));
  return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

// encodeOne on 16 lanes with AVX-512F: the same steps, as vector arithmetic and masks.
// `key` holds each lane's stream key (the codec broadcasts one; the GEMM has one per element),
// and `weyl` each lane's counter * 0x9E3779B9 + key (mod 2^32), which callers form with one
// addition per vector (the first step of the draw; unused by the other roundings).
template <int kRounding>
OCTET_WIDE inline __m512i encode16(__m512i u, const CodecParams& p, __m512i key, __m512i weyl) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i sign = _mm512_and_si512(_mm512_srai_epi32(u, 31), _mm512_set1_epi32(static_cast<int>(p.signMask)));
  const __m512i ax = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
  const __m512i exp8 = _mm512_srli_epi32(ax, 23);
  const __m512i E = _mm512_sub_epi32(_mm512_max_epi32(exp8, one), _mm512_set1_epi32(127));
  const __mmask16 normal = _mm512_cmpneq_epi32_mask(exp8, _mm512_setzero_si512());
  const __m512i sig = _mm512_mask_or_epi32(_mm512_and_si512(ax, _mm512_set1_epi32(0x7fffff)), normal,
                                           _mm512_and_si512(ax, _mm512_set1_epi32(0x7fffff)), _mm512_set1_epi32(0x800000));
  __m512i targetE = _mm512_max_epi32(E, _mm512_set1_epi32(p.emin));
  const __m512i s = _mm512_add_epi32(_mm512_sub_epi32(targetE, E), _mm512_set1_epi32(23 - p.mantissaBits));
  const __m512i sh = _mm512_min_epi32(s, _mm512_set1_epi32(25));
  __m512i n = _mm512_srlv_epi32(sig, sh);
  const __m512i rem = _mm512_sub_epi32(sig, _mm512_sllv_epi32(n, sh));
  __mmask16 up = 0;
  if (kRounding == kNearest) {
    const __m512i half = _mm512_srli_epi32(_mm512_sllv_epi32(one, sh), 1);
    const __mmask16 rounds = _mm512_cmpgt_epi32_mask(sh, _mm512_setzero_si512());
    const __mmask16 odd = _mm512_test_epi32_mask(n, one);
    up = rounds & (_mm512_cmpgt_epu32_mask(rem, half) | (_mm512_cmpeq_epi32_mask(rem, half) & odd));
  } else if (kRounding == kStochastic) {
    // Variable shifts of 32 or more give 0, as floor(rem / 2^s * 2^32) is for s >= 56.
    const __m512i thirtyTwo = _mm512_set1_epi32(32);
    const __mmask16 small = _mm512_cmple_epi32_mask(s, thirtyTwo);
    const __m512i left = _mm512_sllv_epi32(rem, _mm512_sub_epi32(thirtyTwo, s));
    const __m512i right = _mm512_srlv_epi32(rem, _mm512_sub_epi32(s, thirtyTwo));
    const __m512i fraction32 = _mm512_mask_blend_epi32(small, right, left);
    const __m512i draw = mix16(_mm512_xor_si512(mix16(weyl), key));
    up = _mm512_cmplt_epu32_mask(draw, fraction32);
  }
  n = _mm512_mask_add_epi32(n, up, n, one);
  const __m512i twoM = _mm512_set1_epi32(1 << p.mantissaBits);
  const __mmask16 carry = _mm512_cmpeq_epi32_mask(n, _mm512_slli_epi32(twoM, 1));
  n = _mm512_mask_mov_epi32(n, carry, twoM);
  targetE = _mm512_mask_add_epi32(targetE, carry, targetE, one);
  // code = biased * 2^m + (n - 2^m) = ((biased - 1) << m) + n for normal results.
  const __m512i biasedLess1 = _mm512_add_epi32(targetE, _mm512_set1_epi32(p.bias - 1));
  const __m512i topLess1 = _mm512_set1_epi32(p.maxBiasedExponent - 1);
  const __mmask16 overflow = _mm512_cmpgt_epi32_mask(biasedLess1, topLess1) |
                             (_mm512_cmpeq_epi32_mask(biasedLess1, topLess1) &
                              _mm512_cmpgt_epu32_mask(n, _mm512_set1_epi32((1 << p.mantissaBits) + p.maxMantissaAtTop)));
  __m512i code = _mm512_add_epi32(_mm512_sllv_epi32(biasedLess1, _mm512_set1_epi32(p.mantissaBits)), n);
  code = _mm512_mask_mov_epi32(code, overflow, _mm512_set1_epi32(static_cast<int>(p.finiteOverflow)));
  code = _mm512_mask_mov_epi32(code, _mm512_cmplt_epu32_mask(n, twoM), p.subnormalsKept ? n : _mm512_setzero_si512());
  const __m512i inf = _mm512_set1_epi32(0x7f800000);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(ax, inf);
  code = _mm512_mask_mov_epi32(code, nan, _mm512_set1_epi32(static_cast<int>(p.nanCode)));
  code = _mm512_mask_mov_epi32(code, _mm512_cmpeq_epi32_mask(ax, inf), _mm512_set1_epi32(static_cast<int>(p.infResult)));
  // As encodeOne: no sign on an unsigned zero, on the fnuz NaN, or on a NaN that carries none.
  __mmask16 unsignedCode = _mm512_cmpge_epu32_mask(code, _mm512_set1_epi32(static_cast<int>(p.signMask)));
  if (!p.signedZero) unsignedCode |= _mm512_cmpeq_epi32_mask(code, _mm512_setzero_si512());
  unsignedCode = p.signedNaN ? (unsignedCode & ~nan) : (unsignedCode | nan);
  return _mm512_mask_add_epi32(code, static_cast<__mmask16>(~unsignedCode), code, sign);
}


// Rounding on the float32 bits, for lanes whose input is zero or lies in F's normal range and
// whose result does not overflow (the common case): add to the bits what the rounding adds below
// F's last mantissa bit, then clear the dropped bits (d = 23 - m of them).
// - nearest: half a unit minus one, plus the last kept bit (ties to even);
// - stochastic: (~draw) >> (32 - d), which carries into the kept bits exactly when
//   draw < floor(fraction * 2^32), the codec's rule;
// - toward zero: nothing.
// Returns the rounded float32 bits (sign kept); `ok` marks the lanes where this equals the codec.
struct NormalRounding {
  __m512i drop, roundBias, keepMask, lastKeptBit, minBits, maxBits, infBits, absMask, one, stochasticShift;
  // Zero inputs may take this path only where a zero keeps its sign (not in fnuz formats).
  bool zeroLanes;
};

OCTET_WIDE inline NormalRounding normalRounding(const CodecParams& p) {
  const int d = 23 - p.mantissaBits;
  const uint32_t maxBits = (static_cast<uint32_t>(p.maxBiasedExponent - p.bias + 127) << 23) |
                           (static_cast<uint32_t>(p.maxMantissaAtTop) << d);
  NormalRounding r;
  r.drop = _mm512_set1_epi32(d);
  r.roundBias = _mm512_set1_epi32(d > 0 ? static_cast<int>((1u << (d - 1)) - 1u) : 0);
  r.keepMask = _mm512_set1_epi32(static_cast<int>(~((1u << d) - 1u)));
  r.lastKeptBit = _mm512_set1_epi32(static_cast<int>(1u << d));
  r.minBits = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(p.emin + 127) << 23));
  r.maxBits = _mm512_set1_epi32(static_cast<int>(maxBits));
  r.infBits = _mm512_set1_epi32(0x7f800000);
  r.absMask = _mm512_set1_epi32(0x7fffffff);
  r.one = _mm512_set1_epi32(1);
  r.stochasticShift = _mm512_set1_epi32(32 - d);
  r.zeroLanes = p.signedZero != 0;
  return r;
}

template <int kRounding>
OCTET_WIDE inline __m512i roundNormal16(__m512i u, const NormalRounding& r, __m512i key, __m512i weyl, __mmask16& ok) {
  const __m512i ax = _mm512_and_si512(u, r.absMask);
  __m512i y = u;
  if (kRounding == kNearest) {
    const __mmask16 odd = _mm512_test_epi32_mask(u, r.lastKeptBit);
    const __m512i biased = _mm512_add_epi32(u, r.roundBias);
    y = _mm512_mask_add_epi32(biased, odd, biased, r.one);
  } else if (kRounding == kStochastic) {
    const __m512i draw = mix16(_mm512_xor_si512(mix16(weyl), key));
    y = _mm512_add_epi32(u, _mm512_srlv_epi32(_mm512_ternarylogic_epi32(draw, draw, draw, 0x55), r.stochasticShift));
  }
  const __m512i rounded = _mm512_and_si512(y, r.keepMask);
  const __m512i roundedAbs = _mm512_and_si512(rounded, r.absMask);
  // Finite inputs only: a NaN's payload could carry into the sign bit.
  ok = (_mm512_cmpge_epu32_mask(ax, r.minBits) & _mm512_cmplt_epu32_mask(ax, r.infBits) &
        _mm512_cmple_epu32_mask(roundedAbs, r.maxBits)) |
       (r.zeroLanes ? _mm512_cmpeq_epi32_mask(ax, _mm512_setzero_si512()) : static_cast<__mmask16>(0));
  return rounded;
}

// ---- The same on 8 lanes with AVX2 (CPUs without AVX-512): compares give all-ones lanes where
// AVX-512 gives mask bits. Every value compared below lies in [0, 2^31) (magnitudes' bits, small
// integers), so signed compares stand for the unsigned ones, except the stochastic draw's.
#define OCTET_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline

// encodeOne on 8 lanes: the steps of encode16.
template <int kRounding>
OCTET_AVX2_INLINE __m256i encode8(__m256i u, const CodecParams& p, __m256i key, __m256i weyl) {
  const __m256i one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256();
  const __m256i sign = _mm256_and_si256(_mm256_srai_epi32(u, 31), _mm256_set1_epi32(static_cast<int>(p.signMask)));
  const __m256i ax = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  const __m256i exp8 = _mm256_srli_epi32(ax, 23);
  const __m256i E = _mm256_sub_epi32(_mm256_max_epi32(exp8, one), _mm256_set1_epi32(127));
  const __m256i hidden = _mm256_andnot_si256(_mm256_cmpeq_epi32(exp8, zero), _mm256_set1_epi32(0x800000));
  const __m256i sig = _mm256_or_si256(_mm256_and_si256(ax, _mm256_set1_epi32(0x7fffff)), hidden);
  __m256i targetE = _mm256_max_epi32(E, _mm256_set1_epi32(p.emin));
  const __m256i s = _mm256_add_epi32(_mm256_sub_epi32(targetE, E), _mm256_set1_epi32(23 - p.mantissaBits));
  const __m256i sh = _mm256_min_epi32(s, _mm256_set1_epi32(25));
  __m256i n = _mm256_srlv_epi32(sig, sh);
  const __m256i rem = _mm256_sub_epi32(sig, _mm256_sllv_epi32(n, sh));
  __m256i up = zero;  // all ones where the magnitude rounds up
  if (kRounding == kNearest) {
    const __m256i half = _mm256_srli_epi32(_mm256_sllv_epi32(one, sh), 1);
    const __m256i rounds = _mm256_cmpgt_epi32(sh, zero);
    const __m256i odd = _mm256_cmpeq_epi32(_mm256_and_si256(n, one), one);
    up = _mm256_and_si256(rounds, _mm256_or_si256(_mm256_cmpgt_epi32(rem, half), _mm256_and_si256(_mm256_cmpeq_epi32(rem, half), odd)));
  } else if (kRounding == kStochastic) {
    // Variable shifts of 32 or more (negative counts included) give 0, as on AVX-512.
    const __m256i thirtyTwo = _mm256_set1_epi32(32);
    const __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(33), s);
    const __m256i left = _mm256_sllv_epi32(rem, _mm256_sub_epi32(thirtyTwo, s));
    const __m256i right = _mm256_srlv_epi32(rem, _mm256_sub_epi32(s, thirtyTwo));
    const __m256i fraction32 = _mm256_blendv_epi8(right, left, small);
    const __m256i draw = mix8(_mm256_xor_si256(mix8(weyl), key));
    const __m256i flip = _mm256_set1_epi32(static_cast<int>(0x80000000u));
    up = _mm256_cmpgt_epi32(_mm256_xor_si256(fraction32, flip), _mm256_xor_si256(draw, flip));
  }
  n = _mm256_sub_epi32(n, up);
  const __m256i twoM = _mm256_set1_epi32(1 << p.mantissaBits);
  const __m256i carry = _mm256_cmpeq_epi32(n, _mm256_slli_epi32(twoM, 1));
  n = _mm256_blendv_epi8(n, twoM, carry);
  targetE = _mm256_sub_epi32(targetE, carry);
  const __m256i biasedLess1 = _mm256_add_epi32(targetE, _mm256_set1_epi32(p.bias - 1));
  const __m256i topLess1 = _mm256_set1_epi32(p.maxBiasedExponent - 1);
  const __m256i overflow = _mm256_or_si256(
      _mm256_cmpgt_epi32(biasedLess1, topLess1),
      _mm256_and_si256(_mm256_cmpeq_epi32(biasedLess1, topLess1), _mm256_cmpgt_epi32(n, _mm256_set1_epi32((1 << p.mantissaBits) + p.maxMantissaAtTop))));
  __m256i code = _mm256_add_epi32(_mm256_sll_epi32(biasedLess1, _mm_cvtsi32_si128(p.mantissaBits)), n);
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(static_cast<int>(p.finiteOverflow)), overflow);
  code = _mm256_blendv_epi8(code, p.subnormalsKept ? n : zero, _mm256_cmpgt_epi32(twoM, n));
  const __m256i inf = _mm256_set1_epi32(0x7f800000);
  const __m256i nan = _mm256_cmpgt_epi32(ax, inf);
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(static_cast<int>(p.nanCode)), nan);
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(static_cast<int>(p.infResult)), _mm256_cmpeq_epi32(ax, inf));
  // As encodeOne: no sign on an unsigned zero, on the fnuz NaN, or on a NaN that carries none
  // (codes are below 2^31; a format without a sign bit has signMask 0: every code unsigned).
  __m256i unsignedCode = _mm256_cmpgt_epi32(code, _mm256_set1_epi32(static_cast<int>(p.signMask) - 1));
  if (!p.signedZero) unsignedCode = _mm256_or_si256(unsignedCode, _mm256_cmpeq_epi32(code, zero));
  unsignedCode = p.signedNaN ? _mm256_andnot_si256(nan, unsignedCode) : _mm256_or_si256(unsignedCode, nan);
  return _mm256_add_epi32(code, _mm256_andnot_si256(unsignedCode, sign));
}

// roundNormal16 on 8 lanes; `ok` is all ones where the rounded bits equal the codec's.
struct NormalRounding8 {
  __m256i drop, roundBias, keepMask, lastKeptBit, minBits, maxBits, infBits, absMask, stochasticShift;
  bool zeroLanes;
};

OCTET_AVX2_INLINE NormalRounding8 normalRounding8(const CodecParams& p) {
  const int d = 23 - p.mantissaBits;
  const uint32_t maxBits = (static_cast<uint32_t>(p.maxBiasedExponent - p.bias + 127) << 23) |
                           (static_cast<uint32_t>(p.maxMantissaAtTop) << d);
  NormalRounding8 r;
  r.drop = _mm256_set1_epi32(d);
  r.roundBias = _mm256_set1_epi32(d > 0 ? static_cast<int>((1u << (d - 1)) - 1u) : 0);
  r.keepMask = _mm256_set1_epi32(static_cast<int>(~((1u << d) - 1u)));
  r.lastKeptBit = _mm256_set1_epi32(static_cast<int>(1u << d));
  r.minBits = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(p.emin + 127) << 23));
  r.maxBits = _mm256_set1_epi32(static_cast<int>(maxBits));
  r.infBits = _mm256_set1_epi32(0x7f800000);
  r.absMask = _mm256_set1_epi32(0x7fffffff);
  r.stochasticShift = _mm256_set1_epi32(32 - d);
  r.zeroLanes = p.signedZero != 0;
  return r;
}

template <int kRounding>
OCTET_AVX2_INLINE __m256i roundNormal8(__m256i u, const NormalRounding8& r, __m256i key, __m256i weyl, __m256i& ok) {
  const __m256i ax = _mm256_and_si256(u, r.absMask);
  __m256i y = u;
  if (kRounding == kNearest) {
    const __m256i oddOne = _mm256_srlv_epi32(_mm256_and_si256(u, r.lastKeptBit), r.drop);
    y = _mm256_add_epi32(_mm256_add_epi32(u, r.roundBias), oddOne);
  } else if (kRounding == kStochastic) {
    const __m256i draw = mix8(_mm256_xor_si256(mix8(weyl), key));
    y = _mm256_add_epi32(u, _mm256_srlv_epi32(_mm256_xor_si256(draw, _mm256_set1_epi32(-1)), r.stochasticShift));
  }
  const __m256i rounded = _mm256_and_si256(y, r.keepMask);
  const __m256i roundedAbs = _mm256_and_si256(rounded, r.absMask);
  // Finite inputs only: a NaN's payload could carry into the sign bit.
  ok = _mm256_andnot_si256(_mm256_cmpgt_epi32(r.minBits, ax),
                           _mm256_andnot_si256(_mm256_cmpgt_epi32(roundedAbs, r.maxBits), _mm256_cmpgt_epi32(r.infBits, ax)));
  if (r.zeroLanes) ok = _mm256_or_si256(ok, _mm256_cmpeq_epi32(ax, _mm256_setzero_si256()));
  return rounded;
}
#endif

}  // namespace codec_core
}  // namespace octet
