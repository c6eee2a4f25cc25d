// AVX-512 intrinsics in portable code, for checking Octet's AVX-512 kernels on a CPU without
// AVX-512 (scripts/avx512_emulated/run.sh). SIMDe (Debian's libsimde-dev) supplies most of them;
// the few its version lacks are written here lane by lane, with the instruction's exact semantics
// (the rounding-mode variants round toward zero exactly, whatever MXCSR says).
#pragma once
#include <immintrin.h>
#include <simde/x86/avx512.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace octet_emulated {

template <class V, class T>
inline void lanesOf(const V& v, T* out) {
  static_assert(sizeof(V) == 64, "a 512-bit vector");
  std::memcpy(out, &v, 64);
}
template <class V, class T>
inline V vectorOf(const T* in) {
  V v;
  std::memcpy(&v, in, 64);
  return v;
}

// x + err (err the exact error of the double sum x: |err| <= half an ulp of x) truncated toward
// zero to float.
inline float truncated(double x, double err) {
  if (x == 0.0) return static_cast<float>(x);
  float f = static_cast<float>(x);  // nearest
  if (std::fabs(static_cast<double>(f)) > std::fabs(x)) f = std::nextafter(f, 0.0f);
  // x itself a float: the exact value lies below it in magnitude where err points toward zero.
  if (static_cast<double>(f) == x && err != 0.0 && (err < 0.0) != (x < 0.0)) f = std::nextafter(f, 0.0f);
  return f;
}

// a + b exactly as a double pair (TwoSum).
inline double twoSum(double a, double b, double& err) {
  const double s = a + b;
  const double bb = s - a;
  err = (a - (s - bb)) + (b - bb);
  return s;
}

inline float addTowardZero(float a, float b) {
  double err;
  const double s = twoSum(a, b, err);
  return truncated(s, err);
}

// fma(a, b, c) toward zero: a b is exact in a double (24 + 24 bits).
inline float fmaTowardZero(float a, float b, float c) {
  double err;
  const double s = twoSum(static_cast<double>(a) * static_cast<double>(b), c, err);
  return truncated(s, err);
}

inline void requireTowardZero(int rounding) {
  if ((rounding & 3) != _MM_FROUND_TO_ZERO) __builtin_trap();  // the kernels use no other mode
}

}  // namespace octet_emulated

inline simde__m512 simde_mm512_fmadd_round_ps(simde__m512 a, simde__m512 b, simde__m512 c, int rounding) {
  octet_emulated::requireTowardZero(rounding);
  float x[16], y[16], z[16];
  octet_emulated::lanesOf(a, x);
  octet_emulated::lanesOf(b, y);
  octet_emulated::lanesOf(c, z);
  for (int l = 0; l < 16; ++l) z[l] = octet_emulated::fmaTowardZero(x[l], y[l], z[l]);
  return octet_emulated::vectorOf<simde__m512>(z);
}

inline simde__m512 simde_mm512_add_round_ps(simde__m512 a, simde__m512 b, int rounding) {
  octet_emulated::requireTowardZero(rounding);
  float x[16], y[16];
  octet_emulated::lanesOf(a, x);
  octet_emulated::lanesOf(b, y);
  for (int l = 0; l < 16; ++l) x[l] = octet_emulated::addTowardZero(x[l], y[l]);
  return octet_emulated::vectorOf<simde__m512>(x);
}

inline simde__m512 simde_mm512_mask_add_round_ps(simde__m512 src, simde__mmask16 k, simde__m512 a, simde__m512 b, int rounding) {
  const simde__m512 sum = simde_mm512_add_round_ps(a, b, rounding);
  float s[16], r[16];
  octet_emulated::lanesOf(src, s);
  octet_emulated::lanesOf(sum, r);
  for (int l = 0; l < 16; ++l)
    if (!((k >> l) & 1)) r[l] = s[l];
  return octet_emulated::vectorOf<simde__m512>(r);
}

