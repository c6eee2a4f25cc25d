#include "gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "parallel.h"
#include "sources.h"

#include "cpu.h"

namespace octet {
namespace {

// Micro-kernel contract, for i < mr, j < nr (a partial tile at the edges of C):
// - alpha = 1 and beta = 1: acc = c[i*ldc + j], then acc = fma(a(i,p), b(p,j), acc) for p in
//   [0, kc) in order, and c = acc. So a product of k > kc runs as one chain of fused
//   multiply-adds in k order, whatever the blocking (the low-precision GEMM relies on it).
// - otherwise: acc = 0, the same chain, then c = alpha * acc + beta * c (c not read when
//   beta == 0).
using MicroKernel = void (*)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                             float alpha, float beta, int mr, int nr);

struct KernelSpec {
  const char* name;
  int mr, nr;
  int64_t mc, kc, nc;  // cache blocking: A micro-panel MR x kc in L1, B block kc x nc in L2, A block mc x kc in L3
  MicroKernel micro;
  // Optional: the same kernel reading op(A) straight from row-major memory (row i at
  // a + i * lda, k contiguous), used when a packed A panel would be reused too little to pay
  // for its packing. Rows at or past mr repeat row mr-1 and are not stored.
  void (*direct)(int64_t kc, const float* a, int64_t lda, const float* bp, float* c, int64_t ldc, float alpha,
                 float beta, int mr, int nr);
  // Optional: direct, with A as one-byte codes decoded through a table.
  void (*directCoded)(int64_t kc, const uint8_t* a, int64_t lda, const float* lut, const float* bp, float* c,
                      int64_t ldc, float alpha, float beta, int mr, int nr);
};

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

void microPortable(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha,
                   float beta, int mr, int nr) {
  float acc[kPortableMR * kPortableNR];
  loadTile<kPortableMR, kPortableNR>(acc, c, ldc, alpha, beta, mr, nr);
  for (int64_t p = 0; p < kc; ++p) {
    const float* a = ap + p * kPortableMR;
    const float* b = bp + p * kPortableNR;
    for (int i = 0; i < kPortableMR; ++i) {
      for (int j = 0; j < kPortableNR; ++j) acc[i * kPortableNR + j] = std::fma(a[i], b[j], acc[i * kPortableNR + j]);
    }
  }
  finishTile<kPortableMR, kPortableNR>(acc, c, ldc, alpha, beta, mr, nr);
}

#ifdef OCTET_X86
// AVX2 + FMA: 6 rows x 16 columns in 12 ymm accumulators.
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
    a = _mm256_broadcast_ss(ap + 0); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(ap + 1); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(ap + 2); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(ap + 3); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(ap + 4); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(ap + 5); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
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

template <int MR, int V, bool kDirect, typename Elem = float>
__attribute__((target("avx512f"))) inline void avx512Tile(int64_t kc, const Elem* a, int64_t lda, const float* lut,
                                                           const float* bp, float* c, int64_t ldc, float alpha,
                                                           float beta, int mr, int nr) {
  constexpr int NR = 16 * V;
  ARows<Elem> row;
  row.lut = lut;
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i) row.row[i] = kDirect ? a + (i < mr ? i : mr - 1) * lda : a + i;
  const bool fromC = alpha == 1.0f && beta == 1.0f;
  const bool fullTile = mr == MR && nr == NR;
  alignas(64) float spill[MR * NR];
  if (fromC && !fullTile) loadTile<MR, NR>(spill, c, ldc, alpha, beta, mr, nr);
  __m512 acc[MR][V];
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      acc[i][v] = !fromC ? _mm512_setzero_ps()
                  : fullTile ? _mm512_loadu_ps(c + i * ldc + 16 * v)
                             : _mm512_load_ps(spill + i * NR + 16 * v);
    }
  }
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
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(av, b[v], acc[i][v]);
    }
    bp += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (fullTile) {
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

template <int MR, int V>
__attribute__((target("avx512f"))) void microAvx512(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                                                     float alpha, float beta, int mr, int nr) {
  avx512Tile<MR, V, false>(kc, ap, 0, nullptr, bp, c, ldc, alpha, beta, mr, nr);
}

template <int MR, int V>
__attribute__((target("avx512f"))) void directAvx512(int64_t kc, const float* a, int64_t lda, const float* bp, float* c,
                                                      int64_t ldc, float alpha, float beta, int mr, int nr) {
  avx512Tile<MR, V, true>(kc, a, lda, nullptr, bp, c, ldc, alpha, beta, mr, nr);
}

template <int MR, int V>
__attribute__((target("avx512f"))) void directCodedAvx512(int64_t kc, const uint8_t* a, int64_t lda, const float* lut,
                                                           const float* bp, float* c, int64_t ldc, float alpha,
                                                           float beta, int mr, int nr) {
  avx512Tile<MR, V, true, uint8_t>(kc, a, lda, lut, bp, c, ldc, alpha, beta, mr, nr);
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
    return {"avx512",
            {KernelSpec{"avx512", 12, 32, 1536, 384, 512, microAvx512<12, 2>, directAvx512<12, 2>, directCodedAvx512<12, 2>},
             KernelSpec{"avx512", 8, 32, 1536, 384, 512, microAvx512<8, 2>, directAvx512<8, 2>, directCodedAvx512<8, 2>},
             KernelSpec{"avx512", 24, 16, 1536, 384, 512, microAvx512<24, 1>, directAvx512<24, 1>, directCodedAvx512<24, 1>}}};
  }
  if ((want.empty() || want == "avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return {"avx2", {KernelSpec{"avx2", 6, 16, 1536, 256, 512, microAvx2, nullptr, nullptr}}};
  }
#endif
  return {"portable", {KernelSpec{"portable", kPortableMR, kPortableNR, 512, 256, 512, microPortable, nullptr, nullptr}}};
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

// Aligned scratch for packed panels, one set per thread, grown as needed and reused.
struct PackBuffers {
  float* a = nullptr;
  float* b = nullptr;
  size_t aSize = 0, bSize = 0;
  ~PackBuffers() {
    std::free(a);
    std::free(b);
  }
  static float* grow(float*& p, size_t& size, size_t want) {
    if (want > size) {
      std::free(p);
      size_t bytes = ((want * sizeof(float) + 63) / 64) * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      size = want;
    }
    return p;
  }
};

thread_local PackBuffers tlsPack;

// Decode n E5M2 codes to floats: code << 8 is the IEEE binary16 of the same value.
#ifdef OCTET_X86
__attribute__((target("avx512f,avx2,f16c"))) void decodeE5m2Wide(const uint8_t* src, float* dst, int64_t n) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256i halves = _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j))), 8);
    _mm512_storeu_ps(dst + j, _mm512_cvtph_ps(halves));
  }
  for (; j < n; ++j) dst[j] = _cvtsh_ss(static_cast<unsigned short>(src[j] << 8));
}

