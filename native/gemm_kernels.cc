#include "gemm_kernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cpu.h"

namespace octet {
namespace gemm_detail {
namespace {

template <int MR, int NR>
inline void storeTile(const float* acc, float* c, int64_t ldc, float alpha, float beta, int mr, int nr) {
  for (int i = 0; i < mr; ++i) {
    float* row = c + i * ldc;
    const float* a = acc + i * NR;
    if (beta == 0.0f) {
      for (int j = 0; j < nr; ++j) row[j] = alpha * a[j];
    } else {
      for (int j = 0; j < nr; ++j) row[j] = alpha * a[j] + beta * row[j];
    }
  }
}

// The starting accumulators of a tile: C itself when accumulating into it (alpha = 1, beta = 1),
// else zero; zero outside the mr x nr corner.
template <int MR, int NR>
inline void loadTile(float* acc, const float* c, int64_t ldc, float alpha, float beta, int mr, int nr) {
  const bool fromC = alpha == 1.0f && beta == 1.0f;
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) acc[i * NR + j] = fromC && i < mr && j < nr ? c[i * ldc + j] : 0.0f;
  }
}

// Store a tile: plain copy when accumulating into C, else alpha * acc + beta * C.
template <int MR, int NR>
inline void finishTile(const float* acc, float* c, int64_t ldc, float alpha, float beta, int mr, int nr) {
  if (alpha == 1.0f && beta == 1.0f) {
    for (int i = 0; i < mr; ++i) {
      for (int j = 0; j < nr; ++j) c[i * ldc + j] = acc[i * NR + j];
    }
  } else {
    storeTile<MR, NR>(acc, c, ldc, alpha, beta, mr, nr);
  }
}

// Portable kernel: plain loops that compilers vectorize for SSE2 or NEON.
constexpr int kPortableMR = 4;
constexpr int kPortableNR = 16;

// kFused: acc = fma(a, b, acc); else acc = fl(acc + fl(a * b)) (the build has contraction off).
template <bool kFused>
void microPortable(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha,
                   float beta, int mr, int nr) {
  float acc[kPortableMR * kPortableNR];
  loadTile<kPortableMR, kPortableNR>(acc, c, ldc, alpha, beta, mr, nr);
  for (int64_t p = 0; p < kc; ++p) {
    const float* a = ap + p * kPortableMR;
    const float* b = bp + p * kPortableNR;
    for (int i = 0; i < kPortableMR; ++i) {
      for (int j = 0; j < kPortableNR; ++j) {
        float& v = acc[i * kPortableNR + j];
        v = kFused ? std::fma(a[i], b[j], v) : v + a[i] * b[j];
      }
    }
  }
  finishTile<kPortableMR, kPortableNR>(acc, c, ldc, alpha, beta, mr, nr);
}

// The block-scaled tile in plain C++ (RunsTile's contract): the portable family (and the
// partial tiles' epilogue of the vector ones).
// outer: the tile's sums, MR x NR; C's mr x nr corner in and out.
template <int MR, int NR>
inline void runsLoad(const RunsTile& t, float* outer) {
  for (int x = 0; x < MR * NR; ++x) outer[x] = 0.0f;
  if (t.first) return;
  for (int i = 0; i < t.mr; ++i) {
    for (int j = 0; j < t.nr; ++j) outer[i * NR + j] = t.c[i * t.ldc + j];
  }
}

template <int MR, int NR>
inline void runsStore(const RunsTile& t, const float* outer) {
  for (int i = 0; i < t.mr; ++i) {
    for (int j = 0; j < t.nr; ++j) t.c[i * t.ldc + j] = outer[i * NR + j];
  }
}

template <int MR, int NR>
inline void runsScalarEpilogue(const float* acc, float* outer, const RunsTile& t, int64_t r) {
  const float* rows = t.rows + r * t.rowStride;
  const float* cols = t.cols + r * t.colStride;
  for (int i = 0; i < t.mr; ++i) {
    for (int j = 0; j < t.nr; ++j) {
      const float p = acc[i * NR + j];
      const float term = t.reciprocal[r] ? (p * rows[i]) * cols[j] : (p / rows[i]) / cols[j];
      outer[i * NR + j] = outer[i * NR + j] + term;
    }
  }
}

// The loops, inlined into each caller so that they compile for its instruction set.
template <int MR, int NR>
__attribute__((always_inline)) inline void runsLoops(const RunsTile& t) {
  const float* ap = t.ap;
  const float* bp = t.bp;
  alignas(32) float acc[MR * NR];
  alignas(32) float outer[MR * NR];
  runsLoad<MR, NR>(t, outer);
  for (int64_t r = 0; r < t.count; ++r) {
    for (int x = 0; x < MR * NR; ++x) acc[x] = 0.0f;
    for (int64_t p = 0; p < t.lengths[r]; ++p) {
      for (int i = 0; i < MR; ++i) {
        const float a = ap[i];
        for (int j = 0; j < NR; ++j) acc[i * NR + j] = std::fma(a, bp[j], acc[i * NR + j]);
      }
      ap += MR;
      bp += NR;
    }
    runsScalarEpilogue<MR, NR>(acc, outer, t, r);
  }
  runsStore<MR, NR>(t, outer);
}

template <int MR, int NR>
void runsPortable(const RunsTile& t) {
  runsLoops<MR, NR>(t);
}

#ifdef OCTET_X86
// A run's products from +0, in registers: one fused multiply-add each, in k order.
template <int MR, int V>
__attribute__((target("avx2,fma"), always_inline)) inline void runProductsAvx2(const float*& ap, const float*& bp, int64_t length, __m256 (&acc)[MR][V]) {
  constexpr int NR = 8 * V;
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[i][v] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < length; ++p) {
    __m256 b[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) b[v] = _mm256_loadu_ps(bp + 8 * v);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(ap + i);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_fmadd_ps(av, b[v], acc[i][v]);
    }
    ap += MR;
    bp += NR;
  }
}

