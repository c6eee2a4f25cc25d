// The tiles of the emulated-accumulation GEMM, as lowp_gemm.cc (the driver and the scalar tile),
// lowp_gemm_avx512.cc and lowp_gemm_avx2.cc share them. A tile is up to kRows rows of C by one
// strip of kLanes columns: it reads its rows of op(A) from rows0 (row i0 first, row stride k) and
// column strip s of op(B) from strip (k rows of kLanes, zero past n).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "codec.h"
#include "codec_core.h"
#include "cpu.h"
#include "lowp_gemm.h"

namespace octet {
namespace lowp {

constexpr int kRows = 12;
constexpr int kLanes = 16;

// Key of the stochastic stream of C element (i, j) (cellKey in src/formats/random.ts).
inline uint32_t cellKey(uint32_t key, uint32_t i, uint32_t j) {
  return codec_core::mix32(codec_core::mix32(key ^ (i * 0x85ebca6bu)) ^ (j * 0xc2b2ae35u));
}

// The keys of cells (i, j0), (i, j0 + 1), ... (i, j0 + lanes - 1).
inline void cellKeys(uint32_t key, int64_t i, int64_t j0, int lanes, uint32_t* out) {
  for (int l = 0; l < lanes; ++l) out[l] = cellKey(key, static_cast<uint32_t>(i), static_cast<uint32_t>(j0 + l));
}

// Where the fast paths' rounding to the accumulator's format F equals the codec's: F's normal
// range. Rounded values are tracked as |r| - 1 in float32 bits (zero wraps to 0xffffffff, ignored
// by both checks): below F's smallest normal, minBits - 1 (unsigned); above its largest finite
// value (or Inf/NaN), maxBits - 1 (signed). drop: the float32 significand bits F drops.
struct FastRange {
  int drop;
  float splitter;  // 2^drop: Veltkamp splitting's multiplier
  uint32_t minBitsLess1, maxBitsLess1;
  uint32_t keepMask;  // the bits F keeps
};

inline FastRange fastRangeOf(const CodecParams& p) {
  const int drop = 23 - p.mantissaBits;
  const uint32_t minBits = static_cast<uint32_t>(p.emin + 127) << 23;
  const uint32_t maxBits = (static_cast<uint32_t>(p.maxBiasedExponent - p.bias + 127) << 23) |
                           (static_cast<uint32_t>(p.maxMantissaAtTop) << drop);
  return {drop, std::ldexp(1.0f, drop), minBits - 1, maxBits - 1, ~((1u << drop) - 1u)};
}

// A tile on a fast path: false, with nothing stored, where a value left the fast rounding's range
// (the caller then computes the tile exactly).
using FastTile = bool (*)(const LowpGemmArgs& g, const FastRange& range, const float* strip, const float* rows0, int64_t i0, int64_t s);

#ifdef OCTET_X86
// Whether the vector tiles may run: the CPU has the instructions and OCTET_CODEC_KERNEL does not
// ask for a simpler path.
inline bool avx512Tiles() {
  static const bool yes = [] {
    const char* forced = std::getenv("OCTET_CODEC_KERNEL");
    return cpuHasAvx512() && !(forced && std::string(forced) != "avx512");
  }();
  return yes;
}

inline bool avx2Tiles() {
  static const bool yes = [] {
    __builtin_cpu_init();
    const char* forced = std::getenv("OCTET_CODEC_KERNEL");
    return cpuHasAvx2() && __builtin_cpu_supports("fma") && !(forced && std::string(forced) == "portable");
  }();
  return yes;
}

// lowp_gemm_avx512.cc: the fast tile for these settings (fma: products exact in float32, so
// fused; unchecked: the caller showed no value can leave the fast range), and the exact tile on 16
// lanes (the codec's rounding and a table lookup per addition).
FastTile avx512FastTile(bool stochastic, bool fma, bool unchecked);
void avx512ExactTile(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s);

// lowp_gemm_avx2.cc: the fast tile on 8 lanes, for CPUs without AVX-512 (inexact tiles run in
// scalar code).
FastTile avx2FastTile(bool stochastic, bool fma, bool unchecked);
#endif

}  // namespace lowp
}  // namespace octet