bool haveWideHalfConversion() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("f16c");
  }();
  return yes;
}
#endif

// bp[panel][p][j] = op(B)(pc + p, jc + panel*NR + j), zero past n.
template <typename Source>
void packBFrom(const GemmArgs& g, const KernelSpec& ks, Source src, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float* bp) {
  const int nr = ks.nr;
  for (int64_t j0 = 0; j0 < nc; j0 += nr) {
    const int64_t width = std::min<int64_t>(nr, nc - j0);
    float* dst = bp + (j0 / nr) * kc * nr;
    for (int64_t p = 0; p < kc; ++p) {
      float* d = dst + p * nr;
      int64_t j = 0;
      if (!g.transB) {
        const int64_t row = (pc + p) * g.ldb + jc + j0;
        for (; j < width; ++j) d[j] = src(row + j);
      } else {
        for (; j < width; ++j) d[j] = src((jc + j0 + j) * g.ldb + pc + p);
      }
      for (; j < nr; ++j) d[j] = 0.0f;
    }
  }
}

void packB(const GemmArgs& g, const KernelSpec& ks, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float* bp) {
#ifdef OCTET_X86
  if (g.bCodes && g.bIsE5M2 && !g.transB && haveWideHalfConversion()) {
    const int nr = ks.nr;
    for (int64_t j0 = 0; j0 < nc; j0 += nr) {
      const int64_t width = std::min<int64_t>(nr, nc - j0);
      float* dst = bp + (j0 / nr) * kc * nr;
      for (int64_t p = 0; p < kc; ++p) {
        float* d = dst + p * nr;
        decodeE5m2Wide(g.bCodes + (pc + p) * g.ldb + jc + j0, d, width);
        for (int64_t j = width; j < nr; ++j) d[j] = 0.0f;
      }
    }
    return;
  }
#endif
  if (g.bCodes) packBFrom(g, ks, CodeSource{g.bCodes, g.bLut}, pc, kc, jc, nc, bp);
  else packBFrom(g, ks, FloatSource{g.b}, pc, kc, jc, nc, bp);
}