// The block-scaled tile in ymm registers (runsAvx512's steps on 8 lanes): per run MR x V
// accumulators from +0 over the run's products (one fused multiply-add each, in k order), then
// each element's term, (P * row) * col or (P / row) / col, added into the tile's sums; a partial
// tile's terms through runsScalarEpilogue (the same operations). The compiler did not keep
// runsLoops' sums in registers (about 5 GFLOP/s on AMD Zen 3, against 140 for the SGEMM).
template <int MR, int V>
__attribute__((target("avx2,fma"))) void runsAvx2(const RunsTile& t) {
  constexpr int NR = 8 * V;
  const float* ap = t.ap;
  const float* bp = t.bp;
  if (t.mr != MR || t.nr != NR) {
    // A partial tile: its sums in a buffer, the terms through runsScalarEpilogue.
    alignas(32) float spill[MR * NR];
    alignas(32) float outer[MR * NR];
    runsLoad<MR, NR>(t, outer);
    for (int64_t r = 0; r < t.count; ++r) {
      __m256 acc[MR][V];
      runProductsAvx2<MR, V>(ap, bp, t.lengths[r], acc);
      for (int i = 0; i < MR; ++i)
        for (int v = 0; v < V; ++v) _mm256_store_ps(spill + i * NR + 8 * v, acc[i][v]);
      runsScalarEpilogue<MR, NR>(spill, outer, t, r);
    }
    runsStore<MR, NR>(t, outer);
    return;
  }
  // A whole tile: the sums in C itself (in L1 while the runs go by), from +0 where this K block is
  // the first (0 + term, as the contract's c starts at 0: a -0 term gives +0).
  for (int64_t r = 0; r < t.count; ++r) {
    __m256 acc[MR][V];
    runProductsAvx2<MR, V>(ap, bp, t.lengths[r], acc);
    const float* rows = t.rows + r * t.rowStride;
    const float* cols = t.cols + r * t.colStride;
    __m256 sb[V];
    for (int v = 0; v < V; ++v) sb[v] = _mm256_loadu_ps(cols + 8 * v);
    const bool reciprocal = t.reciprocal[r] != 0;
    const bool fresh = t.first && r == 0;
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 sa = _mm256_set1_ps(rows[i]);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        const __m256 term = reciprocal ? _mm256_mul_ps(_mm256_mul_ps(acc[i][v], sa), sb[v]) : _mm256_div_ps(_mm256_div_ps(acc[i][v], sa), sb[v]);
        float* o = t.c + i * t.ldc + 8 * v;
        _mm256_storeu_ps(o, _mm256_add_ps(fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(o), term));
      }
    }
  }
}