inline simde__m512 simde_mm512_getexp_ps(simde__m512 a) {
  float x[16];
  octet_emulated::lanesOf(a, x);
  for (int l = 0; l < 16; ++l) x[l] = std::isnan(x[l]) ? x[l] : std::logb(x[l]);  // logb(+-0) = -inf, logb(+-inf) = +inf
  return octet_emulated::vectorOf<simde__m512>(x);
}

// Truncating conversion: NaN and values out of int32's range give INT32_MIN (the "integer indefinite").
inline simde__m512i simde_mm512_cvttps_epi32(simde__m512 a) {
  float x[16];
  int32_t r[16];
  octet_emulated::lanesOf(a, x);
  for (int l = 0; l < 16; ++l) r[l] = std::isnan(x[l]) || x[l] >= 2147483648.0f || x[l] < -2147483648.0f ? INT32_MIN : static_cast<int32_t>(x[l]);
  return octet_emulated::vectorOf<simde__m512i>(r);
}

inline simde__m512 simde_mm512_cvtepi32_ps(simde__m512i a) {
  int32_t x[16];
  float r[16];
  octet_emulated::lanesOf(a, x);
  for (int l = 0; l < 16; ++l) r[l] = static_cast<float>(x[l]);  // nearest (MXCSR's default)
  return octet_emulated::vectorOf<simde__m512>(r);
}

namespace octet_emulated {
// 16 bytes widened to int32 lanes, signed or not by T.
template <class T>
inline simde__m512i widened(simde__m128i a) {
  T x[16];
  int32_t r[16];
  std::memcpy(x, &a, 16);
  for (int l = 0; l < 16; ++l) r[l] = x[l];
  return vectorOf<simde__m512i>(r);
}
}  // namespace octet_emulated

inline simde__m512i simde_mm512_cvtepi8_epi32(simde__m128i a) { return octet_emulated::widened<int8_t>(a); }

inline simde__mmask16 simde_mm512_cmplt_epi32_mask(simde__m512i a, simde__m512i b) {
  int32_t x[16], y[16];
  octet_emulated::lanesOf(a, x);
  octet_emulated::lanesOf(b, y);
  simde__mmask16 k = 0;
  for (int l = 0; l < 16; ++l) k |= static_cast<simde__mmask16>((x[l] < y[l] ? 1u : 0u) << l);
  return k;
}

inline simde__m512 simde_mm512_mask_loadu_ps(simde__m512 src, simde__mmask16 k, const void* p) {
  float r[16];
  octet_emulated::lanesOf(src, r);
  const float* f = static_cast<const float*>(p);
  for (int l = 0; l < 16; ++l)
    if ((k >> l) & 1) r[l] = f[l];  // masked-off lanes are not read
  return octet_emulated::vectorOf<simde__m512>(r);
}

inline simde__m512i simde_mm512_cvtepu8_epi32(simde__m128i a) { return octet_emulated::widened<uint8_t>(a); }

// Truncation to the low byte of each lane (no saturation).
inline simde__m128i simde_mm512_cvtepi32_epi8(simde__m512i a) {
  int32_t x[16];
  uint8_t r[16];
  octet_emulated::lanesOf(a, x);
  for (int l = 0; l < 16; ++l) r[l] = static_cast<uint8_t>(x[l]);
  simde__m128i out;
  std::memcpy(&out, r, 16);
  return out;
}

inline simde__m512 simde_mm512_i32gather_ps(simde__m512i index, const void* base, int scale) {
  int32_t x[16];
  float r[16];
  octet_emulated::lanesOf(index, x);
  for (int l = 0; l < 16; ++l) std::memcpy(&r[l], static_cast<const char*>(base) + static_cast<int64_t>(x[l]) * scale, 4);
  return octet_emulated::vectorOf<simde__m512>(r);
}

inline simde__m512i simde_mm512_i32gather_epi32(simde__m512i index, const void* base, int scale) {
  int32_t x[16], r[16];
  octet_emulated::lanesOf(index, x);
  for (int l = 0; l < 16; ++l) std::memcpy(&r[l], static_cast<const char*>(base) + static_cast<int64_t>(x[l]) * scale, 4);
  return octet_emulated::vectorOf<simde__m512i>(r);
}