// ap[panel][p][i] = op(A)(ic + panel*MR + i, pc + p), zero past m.
template <typename Source>
void packAFrom(const GemmArgs& g, const KernelSpec& ks, Source src, int64_t ic, int64_t mc, int64_t pc, int64_t kc, float* ap) {
  const int mr = ks.mr;
  int64_t rows[32];
  for (int64_t i0 = 0; i0 < mc; i0 += mr) {
    const int64_t height = std::min<int64_t>(mr, mc - i0);
    float* dst = ap + (i0 / mr) * kc * mr;
    if (!g.transA) {
      for (int64_t i = 0; i < height; ++i) rows[i] = (ic + i0 + i) * g.lda + pc;
      for (int64_t p = 0; p < kc; ++p) {
        float* d = dst + p * mr;
        for (int64_t i = 0; i < height; ++i) d[i] = src(rows[i] + p);
        for (int64_t i = height; i < mr; ++i) d[i] = 0.0f;
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const int64_t row = (pc + p) * g.lda + ic + i0;
        float* d = dst + p * mr;
        for (int64_t i = 0; i < height; ++i) d[i] = src(row + i);
        for (int64_t i = height; i < mr; ++i) d[i] = 0.0f;
      }
    }
  }
}

void packA(const GemmArgs& g, const KernelSpec& ks, int64_t ic, int64_t mc, int64_t pc, int64_t kc, float* ap) {
  if (g.aCodes) packAFrom(g, ks, CodeSource{g.aCodes, g.aLut}, ic, mc, pc, kc, ap);
  else packAFrom(g, ks, FloatSource{g.a}, ic, mc, pc, kc, ap);
}

// Multiply the packed B block (kc x nc at column jc) by rows [m0, m1) of op(A), for the NR panels
// [panel0, panel1) of the block.
void multiplyRows(const GemmArgs& g, const KernelSpec& ks, const float* bp, int64_t pc, int64_t kc, int64_t jc,
                  int64_t nc, int64_t m0, int64_t m1, int64_t panel0, int64_t panel1, float beta) {
  PackBuffers& buf = tlsPack;
  const int mr = ks.mr, nr = ks.nr;
  // Few B panels: each packed A panel would serve too few tiles, so read A in place.
  if (!g.transA && panel1 - panel0 <= 4 && (g.aCodes ? ks.directCoded != nullptr : ks.direct != nullptr)) {
    for (int64_t ir = m0; ir < m1; ir += mr) {
      const int rows = static_cast<int>(std::min<int64_t>(mr, m1 - ir));
      float* crow = g.c + ir * g.ldc + jc;
      for (int64_t panel = panel0; panel < panel1; ++panel) {
        const int64_t jr = panel * nr;
        const int cols = static_cast<int>(std::min<int64_t>(nr, nc - jr));
        if (g.aCodes) {
          ks.directCoded(kc, g.aCodes + ir * g.lda + pc, g.lda, g.aLut, bp + panel * kc * nr, crow + jr, g.ldc, g.alpha, beta,
                         rows, cols);
        } else {
          ks.direct(kc, g.a + ir * g.lda + pc, g.lda, bp + panel * kc * nr, crow + jr, g.ldc, g.alpha, beta, rows, cols);
        }
      }
    }
    return;
  }
  for (int64_t ic = m0; ic < m1; ic += ks.mc) {
    const int64_t mc = std::min(ks.mc, m1 - ic);
    const int64_t mcPadded = (mc + mr - 1) / mr * mr;
    float* ap = PackBuffers::grow(buf.a, buf.aSize, static_cast<size_t>(kc * mcPadded));
    packA(g, ks, ic, mc, pc, kc, ap);
    // The A micro-panel (MR x kc) stays in L1 while the B panels stream from L2.
    for (int64_t ir = 0; ir < mc; ir += mr) {
      const float* apanel = ap + (ir / mr) * kc * mr;
      const int rows = static_cast<int>(std::min<int64_t>(mr, mc - ir));
      float* crow = g.c + (ic + ir) * g.ldc + jc;
      for (int64_t panel = panel0; panel < panel1; ++panel) {
        const int64_t jr = panel * nr;
        ks.micro(kc, apanel, bp + panel * kc * nr, crow + jr, g.ldc, g.alpha, beta, rows,
                 static_cast<int>(std::min<int64_t>(nr, nc - jr)));
      }
    }
  }
}