template <bool kFused>
__attribute__((target("avx2,fma"), always_inline)) inline __m256 madd256(__m256 a, __m256 b, __m256 c) {
  return kFused ? _mm256_fmadd_ps(a, b, c) : _mm256_add_ps(c, _mm256_mul_ps(a, b));
}

// AVX2 + FMA: 6 rows x 16 columns in 12 ymm accumulators.
template <bool kFused>
__attribute__((target("avx2,fma"))) void microAvx2(int64_t kc, const float* ap, const float* bp, float* c,
                                                    int64_t ldc, float alpha, float beta, int mr, int nr) {
  alignas(32) float acc[6 * 16];
  loadTile<6, 16>(acc, c, ldc, alpha, beta, mr, nr);
  __m256 c00 = _mm256_load_ps(acc + 0), c01 = _mm256_load_ps(acc + 8), c10 = _mm256_load_ps(acc + 16),
         c11 = _mm256_load_ps(acc + 24), c20 = _mm256_load_ps(acc + 32), c21 = _mm256_load_ps(acc + 40),
         c30 = _mm256_load_ps(acc + 48), c31 = _mm256_load_ps(acc + 56), c40 = _mm256_load_ps(acc + 64),
         c41 = _mm256_load_ps(acc + 72), c50 = _mm256_load_ps(acc + 80), c51 = _mm256_load_ps(acc + 88);
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(bp);
    const __m256 b1 = _mm256_load_ps(bp + 8);
    __m256 a;
    a = _mm256_broadcast_ss(ap + 0); c00 = madd256<kFused>(a, b0, c00); c01 = madd256<kFused>(a, b1, c01);
    a = _mm256_broadcast_ss(ap + 1); c10 = madd256<kFused>(a, b0, c10); c11 = madd256<kFused>(a, b1, c11);
    a = _mm256_broadcast_ss(ap + 2); c20 = madd256<kFused>(a, b0, c20); c21 = madd256<kFused>(a, b1, c21);
    a = _mm256_broadcast_ss(ap + 3); c30 = madd256<kFused>(a, b0, c30); c31 = madd256<kFused>(a, b1, c31);
    a = _mm256_broadcast_ss(ap + 4); c40 = madd256<kFused>(a, b0, c40); c41 = madd256<kFused>(a, b1, c41);
    a = _mm256_broadcast_ss(ap + 5); c50 = madd256<kFused>(a, b0, c50); c51 = madd256<kFused>(a, b1, c51);
    ap += 6;
    bp += 16;
  }
  _mm256_store_ps(acc + 0, c00); _mm256_store_ps(acc + 8, c01);
  _mm256_store_ps(acc + 16, c10); _mm256_store_ps(acc + 24, c11);
  _mm256_store_ps(acc + 32, c20); _mm256_store_ps(acc + 40, c21);
  _mm256_store_ps(acc + 48, c30); _mm256_store_ps(acc + 56, c31);
  _mm256_store_ps(acc + 64, c40); _mm256_store_ps(acc + 72, c41);
  _mm256_store_ps(acc + 80, c50); _mm256_store_ps(acc + 88, c51);
  finishTile<6, 16>(acc, c, ldc, alpha, beta, mr, nr);
}

