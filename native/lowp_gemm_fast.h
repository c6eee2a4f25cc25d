// The fast tile of the emulated-accumulation GEMM, for any vector width: rows of C by a strip's
// lanes, every addition rounded to the accumulator's format by Veltkamp splitting (nearest) or on
// the float32 bits (stochastic), which equals the codec wherever sums and results stay in the
// format's normal range; any value that leaves it (or reaches Inf/NaN) makes the tile report
// failure, and the caller recomputes it exactly.
//
// Nearest rounding of normal values by Veltkamp splitting: with c = fl(s * (2^d + 1)) (one fused
// multiply-add) and hi = c - (c - s), hi is s rounded to nearest, ties to even, to 24 - d
// significant bits, for every normal float32 s with s * 2^d finite (checked exhaustively: every d
// from 1 to 22 over four binades, the result being invariant under scaling by powers of two, and
// d = 13, 14, 16 over binades 2^-60 to 2^60). Zeros stay zeros.
// Stochastic rounding on the bits, as the codec's vector path does: the draw of element (i, j)
// for addition t is mix(mix(t * golden + key) ^ key) with key = the cell's key; (~draw) >>
// (32 - d) carries into the kept bits exactly when draw < floor(fraction * 2^32).
//
// Only templates: included by lowp_gemm_avx512.cc and lowp_gemm_avx2.cc after their
// `#pragma GCC target`, so that they compile for that instruction set (see lowp_gemm_order.h). V
// is the file's vector type: Float and Int (GCC vector types, whose +, *, casts and zero
// initialization are the plain IEEE operations; the build has -ffp-contract=off, so a * b + c is
// never fused), Constants, broadcast, fma, weyl(t), round (nearest), roundBits (stochastic),
// track and inRange.
#pragma once
#include <cstdint>

#include "lowp_gemm_order.h"
#include "lowp_gemm_tiles.h"

namespace octet {
namespace lowp {

template <class Vector>
__attribute__((always_inline)) inline Vector loadVector(const float* p) {
  Vector v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

// One rounded addition's result, tracking |r| - 1 of the rounded bits for the range check.
template <class V, bool kStochastic, bool kCheck>
__attribute__((always_inline)) inline typename V::Float roundStep(typename V::Float sum, typename V::Int key, typename V::Int weylStep,
                                                                 const typename V::Constants& f, typename V::Int& worstHigh,
                                                                 typename V::Int& worstLow) {
  const typename V::Int bits = kStochastic ? V::roundBits(sum, key, weylStep, f) : (typename V::Int)V::round(sum, f);
  if (kCheck) V::track(bits, f, worstHigh, worstLow);
  return (typename V::Float)bits;
}

// Rows arow[0 .. kR) of op(A) times the strip's lanes (row stride kLanes), summed in the
// contract's order into acc. Returns false when a value left the fast range (kCheck).
template <class V, int kR, bool kFma, bool kCheck, bool kStochastic>
__attribute__((always_inline)) inline bool fastRows(const LowpGemmArgs& g, const typename V::Constants& f, const float* const (&arow)[kR],
                                                    const float* strip, const typename V::Int (&keys)[kR], typename V::Float (&acc)[kR]) {
  using Float = typename V::Float;
  typename V::Int worstHigh = ~typename V::Int{}, worstLow = ~typename V::Int{};
  sumInContractOrder(
      g, acc,
      [](Float(&sums)[kR]) __attribute__((always_inline)) {
#pragma GCC unroll 16
        for (int r = 0; r < kR; ++r) sums[r] = Float{};
      },
      [&](Float(&sums)[kR], int64_t t0, int64_t t1) __attribute__((always_inline)) {
        for (int64_t t = t0; t < t1; ++t) {
          const Float b = loadVector<Float>(strip + t * kLanes);
          const typename V::Int weylStep = kStochastic ? V::weyl(static_cast<uint64_t>(t)) : typename V::Int{};
#pragma GCC unroll 16
          for (int r = 0; r < kR; ++r) {
            const Float a = V::broadcast(arow[r] + t);
            const Float sum = kFma ? V::fma(a, b, sums[r]) : sums[r] + a * b;
            sums[r] = roundStep<V, kStochastic, kCheck>(sum, keys[r], weylStep, f, worstHigh, worstLow);
          }
        }
      },
      [&](Float(&total)[kR], Float(&partial)[kR], int64_t run) __attribute__((always_inline)) {
        const typename V::Int weylStep = kStochastic ? V::weyl(static_cast<uint64_t>(g.k + run)) : typename V::Int{};
#pragma GCC unroll 16
        for (int r = 0; r < kR; ++r) total[r] = roundStep<V, kStochastic, kCheck>(total[r] + partial[r], keys[r], weylStep, f, worstHigh, worstLow);
      });
  return !kCheck || V::inRange(worstHigh, worstLow, f);
}

// The fast tiles of one vector type, by (stochastic, fma, unchecked).
template <template <bool, bool, bool> class Tile>
FastTile pickFastTile(bool stochastic, bool fma, bool unchecked) {
  static constexpr FastTile kTiles[2][2][2] = {
      {{Tile<false, true, false>::run, Tile<false, false, false>::run}, {Tile<true, true, false>::run, Tile<true, false, false>::run}},
      {{Tile<false, true, true>::run, Tile<false, false, true>::run}, {Tile<true, true, true>::run, Tile<true, false, true>::run}},
  };
  return kTiles[stochastic][fma][unchecked];
}

}  // namespace lowp
}  // namespace octet
