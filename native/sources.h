// Where kernels read operand elements from while packing: float arrays, or one-byte codes decoded
// through a table of their values.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu.h"

namespace octet {

struct FloatSource {
  const float* data;
  float operator()(int64_t at) const { return data[at]; }
};

struct CodeSource {
  const uint8_t* codes;
  const float* lut;
  float operator()(int64_t at) const { return lut[codes[at]]; }
};

#ifdef OCTET_X86
// The values of 16 E5M2 codes: code << 8 is the IEEE binary16 of the same value.
__attribute__((target("avx512f,avx2,f16c"))) inline __m512 decodeE5m2x16(const uint8_t* src) {
  return _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src))), 8));
}

// Decode n E5M2 codes to floats 16 at a time.
__attribute__((target("avx512f,avx2,f16c"))) inline void decodeE5m2Avx512(const uint8_t* src, float* dst, int64_t n) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) _mm512_storeu_ps(dst + j, decodeE5m2x16(src + j));
  if (j < n) {
    // The tail through a zeroed 16-byte buffer and a masked store.
    alignas(16) uint8_t tail[16] = {0};
    std::memcpy(tail, src + j, static_cast<size_t>(n - j));
    _mm512_mask_storeu_ps(dst + j, static_cast<__mmask16>((1u << (n - j)) - 1u), decodeE5m2x16(tail));
  }
}

// The values of 8 E5M2 codes with AVX2 and F16C (the same widening as decodeE5m2x16).
__attribute__((target("avx2,f16c"))) inline __m256 decodeE5m2x8(const uint8_t* src) {
  return _mm256_cvtph_ps(_mm_slli_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src))), 8));
}

// Decode n E5M2 codes to floats 8 at a time.
__attribute__((target("avx2,f16c"))) inline void decodeE5m2Avx2(const uint8_t* src, float* dst, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(dst + j, decodeE5m2x8(src + j));
  if (j < n) {
    alignas(16) uint8_t tail[8] = {0};
    alignas(32) float values[8];
    std::memcpy(tail, src + j, static_cast<size_t>(n - j));
    _mm256_store_ps(values, decodeE5m2x8(tail));
    std::memcpy(dst + j, values, static_cast<size_t>(n - j) * sizeof(float));
  }
}

// Any table of 256 values held in 16 zmm registers, looked up 16 codes at a time: each pair of
// registers is one 32-entry two-source permute (the code's low 5 bits), and the code's top 3 bits
// pick which pair's result a lane keeps. The values move as bits: the table's, NaN payloads
// included.
struct VectorTable {
  __m512 t[16];
};

__attribute__((target("avx512f"))) inline void loadVectorTable(const float* lut, VectorTable& v) {
  for (int q = 0; q < 16; ++q) v.t[q] = _mm512_loadu_ps(lut + 16 * q);
}

__attribute__((target("avx512f"), always_inline)) inline __m512 lookup16(const VectorTable& v, __m512i codes) {
  __m512 r = _mm512_permutex2var_ps(v.t[0], codes, v.t[1]);
  const __m512i high = _mm512_srli_epi32(codes, 5);
#pragma GCC unroll 7
  for (int q = 1; q < 8; ++q) {
    r = _mm512_mask_mov_ps(r, _mm512_cmpeq_epi32_mask(high, _mm512_set1_epi32(q)), _mm512_permutex2var_ps(v.t[2 * q], codes, v.t[2 * q + 1]));
  }
  return r;
}

// width (at most 16) floats at out: the values of the first `valid` codes, then zeros.
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline void lookupRun(const VectorTable& v, const uint8_t* codes, int valid, int width,
                                                                                         float* out) {
  const __mmask16 read = static_cast<__mmask16>((1u << valid) - 1u);
  const __m512 values = _mm512_maskz_mov_ps(read, lookup16(v, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(read, codes))));
  _mm512_mask_storeu_ps(out, static_cast<__mmask16>((1u << width) - 1u), values);
}

// n codes through a table, 16 at a time.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void decodeTableAvx512(const uint8_t* codes, const float* lut, int64_t n, float* out) {
  VectorTable v;
  loadVectorTable(lut, v);
  for (int64_t j = 0; j < n; j += 16) {
    const int count = static_cast<int>(std::min<int64_t>(16, n - j));
    lookupRun(v, codes + j, count, count, out + j);
  }
}

// Whether this CPU has a vector E5M2 decode (AVX2 and F16C; AVX-512 adds the 16-lane one).
inline bool haveHalfConversion() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  }();
  return yes;
}

// Decode n E5M2 codes to floats with the widest vector decode this CPU has (haveHalfConversion()
// must hold).
inline void decodeE5m2(const uint8_t* src, float* dst, int64_t n) {
  if (cpuHasAvx512()) decodeE5m2Avx512(src, dst, n);
  else decodeE5m2Avx2(src, dst, n);
}
#endif

// The largest of (code & 0x7f) over codes [i, n), folded into `worst`.
inline uint8_t maxLowBitsFrom(const uint8_t* codes, int64_t i, int64_t n, uint8_t worst) {
  for (; i < n; ++i) worst = std::max<uint8_t>(worst, codes[i] & 0x7f);
  return worst;
}

#ifdef OCTET_X86
// The same over all n codes, 32 at a time.
OCTET_TARGET_AVX2 inline uint8_t maxLowBitsAvx2(const uint8_t* codes, int64_t n) {
  int64_t i = 0;
  __m256i lanes = _mm256_setzero_si256();
  const __m256i low = _mm256_set1_epi8(0x7f);
  for (; i + 32 <= n; i += 32) lanes = _mm256_max_epu8(lanes, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + i)), low));
  alignas(32) uint8_t part[32];
  _mm256_store_si256(reinterpret_cast<__m256i*>(part), lanes);
  return maxLowBitsFrom(codes, i, n, maxLowBitsFrom(part, 0, 32, 0));
}
#endif

// The largest of (code & 0x7f) over n one-byte codes (0 when n = 0).
inline uint8_t maxLowBits(const uint8_t* codes, int64_t n) {
#ifdef OCTET_X86
  if (cpuHasAvx2()) return maxLowBitsAvx2(codes, n);
#endif
  return maxLowBitsFrom(codes, 0, n, 0);
}

// n one-byte codes to floats: through their table (16 at a time where AVX-512BW is there), or as
// E5M2 by half conversion (the same values).
inline void decodeCodes(const uint8_t* codes, const float* lut, bool e5m2, int64_t n, float* out) {
#ifdef OCTET_X86
  if (e5m2 && haveHalfConversion()) {
    decodeE5m2(codes, out, n);
    return;
  }
  if (cpuHasAvx512() && cpuHasAvx512Bw()) {
    decodeTableAvx512(codes, lut, n, out);
    return;
  }
#endif
  for (int64_t t = 0; t < n; ++t) out[t] = lut[codes[t]];
}

}  // namespace octet