// AVX-512 tiles of MR rows x (16 * V) columns, MR * V <= 24 accumulators, fully unrolled so
// the accumulators live in zmm registers. A(i, p) is at row[i][p * cs]: packed panels have
// cs = MR (rows interleaved), direct rows have cs = 1 and row[i] = a + i * lda.
// Element type of A for a tile: float (packed or direct), or one-byte codes read in place and
// decoded through a table.
template <typename Elem>
struct ARows {
  const Elem* row[24];
  const float* lut;
  float at(int i, int64_t p) const;
};
template <>
inline float ARows<float>::at(int i, int64_t p) const { return row[i][p]; }
template <>
inline float ARows<uint8_t>::at(int i, int64_t p) const { return lut[row[i][p]]; }

// A tile's accumulators at the start: C's values when accumulating into it (alpha = 1,
// beta = 1), else zero; `spill` stages a partial tile.
template <int MR, int V>
__attribute__((target("avx512f"), always_inline)) inline void avx512StartTile(__m512 (&acc)[MR][V], const float* c, int64_t ldc,
                                                                             float alpha, float beta, int mr, int nr, float* spill) {
  constexpr int NR = 16 * V;
  const bool fromC = alpha == 1.0f && beta == 1.0f;
  const bool fullTile = mr == MR && nr == NR;
  if (fromC && !fullTile) loadTile<MR, NR>(spill, c, ldc, alpha, beta, mr, nr);
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      acc[i][v] = !fromC ? _mm512_setzero_ps()
                  : fullTile ? _mm512_loadu_ps(c + i * ldc + 16 * v)
                             : _mm512_load_ps(spill + i * NR + 16 * v);
    }
  }
}

// Store a tile's accumulators: into C as they are when accumulating into it, else alpha * acc +
// beta * C (C not read when beta = 0); the mr x nr corner only.
template <int MR, int V>
__attribute__((target("avx512f"), always_inline)) inline void avx512FinishTile(__m512 (&acc)[MR][V], float* c, int64_t ldc,
                                                                              float alpha, float beta, int mr, int nr, float* spill) {
  constexpr int NR = 16 * V;
  const bool fromC = alpha == 1.0f && beta == 1.0f;
  if (mr == MR && nr == NR) {
    const __m512 va = _mm512_set1_ps(alpha);
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc;
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        const __m512 result = fromC ? acc[i][v]
                              : beta == 0.0f
                                  ? _mm512_mul_ps(va, acc[i][v])
                                  : _mm512_fmadd_ps(vb, _mm512_loadu_ps(out + 16 * v), _mm512_mul_ps(va, acc[i][v]));
        _mm512_storeu_ps(out + 16 * v, result);
      }
    }
    return;
  }
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) _mm512_store_ps(spill + i * NR + 16 * v, acc[i][v]);
  }
  finishTile<MR, NR>(spill, c, ldc, alpha, beta, mr, nr);
}

template <int MR, int V, bool kDirect, typename Elem = float, bool kFused = true>
__attribute__((target("avx512f"))) inline void avx512Tile(int64_t kc, const Elem* a, int64_t lda, const float* lut,
                                                           const float* bp, float* c, int64_t ldc, float alpha,
                                                           float beta, int mr, int nr) {
  constexpr int NR = 16 * V;
  ARows<Elem> row;
  row.lut = lut;
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i) row.row[i] = kDirect ? a + (i < mr ? i : mr - 1) * lda : a + i;
  alignas(64) float spill[MR * NR];
  __m512 acc[MR][V];
  avx512StartTile<MR, V>(acc, c, ldc, alpha, beta, mr, nr, spill);
  for (int64_t p = 0; p < kc; ++p) {
    __m512 b[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) b[v] = _mm512_load_ps(bp + 16 * v);
    _mm_prefetch(reinterpret_cast<const char*>(bp + 8 * NR), _MM_HINT_T0);
    const int64_t at = kDirect ? p : p * MR;
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(row.at(i, at));
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        acc[i][v] = kFused ? _mm512_fmadd_ps(av, b[v], acc[i][v]) : _mm512_add_ps(acc[i][v], _mm512_mul_ps(av, b[v]));
      }
    }
    bp += NR;
  }
  avx512FinishTile<MR, V>(acc, c, ldc, alpha, beta, mr, nr, spill);
}