void scaleC(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    float* row = g.c + i * g.ldc;
    for (int64_t j = 0; j < g.n; ++j) row[j] = g.beta == 0.0f ? 0.0f : g.beta * row[j];
  }
}

// Shared packed-B buffer of the calling thread (the team's master), reused across calls.
thread_local PackBuffers sharedPack;

}  // namespace

const char* gemmKernelName() { return family().name; }

void sgemm(const GemmArgs& g, int threads) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0 || g.alpha == 0.0f) {
    scaleC(g);
    return;
  }
  const KernelSpec& ks = selectKernel(g.m, g.n);
  const int mr = ks.mr, nr = ks.nr;
  const int64_t tilesM = (g.m + mr - 1) / mr;
  // Too little work to share: stay on this thread.
  const double flops = 2.0 * g.m * g.n * g.k;
  const int team = flops < 4e6 ? 1 : std::max(1, threads);
  // Threads split the longer side of C: each takes a range of whole MR tiles of rows, or a range
  // of NR panels of columns (then each packs and reads only its own panels of B, and packs the
  // few rows of A itself).
  const bool splitRows = tilesM >= 2 * team && g.m >= g.n;
  for (int64_t jc = 0; jc < g.n; jc += ks.nc) {
    const int64_t nc = std::min(ks.nc, g.n - jc);
    const int64_t panels = (nc + nr - 1) / nr;
    for (int64_t pc = 0; pc < g.k; pc += ks.kc) {
      const int64_t kc = std::min(ks.kc, g.k - pc);
      float* bp = PackBuffers::grow(sharedPack.b, sharedPack.bSize, static_cast<size_t>(kc * panels * nr));
      const float beta = pc == 0 ? g.beta : 1.0f;
      // Pack B: each thread a share of the panels.
      parallelFor(team, team, [&](int64_t t) {
        const int64_t p0 = panels * t / team, p1 = panels * (t + 1) / team;
        if (p1 > p0) {
          const int64_t j0 = p0 * nr, j1 = std::min(nc, p1 * nr);
          packB(g, ks, pc, kc, jc + j0, j1 - j0, bp + p0 * kc * nr);
        }
      });
      parallelFor(team, team, [&](int64_t t) {
        if (splitRows) {
          const int64_t m0 = std::min(g.m, tilesM * t / team * mr), m1 = std::min(g.m, tilesM * (t + 1) / team * mr);
          if (m1 > m0) multiplyRows(g, ks, bp, pc, kc, jc, nc, m0, m1, 0, panels, beta);
        } else {
          const int64_t p0 = panels * t / team, p1 = panels * (t + 1) / team;
          if (p1 > p0) multiplyRows(g, ks, bp, pc, kc, jc, nc, 0, g.m, p0, p1, beta);
        }
      });
    }
  }
}

}  // namespace octet