// The packed-panel tile on bfloat16 pairs (KernelSpec::pairs): ceil(kc / 2) steps of one
// VDPBF16PS per accumulator, A's pair broadcast as a 32-bit word.
template <int MR, int V>
__attribute__((target("avx512f,avx512bf16"))) void pairsAvx512(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                                                              float alpha, float beta, int mr, int nr) {
  constexpr int NR = 16 * V;
  const uint32_t* a = reinterpret_cast<const uint32_t*>(ap);
  const uint32_t* b = reinterpret_cast<const uint32_t*>(bp);
  alignas(64) float spill[MR * NR];
  __m512 acc[MR][V];
  avx512StartTile<MR, V>(acc, c, ldc, alpha, beta, mr, nr, spill);
  const int64_t steps = (kc + 1) / 2;
  for (int64_t q = 0; q < steps; ++q) {
    __m512bh bv[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) bv[v] = (__m512bh)_mm512_load_si512(b + 16 * v);
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[q * MR + i]));
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
    }
    b += NR;
  }
  avx512FinishTile<MR, V>(acc, c, ldc, alpha, beta, mr, nr, spill);
}

// The block-scaled tile (RunsTile) in zmm registers: per run, MR x V accumulators from zero over
// the run's products, then scaled and added into C (in L1 while the tile's runs go by).
// kPairs: the panels hold bfloat16 pairs (KernelSpec::runsPairs): a run of L products is ceil(L / 2)
// steps of one VDPBF16PS per accumulator (every run but K's last has an even length).
// (Both instantiations carry the avx512bf16 target; the float one holds no bfloat16 instruction,
// checked in its disassembly, so it runs on AVX-512 CPUs without BF16 too.)
template <int MR, int V, bool kPairs = false>
__attribute__((target("avx512f,avx512bf16"))) void runsAvx512(const RunsTile& t) {
  constexpr int NR = 16 * V;
  const bool full = t.mr == MR && t.nr == NR;
  alignas(64) float spill[MR * NR];
  alignas(64) float outer[MR * NR];
  if (full && !t.first) {
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) _mm512_store_ps(outer + i * NR + 16 * v, _mm512_loadu_ps(t.c + i * t.ldc + 16 * v));
    }
  } else {
    runsLoad<MR, NR>(t, outer);
  }
  const float* ap = t.ap;
  const float* bp = t.bp;
  for (int64_t r = 0; r < t.count; ++r) {
    __m512 acc[MR][V];
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
    }
    const int64_t length = t.lengths[r];
    if (kPairs) {
      for (int64_t p = 0; p < (length + 1) / 2; ++p) {
        __m512bh b[V];
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) b[v] = (__m512bh)_mm512_load_si512(bp + 16 * v);
        _mm_prefetch(reinterpret_cast<const char*>(bp + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 24
        for (int i = 0; i < MR; ++i) {
          const __m512bh av = (__m512bh)_mm512_set1_epi32(reinterpret_cast<const int32_t*>(ap)[i]);
#pragma GCC unroll 2
          for (int v = 0; v < V; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, b[v]);
        }
        ap += MR;
        bp += NR;
      }
    } else {
      for (int64_t p = 0; p < length; ++p) {
        __m512 b[V];
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) b[v] = _mm512_load_ps(bp + 16 * v);
        _mm_prefetch(reinterpret_cast<const char*>(bp + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 24
        for (int i = 0; i < MR; ++i) {
          const __m512 av = _mm512_set1_ps(ap[i]);
#pragma GCC unroll 2
          for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(av, b[v], acc[i][v]);
        }
        ap += MR;
        bp += NR;
      }
    }
    if (!full) {
#pragma GCC unroll 24
      for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) _mm512_store_ps(spill + i * NR + 16 * v, acc[i][v]);
      }
      runsScalarEpilogue<MR, NR>(spill, outer, t, r);
      continue;
    }
    const float* rows = t.rows + r * t.rowStride;
    const float* cols = t.cols + r * t.colStride;
    __m512 sb[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) sb[v] = _mm512_loadu_ps(cols + 16 * v);
    const bool reciprocal = t.reciprocal[r] != 0;
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) {
      const __m512 sa = _mm512_set1_ps(rows[i]);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        const __m512 term = reciprocal ? _mm512_mul_ps(_mm512_mul_ps(acc[i][v], sa), sb[v]) : _mm512_div_ps(_mm512_div_ps(acc[i][v], sa), sb[v]);
        float* o = outer + i * NR + 16 * v;
        _mm512_store_ps(o, _mm512_add_ps(_mm512_load_ps(o), term));
      }
    }
  }
  if (full) {
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) _mm512_storeu_ps(t.c + i * t.ldc + 16 * v, _mm512_load_ps(outer + i * NR + 16 * v));
    }
  } else {
    runsStore<MR, NR>(t, outer);
  }
}

template <int MR, int V, bool kFused = true>
__attribute__((target("avx512f"))) void microAvx512(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                                                     float alpha, float beta, int mr, int nr) {
  avx512Tile<MR, V, false, float, kFused>(kc, ap, 0, nullptr, bp, c, ldc, alpha, beta, mr, nr);
}

template <int MR, int V, bool kFused = true>
__attribute__((target("avx512f"))) void directAvx512(int64_t kc, const float* a, int64_t lda, const float* bp, float* c,
                                                      int64_t ldc, float alpha, float beta, int mr, int nr) {
  avx512Tile<MR, V, true, float, kFused>(kc, a, lda, nullptr, bp, c, ldc, alpha, beta, mr, nr);
}

template <int MR, int V, bool kFused = true>
__attribute__((target("avx512f"))) void directCodedAvx512(int64_t kc, const uint8_t* a, int64_t lda, const float* lut,
                                                           const float* bp, float* c, int64_t ldc, float alpha,
                                                           float beta, int mr, int nr) {
  avx512Tile<MR, V, true, uint8_t, kFused>(kc, a, lda, lut, bp, c, ldc, alpha, beta, mr, nr);
}

// A tile shape's kernels, fused and unfused.
template <int MR, int V>
KernelSpec avx512Spec() {
  KernelSpec ks{"avx512", MR, 16 * V, 1536, 384, 512, microAvx512<MR, V>, directAvx512<MR, V>, directCodedAvx512<MR, V>};
  ks.unfused = {microAvx512<MR, V, false>, directAvx512<MR, V, false>, directCodedAvx512<MR, V, false>};
  ks.pairs = pairsAvx512<MR, V>;
  ks.runs = runsAvx512<MR, V>;
  ks.runsPairs = runsAvx512<MR, V, true>;
  return ks;
}

// Instructions per second of 12 independent chains of `steps` VDPBF16PS (kPairs) or VFMADD, the
// best of three runs (the machine may be busy).
template <bool kPairs>
__attribute__((target("avx512f,avx512bf16"), noinline)) double chainRate(int64_t steps) {
  double best = 0.0;
  for (int run = 0; run < 3; ++run) {
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_setzero_ps();
    __m512 x = _mm512_set1_ps(1.0f / 64);
    const auto start = std::chrono::steady_clock::now();
    for (int64_t s = 0; s < steps; ++s) {
#pragma GCC unroll 12
      for (int i = 0; i < 12; ++i) {
        acc[i] = kPairs ? _mm512_dpbf16_ps(acc[i], (__m512bh)x, (__m512bh)x) : _mm512_fmadd_ps(x, x, acc[i]);
      }
      __asm__ volatile("" : "+v"(x));
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    float sink = 0.0f;
    for (int i = 0; i < 12; ++i) sink += _mm512_reduce_add_ps(acc[i]);
    __asm__ volatile("" : : "x"(sink));
    if (seconds > 0) best = std::max(best, 12.0 * static_cast<double>(steps) / seconds);
  }
  return best;
}
#endif

// The kernels this CPU can run: one family, with one or more tile shapes.
struct KernelFamily {
  const char* name;
  std::vector<KernelSpec> variants;  // avx512: 12x32, 8x32, 24x16
};

KernelFamily chooseFamily() {
  const char* forced = std::getenv("OCTET_GEMM_KERNEL");
  const std::string want = forced ? forced : "";
#ifdef OCTET_X86
  __builtin_cpu_init();
  if ((want.empty() || want == "avx512") && __builtin_cpu_supports("avx512f")) {
    return {"avx512", {avx512Spec<12, 2>(), avx512Spec<8, 2>(), avx512Spec<24, 1>()}};
  }
  if ((want.empty() || want == "avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    KernelSpec ks{"avx2", 6, 16, 1536, 256, 512, microAvx2<true>, nullptr, nullptr};
    ks.unfused = {microAvx2<false>, nullptr, nullptr};
    ks.runs = runsAvx2<6, 2>;
    return {"avx2", {ks}};
  }
#endif
  KernelSpec ks{"portable", kPortableMR, kPortableNR, 512, 256, 512, microPortable<true>, nullptr, nullptr};
  ks.unfused = {microPortable<false>, nullptr, nullptr};
  ks.runs = runsPortable<kPortableMR, kPortableNR>;
  return {"portable", {ks}};
}

// The kernel family for this CPU. OCTET_GEMM_KERNEL=avx2|portable forces a simpler one (for
// testing every path on one machine); OCTET_GEMM_BLOCKS=mc,kc,nc overrides the cache blocking.
const KernelFamily& family() {
  static const KernelFamily chosen = [] {
    KernelFamily f = chooseFamily();
    if (const char* blocks = std::getenv("OCTET_GEMM_BLOCKS")) {
      long mc = 0, kc = 0, nc = 0;
      if (std::sscanf(blocks, "%ld,%ld,%ld", &mc, &kc, &nc) == 3 && mc >= 24 && kc > 0 && nc >= 32) {
        for (KernelSpec& ks : f.variants) {
          ks.mc = mc / ks.mr * ks.mr;
          ks.kc = kc;
          ks.nc = nc / ks.nr * ks.nr;
        }
      }
    }
    return f;
  }();
  return chosen;
}

}  // namespace

// The tile shape that wastes least on the edges of an m x n result: 16-column tiles when C has
// at most 16 columns, 8-row tiles when m fits them much better than 12-row ones. Every shape
// sums each element in the same order, so the choice never changes results.
const KernelSpec& selectKernel(int64_t m, int64_t n) {
  const KernelFamily& f = family();
  if (f.variants.size() == 1) return f.variants[0];
  if (n <= 16) return f.variants[2];
  auto fill = [m](int mr) { return static_cast<double>(m) / (static_cast<double>((m + mr - 1) / mr) * mr); };
  return fill(8) > fill(12) + 0.02 ? f.variants[1] : f.variants[0];
}

const char* familyName() { return family().name; }

bool bf16PairsEnabled() {
  static const bool enabled = [] {
    const char* forced = std::getenv("OCTET_BF16_PAIRS");
    const std::string want = forced ? forced : "";
    if (want == "off" || std::string(family().name) != "avx512") return false;
#ifdef OCTET_X86
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) return false;
    if (want == "on") return true;
    // About 0.1 ms each: VDPBF16PS does two multiply-adds per lane, so at 0.65 of VFMADD's
    // instruction rate it does 1.3 times the work per second.
    return chainRate<true>(20000) >= 0.65 * chainRate<false>(20000);
#else
    return false;
#endif
  }();
  return enabled;
}

}  // namespace gemm_detail
}  // namespace octet
