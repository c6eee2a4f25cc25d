#include "direct_conv.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "channels_last.h"
#include "codec.h"
#include "lowp_gemm.h"
#include "lowp_gemm_tiles.h"
#include "cpu.h"
#include "gemm.h"
#include "gemm_kernels.h"
#include "parallel.h"
#include "scratch.h"
#include "sources.h"

namespace octet {
namespace {

constexpr int kRows = 8;    // output channels per register tile
constexpr int kLanes = 32;  // positions (on the padded width) per register tile

// What a call shares with its tasks.
struct Plan {
  const DirectConv* d;
  int64_t wp, planeStride, grid;  // padded width; floats per plane; outH * Wp positions computed
  const float* wt;  // [blocks][K][kRows]: the weights of output channels b*kRows.. side by side
  int64_t k, blocks;
  float* y;
  // Sparse forward only: tile b's taps are entries first[b] .. first[b + 1] of tap (t, increasing)
  // and offset (the tap's input offset from a tile's first position: c * planeStride + i * wp + j).
  const int64_t* first = nullptr;
  const int64_t* tap = nullptr;
  const int64_t* offset = nullptr;
  // Sparse forward on bfloat16 pairs: tile b's list entries taken two by two, pairs
  // pairFirst[b] .. pairFirst[b + 1], each with its two input offsets and kRows weight words
  // (bits(w_hi) & 0xffff0000) | (bits(w_lo) >> 16); an odd list's last entry runs alone.
  const int64_t* pairFirst = nullptr;
  const int64_t* pairHi = nullptr;
  const int64_t* pairLo = nullptr;
  const uint32_t* pairW = nullptr;
  // Strided (sparse forward only): each channel's plane holds sh x sw phase planes, phaseStride
  // floats apart, phase (py, px) at row r, column q holding the padded image's (sh r + py, sw q + px).
  int64_t sh = 1, sw = 1, phaseStride = 0;
};

// A portable tile's results into NCHW: lane l is grid position f0 + l, an output where it is
// inside the grid and its row.
__attribute__((always_inline)) inline void storeTilePortable(const Plan& p, int64_t n, int64_t b, int64_t f0, const float (&acc)[kRows][kLanes]) {
  const DirectConv& d = *p.d;
  const int64_t rows = std::min<int64_t>(kRows, d.outChannels - b * kRows);
  for (int l = 0; l < kLanes; ++l) {
    const int64_t f = f0 + l, oy = f / p.wp, ox = f % p.wp;
    if (f >= p.grid || ox >= d.outW) continue;
    for (int64_t r = 0; r < rows; ++r) p.y[n * d.yImageStride + (b * kRows + r) * d.outH * d.outW + oy * d.outW + ox] = acc[r][l];
  }
}

// Channels [o, o + rows) of image n, position f0 + l for lanes l: the chains of the contract.
// Portable: lanes as arrays (vectorized where the build targets allow), fma per lane.
__attribute__((always_inline)) inline void tileBody(const Plan& p, const float* image, int64_t n, int64_t b, int64_t f0) {
  const DirectConv& d = *p.d;
  float acc[kRows][kLanes];
  for (int r = 0; r < kRows; ++r)
    for (int l = 0; l < kLanes; ++l) acc[r][l] = 0.0f;
  const float* w = p.wt + b * p.k * kRows;
  for (int64_t c = 0; c < d.channels; ++c) {
    const float* base = image + c * p.planeStride + f0;
    for (int64_t i = 0; i < d.kernelH; ++i)
      for (int64_t j = 0; j < d.kernelW; ++j, w += kRows) {
        const float* x = base + i * p.wp + j;
        for (int r = 0; r < kRows; ++r)
          for (int l = 0; l < kLanes; ++l) acc[r][l] = __builtin_fmaf(w[r], x[l], acc[r][l]);
      }
  }
  storeTilePortable(p, n, b, f0, acc);
}

void tilePortable(const Plan& p, const float* image, int64_t n, int64_t b, int64_t f0) { tileBody(p, image, n, b, f0); }

// Where the AVX-512 and AVX2 tiles of the running thread's current (image, channel block) put their
// results: kRows rows of strips * kLanes positions on the padded grid, whole-vector stores; the
// block is then copied into NCHW by flushBlock, a channel plane at a time. (Storing each tile's
// runs straight into the eight channel planes, 4 KB apart on 32 x 32 planes, took most of a sparse
// tile's time: the planes' lines fight for the same L1 sets.)
thread_local float* tileScratch = nullptr;

// The sparse forward's tile: the chains over tile b's listed taps only (the block row's stored
// entries, in increasing t), otherwise tileBody's.
__attribute__((always_inline)) inline void sparseTileBody(const Plan& p, const float* image, int64_t n, int64_t b, int64_t f0) {
  float acc[kRows][kLanes];
  for (int r = 0; r < kRows; ++r)
    for (int l = 0; l < kLanes; ++l) acc[r][l] = 0.0f;
  const float* wb = p.wt + b * p.k * kRows;
  for (int64_t e = p.first[b]; e < p.first[b + 1]; ++e) {
    const float* w = wb + p.tap[e] * kRows;
    const float* x = image + f0 + p.offset[e];
    for (int r = 0; r < kRows; ++r)
      for (int l = 0; l < kLanes; ++l) acc[r][l] = __builtin_fmaf(w[r], x[l], acc[r][l]);
  }
  storeTilePortable(p, n, b, f0, acc);
}

void sparseTilePortable(const Plan& p, const float* image, int64_t n, int64_t b, int64_t f0) { sparseTileBody(p, image, n, b, f0); }

#ifdef OCTET_X86
// ---- AVX2 tiles: sixteen 8-lane registers hold a quarter of a tile's kRows x kLanes sums (4
// rows by 16 positions), so a tile runs in four passes over its taps, each chain as tileBody's
// (passes whose 16 positions all lie past the grid skipped: on 8 x 8 outputs, a grid of 80, a
// sixth of the work); results go to the thread's tile scratch as on AVX-512.
constexpr int kAvx2Rows = 4, kAvx2Lanes = 16;

__attribute__((target("avx2,fma"), always_inline)) inline void tapAvx2(__m256 (&acc)[kAvx2Rows][2], const float* w, const float* x) {
  const __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
#pragma GCC unroll 4
  for (int r = 0; r < kAvx2Rows; ++r) {
    const __m256 wv = _mm256_broadcast_ss(w + r);
    acc[r][0] = _mm256_fmadd_ps(wv, x0, acc[r][0]);
    acc[r][1] = _mm256_fmadd_ps(wv, x1, acc[r][1]);
  }
}

__attribute__((target("avx2"), always_inline)) inline void storePassAvx2(const Plan& p, int64_t f0, int r0, const __m256 (&acc)[kAvx2Rows][2]) {
  const int64_t stride = (p.grid + kLanes - 1) / kLanes * kLanes;
  float* out = tileScratch + f0;
  for (int r = 0; r < kAvx2Rows; ++r) {
    _mm256_storeu_ps(out + (r0 + r) * stride, acc[r][0]);
    _mm256_storeu_ps(out + (r0 + r) * stride + 8, acc[r][1]);
  }
}

__attribute__((target("avx2,fma"))) void tileAvx2(const Plan& p, const float* image, int64_t, int64_t b, int64_t f0) {
  const DirectConv& d = *p.d;
  for (int r0 = 0; r0 < kRows; r0 += kAvx2Rows)
    for (int l0 = 0; l0 < kLanes && f0 + l0 < p.grid; l0 += kAvx2Lanes) {
      __m256 acc[kAvx2Rows][2];
      for (int r = 0; r < kAvx2Rows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
      const float* w = p.wt + b * p.k * kRows + r0;
      for (int64_t c = 0; c < d.channels; ++c) {
        const float* base = image + c * p.planeStride + f0 + l0;
        for (int64_t i = 0; i < d.kernelH; ++i) {
          const float* row = base + i * p.wp;
          for (int64_t j = 0; j < d.kernelW; ++j, w += kRows) tapAvx2(acc, w, row + j);
        }
      }
      storePassAvx2(p, f0 + l0, r0, acc);
    }
}

__attribute__((target("avx2,fma"))) void sparseTileAvx2(const Plan& p, const float* image, int64_t, int64_t b, int64_t f0) {
  const float* wb = p.wt + b * p.k * kRows;
  for (int r0 = 0; r0 < kRows; r0 += kAvx2Rows)
    for (int l0 = 0; l0 < kLanes && f0 + l0 < p.grid; l0 += kAvx2Lanes) {
      __m256 acc[kAvx2Rows][2];
      for (int r = 0; r < kAvx2Rows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
      const float* base = image + f0 + l0;
      for (int64_t e = p.first[b]; e < p.first[b + 1]; ++e) tapAvx2(acc, wb + p.tap[e] * kRows + r0, base + p.offset[e]);
      storePassAvx2(p, f0 + l0, r0, acc);
    }
}

// (GCC 12 warns that its own headers' intrinsics read an uninitialized value, GCC bug 105593: the
// value is the intrinsic's don't-care operand.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"), always_inline)) inline void storeTileAvx512(const Plan& p, int64_t, int64_t, int64_t f0, const __m512 (&acc)[kRows][2]) {
  const int64_t stride = (p.grid + kLanes - 1) / kLanes * kLanes;
  float* out = tileScratch + f0;
  for (int r = 0; r < kRows; ++r) {
    _mm512_store_ps(out + r * stride, acc[r][0]);
    _mm512_store_ps(out + r * stride + 16, acc[r][1]);
  }
}

// One tap of an AVX-512 tile: acc[r] = fma(w[r], x[l], acc[r]) for its kRows rows and the 32
// positions from x.
__attribute__((target("avx512f"), always_inline)) inline void tapAvx512(__m512 (&acc)[kRows][2], const float* w, const float* x) {
  const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    const __m512 wv = _mm512_set1_ps(w[r]);
    acc[r][0] = _mm512_fmadd_ps(wv, x0, acc[r][0]);
    acc[r][1] = _mm512_fmadd_ps(wv, x1, acc[r][1]);
  }
}

__attribute__((target("avx512f"))) void tileAvx512(const Plan& p, const float* image, int64_t n, int64_t b, int64_t f0) {
  const DirectConv& d = *p.d;
  __m512 acc[kRows][2];
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const float* w = p.wt + b * p.k * kRows;
  for (int64_t c = 0; c < d.channels; ++c) {
    const float* base = image + c * p.planeStride + f0;
    for (int64_t i = 0; i < d.kernelH; ++i) {
      const float* row = base + i * p.wp;
      for (int64_t j = 0; j < d.kernelW; ++j, w += kRows) tapAvx512(acc, w, row + j);
    }
  }
  storeTileAvx512(p, n, b, f0, acc);
}

__attribute__((target("avx512f"))) void sparseTileAvx512(const Plan& p, const float* image, int64_t n, int64_t b, int64_t f0) {
  __m512 acc[kRows][2];
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const float* wb = p.wt + b * p.k * kRows;
  const float* base = image + f0;
  for (int64_t e = p.first[b]; e < p.first[b + 1]; ++e) tapAvx512(acc, wb + p.tap[e] * kRows, base + p.offset[e]);
  storeTileAvx512(p, n, b, f0, acc);
}

// The sparse tile on bfloat16 pairs (Plan::pairFirst): per pair, the two taps' input vectors
// joined into pair words ((bits(x_hi) & 0xffff0000) | (bits(x_lo) >> 16), exact: the values are)
// and one VDPBF16PS per accumulator, which adds the high half's product first then the low one's,
// each as a fused multiply-add: the list's chain, two steps per instruction.
__attribute__((target("avx512f,avx512bf16"))) void sparsePairTileAvx512(const Plan& p, const float* image, int64_t n, int64_t b, int64_t f0) {
  __m512 acc[kRows][2];
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const float* base = image + f0;
  const __m512i high = _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u));
  for (int64_t q = p.pairFirst[b]; q < p.pairFirst[b + 1]; ++q) {
    const float* xh = base + p.pairHi[q];
    const float* xl = base + p.pairLo[q];
    const __m512bh x0 = (__m512bh)_mm512_ternarylogic_epi32(_mm512_castps_si512(_mm512_loadu_ps(xh)), high,
                                                            _mm512_srli_epi32(_mm512_castps_si512(_mm512_loadu_ps(xl)), 16), 0xEA);
    const __m512bh x1 = (__m512bh)_mm512_ternarylogic_epi32(_mm512_castps_si512(_mm512_loadu_ps(xh + 16)), high,
                                                            _mm512_srli_epi32(_mm512_castps_si512(_mm512_loadu_ps(xl + 16)), 16), 0xEA);
    const uint32_t* w = p.pairW + q * kRows;
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m512bh wv = (__m512bh)_mm512_set1_epi32(static_cast<int32_t>(w[r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], wv, x0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], wv, x1);
    }
  }
  if ((p.first[b + 1] - p.first[b]) % 2 == 1) {
    const int64_t e = p.first[b + 1] - 1;
    tapAvx512(acc, p.wt + (b * p.k + p.tap[e]) * kRows, base + p.offset[e]);
  }
  storeTileAvx512(p, n, b, f0, acc);
}
#pragma GCC diagnostic pop
#endif

// The tiles' instruction set on this CPU, chosen once: AVX-512, AVX2 with FMA, or portable;
// OCTET_GEMM_KERNEL=avx2|portable forces a simpler one, as for the GEMMs (every path gives the
// same bits).
enum class Family { kAvx512, kAvx2, kPortable };
Family family() {
  static const Family chosen = [] {
    const char* forced = std::getenv("OCTET_GEMM_KERNEL");
    const std::string want = forced ? forced : "";
#ifdef OCTET_X86
    __builtin_cpu_init();
    if ((want.empty() || want == "avx512") && cpuHasAvx512()) return Family::kAvx512;
    if ((want.empty() || want == "avx2") && cpuHasAvx2() && __builtin_cpu_supports("fma")) return Family::kAvx2;
#endif
    return Family::kPortable;
  }();
  return chosen;
}

using Tile = void (*)(const Plan&, const float*, int64_t, int64_t, int64_t);
Tile chooseTile() {
#ifdef OCTET_X86
  if (family() == Family::kAvx512) return tileAvx512;
  if (family() == Family::kAvx2) return tileAvx2;
#endif
  return tilePortable;
}

Tile chooseSparseTile() {
#ifdef OCTET_X86
  if (family() == Family::kAvx512) return sparseTileAvx512;
  if (family() == Family::kAvx2) return sparseTileAvx2;
#endif
  return sparseTilePortable;
}

// ---- The weight gradient ----

// What a weight-gradient call shares with its threads.
struct GradPlan {
  const DirectConv* d;
  int64_t wp, planeStride;  // the padded input planes' width and floats per plane
  int64_t chunks, p;        // output channels in chunks of 16; output positions per image
  const int64_t* offsets;  // per tap t: c * planeStride + i * DH * wp + j * DW (taps past k: tap 0's)
  int64_t k, tapBlocks;
  float* sums;  // [oBlocks][tapBlocks][T][V * 16]: each tile's running sums between images
};

// Tile (ob, tb) over image n: output channels [ob * V * 16, ..), taps [tb * T, tb * T + T); the
// running sums come from `sums` and go back to it. Portable: lanes as arrays, fma per lane.
template <int V, int T>
__attribute__((always_inline)) inline void gradTileBody(const GradPlan& p, const float* image, const float* grads, int64_t n, int64_t ob, int64_t tb) {
  const DirectConv& d = *p.d;
  float* sums = p.sums + (ob * p.tapBlocks + tb) * T * V * 16;
  float acc[T][V * 16];
  for (int t = 0; t < T; ++t)
    for (int l = 0; l < V * 16; ++l) acc[t][l] = sums[t * V * 16 + l];
  const float* base = image;
  const int64_t* off = p.offsets + tb * T;
  const float* dyImage = grads + ob * V * p.p * 16;
  for (int64_t oy = 0; oy < d.outH; ++oy)
    for (int64_t ox = 0; ox < d.outW; ++ox) {
      const int64_t q = oy * d.outW + ox;
      const float* at = base + oy * d.strideH * p.wp + ox * d.strideW;
      for (int t = 0; t < T; ++t) {
        const float xv = at[off[t]];
        for (int v = 0; v < V; ++v) {
          const float* g = dyImage + (v * p.p + q) * 16;
          for (int l = 0; l < 16; ++l) acc[t][v * 16 + l] = __builtin_fmaf(g[l], xv, acc[t][v * 16 + l]);
        }
      }
    }
  for (int t = 0; t < T; ++t)
    for (int l = 0; l < V * 16; ++l) sums[t * V * 16 + l] = acc[t][l];
}

template <int V, int T>
void gradTilePortable(const GradPlan& p, const float* image, const float* grads, int64_t n, int64_t ob, int64_t tb) {
  gradTileBody<V, T>(p, image, grads, n, ob, tb);
}

#ifdef OCTET_X86
// Where group u0 + u of a tile's 8-lane groups starts in an image's output gradient: vector
// (u0 + u) / 2 of 16 channels, half (u0 + u) % 2.
template <int L>
inline void laneOffsetsAvx2(const GradPlan& p, int u0, int64_t (&lane)[L]) {
  for (int u = 0; u < L; ++u) lane[u] = ((u0 + u) / 2) * p.p * 16 + ((u0 + u) % 2) * 8;
}

// AVX2: a tile's T taps x V * 16 lanes of sums (16 to 48 registers of 8) in passes of at most 12
// registers: L of the tile's 8-lane groups (u0 ..) by TT of its taps (t0 ..), each pass over every
// position of the image; each sum's chain as gradTileBody's.
template <int V, int T, int L, int TT>
__attribute__((target("avx2,fma"), always_inline)) inline void gradPassAvx2(const GradPlan& p, const float* image, const float* grads, int64_t ob, int64_t tb,
                                                                          int u0, int t0) {
  const DirectConv& d = *p.d;
  float* sums = p.sums + (ob * p.tapBlocks + tb) * T * V * 16;
  __m256 acc[TT][L];
  for (int t = 0; t < TT; ++t)
    for (int u = 0; u < L; ++u) acc[t][u] = _mm256_loadu_ps(sums + (t0 + t) * V * 16 + (u0 + u) * 8);
  int64_t off[TT];
  for (int t = 0; t < TT; ++t) off[t] = p.offsets[tb * T + t0 + t];
  int64_t lane[L];
  laneOffsetsAvx2<L>(p, u0, lane);
  const float* dyImage = grads + ob * V * p.p * 16;
  for (int64_t oy = 0; oy < d.outH; ++oy) {
    const float* row = image + oy * d.strideH * p.wp;
    const float* g = dyImage + oy * d.outW * 16;
    for (int64_t ox = 0; ox < d.outW; ++ox, g += 16) {
      const float* at = row + ox * d.strideW;
      __m256 dv[L];
#pragma GCC unroll 4
      for (int u = 0; u < L; ++u) dv[u] = _mm256_loadu_ps(g + lane[u]);
#pragma GCC unroll 6
      for (int t = 0; t < TT; ++t) {
        const __m256 xv = _mm256_broadcast_ss(at + off[t]);
#pragma GCC unroll 4
        for (int u = 0; u < L; ++u) acc[t][u] = _mm256_fmadd_ps(dv[u], xv, acc[t][u]);
      }
    }
  }
  for (int t = 0; t < TT; ++t)
    for (int u = 0; u < L; ++u) _mm256_storeu_ps(sums + (t0 + t) * V * 16 + (u0 + u) * 8, acc[t][u]);
}

template <int V, int T>
__attribute__((target("avx2,fma"))) void gradTileAvx2(const GradPlan& p, const float* image, const float* grads, int64_t, int64_t ob, int64_t tb) {
  constexpr int L = 2 * V < 4 ? 2 * V : 4, TT = 12 / L;
  for (int u0 = 0; u0 < 2 * V; u0 += L) {
    int t0 = 0;
    for (; t0 + TT <= T; t0 += TT) gradPassAvx2<V, T, L, TT>(p, image, grads, ob, tb, u0, t0);
    if constexpr (T % TT != 0) gradPassAvx2<V, T, L, T % TT>(p, image, grads, ob, tb, u0, t0);
  }
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// One output position of a weight-gradient tile: acc[t][v] = fma(dv[v], x at tap t, acc[t][v]),
// each tap's input value one broadcast for the V vectors of output-gradient lanes.
template <int T, int V>
__attribute__((target("avx512f"), always_inline)) inline void gradTapsAvx512(__m512 (&acc)[T][V], const __m512 (&dv)[V], const float* at, const int64_t (&off)[T]) {
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
    const __m512 xv = _mm512_set1_ps(at[off[t]]);
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[t][v] = _mm512_fmadd_ps(dv[v], xv, acc[t][v]);
  }
}

template <int V, int T>
__attribute__((target("avx512f"))) void gradTileAvx512(const GradPlan& p, const float* image, const float* grads, int64_t n, int64_t ob, int64_t tb) {
  const DirectConv& d = *p.d;
  float* sums = p.sums + (ob * p.tapBlocks + tb) * T * V * 16;
  __m512 acc[T][V];
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v) acc[t][v] = _mm512_loadu_ps(sums + (t * V + v) * 16);
  const float* base = image;
  int64_t off[T];
  for (int t = 0; t < T; ++t) off[t] = p.offsets[tb * T + t];
  const float* dyImage = grads + ob * V * p.p * 16;
  for (int64_t oy = 0; oy < d.outH; ++oy) {
    const float* row = base + oy * d.strideH * p.wp;
    const float* g = dyImage + oy * d.outW * 16;
    for (int64_t ox = 0; ox < d.outW; ++ox, g += 16) {
      const float* at = row + ox * d.strideW;
      __m512 dv[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) dv[v] = _mm512_loadu_ps(g + v * p.p * 16);
      gradTapsAvx512<T, V>(acc, dv, at, off);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(sums + (t * V + v) * 16, acc[t][v]);
}
#pragma GCC diagnostic pop
#endif

using GradTile = void (*)(const GradPlan&, const float*, const float*, int64_t, int64_t, int64_t);

// The tile for V channel vectors (1, 2 or 4) on this CPU, and its taps per tile T: 16, 8 or 6
// (16 to 24 running sums in registers).
GradTile gradTileFor(int v) {
#ifdef OCTET_X86
  if (family() == Family::kAvx512) return v == 4 ? gradTileAvx512<4, 6> : v == 2 ? gradTileAvx512<2, 8> : gradTileAvx512<1, 16>;
  if (family() == Family::kAvx2) return v == 4 ? gradTileAvx2<4, 6> : v == 2 ? gradTileAvx2<2, 8> : gradTileAvx2<1, 16>;
#endif
  return v == 4 ? gradTilePortable<4, 6> : v == 2 ? gradTilePortable<2, 8> : gradTilePortable<1, 16>;
}

// The calling thread's padded planes and packed weights, kept from call to call (every element
// is written before it is read).
thread_local AlignedFloats tlsPadded, tlsWeights, tlsRow, tlsGradients, tlsSums, tlsPlanes, tlsTotals, tlsTileScratch;

// Input plane q = n * channels + c decoded into `plane`, zero-padded by (padH, padW), rows wp
// apart; zeros to planeStride.
void padPlane(const DirectConv& d, const DirectOperand& x, int64_t q, int64_t wp, int64_t planeStride, float* plane) {
  const int64_t n = q / d.channels, c = q % d.channels;
  std::memset(plane, 0, sizeof(float) * planeStride);
  const int64_t at = n * d.xImageStride + c * d.height * d.width;
  for (int64_t r = 0; r < d.height; ++r) {
    float* dst = plane + (r + d.padH) * wp + d.padW;
    if (x.codes) decodeCodes(x.codes + at + r * d.width, x.lut, x.e5m2, d.width, dst);
    else std::memcpy(dst, x.values + at + r * d.width, sizeof(float) * d.width);
  }
}

// Input plane q's phase planes (Plan::sh, sw > 1) into `plane`: phase (py, px) at
// plane + (py * sw + px) * phaseStride, row r of wp floats holding the zero-padded image's row
// sh r + py, columns sw s + px.
void padPhases(const DirectConv& d, const DirectOperand& x, int64_t q, const Plan& p, float* plane) {
  const int64_t n = q / d.channels, c = q % d.channels;
  std::memset(plane, 0, sizeof(float) * p.sh * p.sw * p.phaseStride);
  const int64_t at = n * d.xImageStride + c * d.height * d.width;
  const int64_t hp = p.phaseStride / p.wp;
  for (int64_t py = 0; py < p.sh; ++py)
    for (int64_t px = 0; px < p.sw; ++px) {
      float* phase = plane + (py * p.sw + px) * p.phaseStride;
      // Columns s with 0 <= sw s + px - padW < width.
      const int64_t s0 = std::max<int64_t>(0, (d.padW - px + p.sw - 1) / p.sw);
      const int64_t s1 = std::min<int64_t>(p.wp, (d.width - 1 + d.padW - px) / p.sw + 1);
      for (int64_t r = 0; r < hp; ++r) {
        const int64_t iy = p.sh * r + py - d.padH;
        if (iy < 0 || iy >= d.height || s1 <= s0) continue;
        float* dst = phase + r * p.wp;
        const int64_t row = at + iy * d.width + px - d.padW;
        if (x.codes) {
          for (int64_t s = s0; s < s1; ++s) dst[s] = x.lut[x.codes[row + p.sw * s]];
        } else {
          for (int64_t s = s0; s < s1; ++s) dst[s] = x.values[row + p.sw * s];
        }
      }
    }
}

}  // namespace

namespace {

// Channel block b of image n from the running thread's tile scratch into NCHW: each output row
// is the first outW positions of its grid row.
void flushBlock(const Plan& p, int64_t n, int64_t b, const float* scratch) {
  const DirectConv& d = *p.d;
  const int64_t stride = (p.grid + kLanes - 1) / kLanes * kLanes;
  const int64_t rows = std::min<int64_t>(kRows, d.outChannels - b * kRows);
  for (int64_t r = 0; r < rows; ++r) {
    float* plane = p.y + n * d.yImageStride + (b * kRows + r) * d.outH * d.outW;
    const float* src = scratch + r * stride;
    for (int64_t oy = 0; oy < d.outH; ++oy) std::memcpy(plane + oy * d.outW, src + oy * p.wp, sizeof(float) * d.outW);
  }
}

// Block b of image n: strips of kLanes positions through `tile`; with `scratch` (the AVX-512 and
// AVX2 tiles) into the thread's tile scratch, then flushed into NCHW (the portable tiles store
// straight into y). `tile` returns false to stop (nothing is flushed then).
template <class TileFn>
bool runBlock(const Plan& p, int64_t n, int64_t b, bool scratch, TileFn tile) {
  const int64_t strips = (p.grid + kLanes - 1) / kLanes;
  if (scratch) tileScratch = tlsTileScratch.get(static_cast<size_t>(kRows * strips * kLanes));
  for (int64_t s = 0; s < strips; ++s)
    if (!tile(s * kLanes)) return false;
  if (scratch) flushBlock(p, n, b, tileScratch);
  return true;
}

// The forward's tasks: image n's input planes padded into the running thread's buffer, then
// body(planes, n, b) for output-channel blocks b. Images are whole tasks where there are enough
// of them (each padded once); with fewer than two per thread, each (image, block) pair is a task
// that pads its own image.
template <class Body>
void forwardTasks(const DirectConv& d, const DirectOperand& x, const Plan& p, int threads, Body body) {
  auto pad = [&](int64_t n) {
    float* planes = tlsPadded.get(static_cast<size_t>(d.channels * p.planeStride));
    for (int64_t c = 0; c < d.channels; ++c) {
      if (p.sh * p.sw > 1) padPhases(d, x, n * d.channels + c, p, planes + c * p.planeStride);
      else padPlane(d, x, n * d.channels + c, p.wp, p.planeStride, planes + c * p.planeStride);
    }
    return planes;
  };
  if (d.batch >= 2 * threads) {
    parallelFor(d.batch, threads, [&](int64_t n) {
      const float* planes = pad(n);
      for (int64_t b = 0; b < p.blocks; ++b) body(planes, n, b);
    });
  } else {
    parallelFor(d.batch * p.blocks, threads, [&](int64_t task) { body(pad(task / p.blocks), task / p.blocks, task % p.blocks); });
  }
}

// The forward's geometry for the tiles (no weights yet).
Plan forwardPlan(const DirectConv& d, float* y) {
  const int64_t wp = d.outW + d.kernelW - 1, hp = d.outH + d.kernelH - 1;
  // Reads reach KW - 1 floats past the plane's last row, and a tile's lanes up to kLanes - 1
  // positions past the grid: zeros.
  const int64_t planeStride = (hp * wp + d.kernelW + kLanes + 15) / 16 * 16;
  const int64_t k = d.channels * d.kernelH * d.kernelW, blocks = (d.outChannels + kRows - 1) / kRows;
  return Plan{&d, wp, planeStride, d.outH * wp, nullptr, k, blocks, y};
}

// The forward's operands laid out for the tiles: the padded input planes and the packed weights
// (in the calling thread's buffers).
Plan prepareForward(const DirectConv& d, const DirectOperand& w, float* y) {
  Plan plan = forwardPlan(d, y);
  const int64_t k = plan.k, blocks = plan.blocks;
  float* wt = tlsWeights.get(static_cast<size_t>(blocks * k * kRows));
  float* row = tlsRow.get(static_cast<size_t>(k));
  for (int64_t o = 0; o < blocks * kRows; ++o) {
    if (o < d.outChannels) {
      if (w.codes) decodeCodes(w.codes + o * k, w.lut, w.e5m2, k, row);
      else std::memcpy(row, w.values + o * k, sizeof(float) * k);
    }
    float* dst = wt + (o / kRows) * k * kRows + o % kRows;
    for (int64_t t = 0; t < k; ++t) dst[t * kRows] = o < d.outChannels ? row[t] : 0.0f;
  }
  plan.wt = wt;
  return plan;
}

#ifdef OCTET_X86
// ---- The forward under an emulated accumulator (AVX-512; AVX2 below) ----

// Whether the emulated-accumulator direct tiles run here: AVX-512's, or AVX2's where the tiles'
// family is AVX2 (OCTET_CODEC_KERNEL and OCTET_GEMM_KERNEL may ask for simpler paths).
bool emulatedTiles() { return lowp::avx512Tiles() || (lowp::avx2Tiles() && family() == Family::kAvx2); }

struct LowpPlan {
  const Plan* plan;
  const int64_t* offsets;  // per tap t: c * planeStride + i * wp + j
  const int64_t* ends;     // the nonempty chunks' ends, or null
  int64_t endCount;
  lowp::FastRange range;
};

// Channels [b * 8, b * 8 + 8) of image n at 16 positions from f0: lowpGemm's fast tile's
// arithmetic (fastRows in native/lowp_gemm_fast.h) for these rows and columns: each addition
// s = fma(w, x, s), then Veltkamp's nearest rounding to the accumulator's significand; chunk
// partials folded into the total with a rounded addition. False, with nothing stored, where a
// rounded value left the format's normal range (kCheck).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// One rounded addition's result (lowpGemm's fast nearest rounding), tracking |r| - 1 of the
// rounded bits for the range check.
template <bool kCheck>
__attribute__((target("avx512f"), always_inline)) inline __m512 roundedAvx512(__m512 sum, __m512 splitter, __m512i& worstHigh, __m512i& worstLow) {
  const __m512 c = _mm512_fmadd_ps(sum, splitter, sum);
  const __m512 r = _mm512_sub_ps(c, _mm512_sub_ps(c, sum));
  if (kCheck) {
    const __m512i g = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(r), _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(1));
    worstHigh = _mm512_max_epi32(worstHigh, g);
    worstLow = _mm512_min_epu32(worstLow, g);
  }
  return r;
}

// Products t0 .. t1 - 1 added into sums (rows x 2 vectors of positions), each addition rounded:
// 16 independent chains, enough to cover the latency of the rounding's four dependent steps.
template <bool kCheck>
__attribute__((target("avx512f"), always_inline)) inline void accumulateAvx512(__m512 (&sums)[kRows][2], const float* base, const int64_t* offsets, const float* wt,
                                                                              int64_t t0, int64_t t1, __m512 splitter, __m512i& worstHigh, __m512i& worstLow) {
  for (int64_t t = t0; t < t1; ++t) {
    const __m512 x0 = _mm512_loadu_ps(base + offsets[t]), x1 = _mm512_loadu_ps(base + offsets[t] + 16);
    const float* wr = wt + t * kRows;
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m512 wv = _mm512_set1_ps(wr[r]);
      sums[r][0] = roundedAvx512<kCheck>(_mm512_fmadd_ps(wv, x0, sums[r][0]), splitter, worstHigh, worstLow);
      sums[r][1] = roundedAvx512<kCheck>(_mm512_fmadd_ps(wv, x1, sums[r][1]), splitter, worstHigh, worstLow);
    }
  }
}

template <bool kCheck>
__attribute__((target("avx512f"))) bool lowpTileAvx512(const LowpPlan& lp, const float* image, int64_t n, int64_t b, int64_t f0) {
  constexpr int R = kRows;
  const Plan& p = *lp.plan;
  const __m512 splitter = _mm512_set1_ps(lp.range.splitter);
  __m512i worstHigh = _mm512_set1_epi32(-1), worstLow = _mm512_set1_epi32(-1);
  const float* base = image + f0;
  const float* wt = p.wt + b * p.k * R;
  __m512 total[R][2];
  for (int r = 0; r < R; ++r) total[r][0] = total[r][1] = _mm512_setzero_ps();
  if (!lp.ends) {
    accumulateAvx512<kCheck>(total, base, lp.offsets, wt, 0, p.k, splitter, worstHigh, worstLow);
  } else {
    for (int64_t run = 0; run < lp.endCount; ++run) {
      __m512 partial[R][2];
      for (int r = 0; r < R; ++r) partial[r][0] = partial[r][1] = _mm512_setzero_ps();
      accumulateAvx512<kCheck>(partial, base, lp.offsets, wt, run == 0 ? 0 : lp.ends[run - 1], lp.ends[run], splitter, worstHigh, worstLow);
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < 2; ++v) total[r][v] = roundedAvx512<kCheck>(_mm512_add_ps(total[r][v], partial[r][v]), splitter, worstHigh, worstLow);
    }
  }
  if (kCheck && !(_mm512_cmpgt_epi32_mask(worstHigh, _mm512_set1_epi32(static_cast<int>(lp.range.maxBitsLess1))) == 0 &&
                  _mm512_cmplt_epu32_mask(worstLow, _mm512_set1_epi32(static_cast<int>(lp.range.minBitsLess1))) == 0)) {
    return false;
  }
  storeTileAvx512(*lp.plan, n, b, f0, total);
  return true;
}

// roundedAvx512 on 8 lanes.
template <bool kCheck>
__attribute__((target("avx2,fma"), always_inline)) inline __m256 roundedAvx2(__m256 sum, __m256 splitter, __m256i& worstHigh, __m256i& worstLow) {
  const __m256 c = _mm256_fmadd_ps(sum, splitter, sum);
  const __m256 r = _mm256_sub_ps(c, _mm256_sub_ps(c, sum));
  if (kCheck) {
    const __m256i g = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(r), _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(1));
    worstHigh = _mm256_max_epi32(worstHigh, g);
    worstLow = _mm256_min_epu32(worstLow, g);
  }
  return r;
}

// Whether every tracked |r| - 1 is at most maxBitsLess1 (signed) and at least minBitsLess1
// (unsigned): no rounded value left the format's normal range.
__attribute__((target("avx2"), always_inline)) inline bool inRangeAvx2(__m256i worstHigh, __m256i worstLow, const lowp::FastRange& range) {
  const __m256i high = _mm256_cmpgt_epi32(worstHigh, _mm256_set1_epi32(static_cast<int>(range.maxBitsLess1)));
  const __m256i minV = _mm256_set1_epi32(static_cast<int>(range.minBitsLess1));
  const __m256i low = _mm256_xor_si256(_mm256_cmpeq_epi32(_mm256_max_epu32(worstLow, minV), worstLow), _mm256_set1_epi32(-1));
  return _mm256_testz_si256(_mm256_or_si256(high, low), _mm256_set1_epi32(-1)) != 0;
}

template <bool kCheck>
__attribute__((target("avx2,fma"), always_inline)) inline void accumulateAvx2(__m256 (&sums)[kAvx2Rows][2], const float* base, const int64_t* offsets, const float* wt,
                                                                            int64_t t0, int64_t t1, __m256 splitter, __m256i& worstHigh, __m256i& worstLow) {
  for (int64_t t = t0; t < t1; ++t) {
    const __m256 x0 = _mm256_loadu_ps(base + offsets[t]), x1 = _mm256_loadu_ps(base + offsets[t] + 8);
    const float* wr = wt + t * kRows;
#pragma GCC unroll 4
    for (int r = 0; r < kAvx2Rows; ++r) {
      const __m256 wv = _mm256_broadcast_ss(wr + r);
      sums[r][0] = roundedAvx2<kCheck>(_mm256_fmadd_ps(wv, x0, sums[r][0]), splitter, worstHigh, worstLow);
      sums[r][1] = roundedAvx2<kCheck>(_mm256_fmadd_ps(wv, x1, sums[r][1]), splitter, worstHigh, worstLow);
    }
  }
}

// lowpTileAvx512 on AVX2, in the four passes of tileAvx2 (4 rows by 16 positions: 8 chains in
// registers); a chunk's partial sums are folded into totals kept in memory.
template <bool kCheck>
__attribute__((target("avx2,fma"))) bool lowpTileAvx2(const LowpPlan& lp, const float* image, int64_t, int64_t b, int64_t f0) {
  const Plan& p = *lp.plan;
  const __m256 splitter = _mm256_set1_ps(lp.range.splitter);
  __m256i worstHigh = _mm256_set1_epi32(-1), worstLow = _mm256_set1_epi32(-1);
  for (int r0 = 0; r0 < kRows; r0 += kAvx2Rows)
    for (int l0 = 0; l0 < kLanes && f0 + l0 < p.grid; l0 += kAvx2Lanes) {
      const float* base = image + f0 + l0;
      const float* wt = p.wt + b * p.k * kRows + r0;
      __m256 sums[kAvx2Rows][2];
      for (int r = 0; r < kAvx2Rows; ++r) sums[r][0] = sums[r][1] = _mm256_setzero_ps();
      if (!lp.ends) {
        accumulateAvx2<kCheck>(sums, base, lp.offsets, wt, 0, p.k, splitter, worstHigh, worstLow);
      } else {
        alignas(32) float total[kAvx2Rows][2][8] = {};
        for (int64_t run = 0; run < lp.endCount; ++run) {
          for (int r = 0; r < kAvx2Rows; ++r) sums[r][0] = sums[r][1] = _mm256_setzero_ps();
          accumulateAvx2<kCheck>(sums, base, lp.offsets, wt, run == 0 ? 0 : lp.ends[run - 1], lp.ends[run], splitter, worstHigh, worstLow);
          for (int r = 0; r < kAvx2Rows; ++r)
            for (int v = 0; v < 2; ++v)
              _mm256_store_ps(total[r][v], roundedAvx2<kCheck>(_mm256_add_ps(_mm256_load_ps(total[r][v]), sums[r][v]), splitter, worstHigh, worstLow));
        }
        for (int r = 0; r < kAvx2Rows; ++r)
          for (int v = 0; v < 2; ++v) sums[r][v] = _mm256_load_ps(total[r][v]);
      }
      storePassAvx2(p, f0 + l0, r0, sums);
    }
  return !kCheck || inRangeAvx2(worstHigh, worstLow, lp.range);
}
#pragma GCC diagnostic pop
#endif

}  // namespace

void directConvForward(const DirectConv& d, const DirectOperand& x, const DirectOperand& w, float* y, int threads) {
  if (d.batch <= 0 || d.outChannels <= 0) return;
  const Plan plan = prepareForward(d, w, y);
  static const Tile tile = chooseTile();
  const bool scratch = family() != Family::kPortable;
  forwardTasks(d, x, plan, threads, [&](const float* planes, int64_t n, int64_t b) {
    runBlock(plan, n, b, scratch, [&](int64_t f0) {
      tile(plan, planes, n, b, f0);
      return true;
    });
  });
}

void directConvForwardSparse(const DirectConv& d, const DirectOperand& x, const float* values, const int32_t* rowPtr, const int32_t* colIdx, int64_t br,
                             int64_t bc, float* y, int threads) {
  if (d.batch <= 0 || d.outChannels <= 0) return;
  Plan plan = forwardPlan(d, y);
  plan.sh = d.strideH;
  plan.sw = d.strideW;
  if (plan.sh * plan.sw > 1) {
    // Strided: taps read phase planes (see Plan), each output row wp = outW + (KW - 1) / sw apart.
    plan.wp = d.outW + (d.kernelW - 1) / plan.sw;
    // Reads reach (KH - 1) / sh rows and (KW - 1) / sw columns past an output's position, and a
    // tile's lanes up to kLanes - 1 positions past the grid: zeros (or image rows never stored).
    plan.phaseStride = ((d.outH + (d.kernelH - 1) / plan.sh) * plan.wp + plan.wp + kLanes + 15) / 16 * 16;
    plan.planeStride = plan.sh * plan.sw * plan.phaseStride;
    plan.grid = d.outH * plan.wp;
  } else {
    plan.phaseStride = plan.planeStride;
  }
  // Each tile's taps: its block row's stored entries (tiles of kRows rows lie in one block row),
  // with their weights packed as prepareForward packs them (the other taps' are never read).
  const int64_t k = plan.k;
  float* wt = tlsWeights.get(static_cast<size_t>(plan.blocks * k * kRows));
  std::vector<int64_t> first(static_cast<size_t>(plan.blocks + 1), 0), tap, offset;
  for (int64_t b = 0; b < plan.blocks; ++b) {
    const int64_t q = b * kRows / br, r0 = b * kRows - q * br;
    for (int32_t s = rowPtr[q]; s < rowPtr[q + 1]; ++s) {
      const int64_t t0 = static_cast<int64_t>(colIdx[s]) * bc;
      const float* block = values + static_cast<int64_t>(s) * br * bc;
      for (int64_t t = t0; t < std::min(k, t0 + bc); ++t) {
        const int64_t c = t / (d.kernelH * d.kernelW), i = t / d.kernelW % d.kernelH, j = t % d.kernelW;
        tap.push_back(t);
        offset.push_back(c * plan.planeStride + ((i % plan.sh) * plan.sw + j % plan.sw) * plan.phaseStride + (i / plan.sh) * plan.wp + j / plan.sw);
        for (int r = 0; r < kRows; ++r) wt[(b * k + t) * kRows + r] = block[(r0 + r) * bc + (t - t0)];
      }
    }
    first[b + 1] = static_cast<int64_t>(tap.size());
  }
  plan.wt = wt;
  plan.first = first.data();
  plan.tap = tap.data();
  plan.offset = offset.data();
  // Codes on bfloat16 pairs where the GEMM's pair kernel would take them: the weights finite, no
  // Inf or NaN among the image codes, pairProductsExact.
  bool pairs = false;
  std::vector<int64_t> pairFirst, pairHi, pairLo;
  std::vector<uint32_t> pairW;
#ifdef OCTET_X86
  if (x.codes && family() == Family::kAvx512 && gemmBf16Pairs()) {
    const int64_t blockRows = (d.outChannels + br - 1) / br;
    const TableFacts fx = tableFacts(x.lut, 256), fw = valueFacts(values, static_cast<int64_t>(rowPtr[blockRows]) * br * bc);
    pairs = fw.firstNonFinite == 128 && pairProductsExact(fx, fw, k) &&
            !mayReadNonFinite(x.codes, (d.batch - 1) * d.xImageStride + d.channels * d.height * d.width, fx);
  }
#endif
  if (pairs) {
    noteBf16PairProduct();
    pairFirst.assign(static_cast<size_t>(plan.blocks + 1), 0);
    const auto bits = [](float v) {
      uint32_t u;
      std::memcpy(&u, &v, 4);
      return u;
    };
    for (int64_t b = 0; b < plan.blocks; ++b) {
      for (int64_t e = first[b]; e + 1 < first[b + 1]; e += 2) {
        pairHi.push_back(offset[e]);
        pairLo.push_back(offset[e + 1]);
        const float* wh = wt + (b * k + tap[e]) * kRows;
        const float* wl = wt + (b * k + tap[e + 1]) * kRows;
        for (int r = 0; r < kRows; ++r) pairW.push_back((bits(wh[r]) & 0xffff0000u) | (bits(wl[r]) >> 16));
      }
      pairFirst[b + 1] = static_cast<int64_t>(pairHi.size());
    }
    plan.pairFirst = pairFirst.data();
    plan.pairHi = pairHi.data();
    plan.pairLo = pairLo.data();
    plan.pairW = pairW.data();
  }
  static const Tile floatTile = chooseSparseTile();
#ifdef OCTET_X86
  const Tile tile = pairs ? sparsePairTileAvx512 : floatTile;
#else
  const Tile tile = floatTile;
#endif
  const bool scratch = family() != Family::kPortable;
  forwardTasks(d, x, plan, threads, [&](const float* planes, int64_t n, int64_t b) {
    runBlock(plan, n, b, scratch, [&](int64_t f0) {
      tile(plan, planes, n, b, f0);
      return true;
    });
  });
}

bool directConvForwardLowp(const DirectConv& d, const DirectOperand& x, const DirectOperand& w, const LowpGemmArgs& accumulator, float* y, int threads) {
#ifdef OCTET_X86
  const CodecParams& acc = accumulator.acc;
  const bool wide = lowp::avx512Tiles();
  if (!emulatedTiles() || !accumulator.lut || acc.mantissaBits >= 23 || !acc.subnormalsKept || !acc.signedZero || !acc.signedNaN ||
      acc.rounding == kStochastic || !accumulator.exactProducts) {
    return false;
  }
  if (d.batch <= 0 || d.outChannels <= 0) return true;
  const int64_t k = d.channels * d.kernelH * d.kernelW;
  // The GEMM this is: C (outChannels x batch * P) = W (outChannels x k) col; its chunks and the
  // proof that no value leaves the fast range (as lowpGemm decides it).
  LowpGemmArgs g = accumulator;
  g.transA = g.transB = false;
  g.m = d.outChannels;
  g.n = d.batch * d.outH * d.outW;
  g.k = k;
  g.a = w.values;
  g.aCodes = w.codes;
  g.aLut = w.lut;
  g.aIsE5M2 = w.e5m2;
  g.b = nullptr;
  g.bCodes = nullptr;
  g.bColumns = nullptr;
  const std::vector<int64_t> ends = lowpChunkEnds(g);
  g.ends = ends.empty() ? nullptr : ends.data();
  g.endCount = static_cast<int64_t>(ends.size());
  float amaxX = 0.0f;
  for (int64_t n = 0; n < d.batch && amaxX == amaxX; ++n) {
    const int64_t at = n * d.xImageStride;
    const float a = lowpOperandAmax(x.values ? x.values + at : nullptr, x.codes ? x.codes + at : nullptr, x.lut, x.e5m2, d.channels * d.height * d.width, threads);
    amaxX = a != a ? a : std::max(amaxX, a);
  }
  const bool unchecked = lowpRangeProven(g, amaxX, threads);
  const Plan plan = prepareForward(d, w, y);
  std::vector<int64_t> offsets(static_cast<size_t>(k));
  for (int64_t t = 0; t < k; ++t) {
    const int64_t c = t / (d.kernelH * d.kernelW), i = (t / d.kernelW) % d.kernelH, j = t % d.kernelW;
    offsets[static_cast<size_t>(t)] = c * plan.planeStride + i * plan.wp + j;
  }
  const LowpPlan lp{&plan, offsets.data(), g.ends, g.endCount, lowp::fastRangeOf(acc)};
  std::atomic<bool> failed{false};
  forwardTasks(d, x, plan, threads, [&](const float* planes, int64_t n, int64_t b) {
    if (failed.load(std::memory_order_relaxed)) return;
    const bool ok = runBlock(plan, n, b, true, [&](int64_t f0) {
      if (failed.load(std::memory_order_relaxed)) return false;
      if (wide) return unchecked ? lowpTileAvx512<false>(lp, planes, n, b, f0) : lowpTileAvx512<true>(lp, planes, n, b, f0);
      return unchecked ? lowpTileAvx2<false>(lp, planes, n, b, f0) : lowpTileAvx2<true>(lp, planes, n, b, f0);
    });
    if (!ok) failed.store(true, std::memory_order_relaxed);
  });
  return !failed.load();
#else
  (void)d, (void)x, (void)w, (void)accumulator, (void)y, (void)threads;
  return false;
#endif
}

namespace {

// The weight gradient's tiles: V channel vectors and T taps per tile, the taps' offsets in a
// padded input plane, and zeroed running sums (in the calling thread's buffer).
struct GradLayout {
  GradPlan plan;
  std::vector<int64_t> offsets;
  int v, t;
  int64_t oBlocks;
};

void prepareGradient(const DirectConv& d, GradLayout& out) {
  const int64_t k = d.channels * d.kernelH * d.kernelW;
  const int64_t P = d.outH * d.outW, chunks = (d.outChannels + 15) / 16;
  const int V = chunks % 4 == 0 ? 4 : chunks % 2 == 0 ? 2 : 1;
  const int T = V == 4 ? 6 : V == 2 ? 8 : 16;
  const int64_t oBlocks = chunks / V, tapBlocks = (k + T - 1) / T;
  const int64_t wp = d.width + 2 * d.padW, hp = d.height + 2 * d.padH;
  const int64_t planeStride = (hp * wp + 15) / 16 * 16;
  out.offsets.assign(static_cast<size_t>(tapBlocks * T), 0);
  for (int64_t t = 0; t < k; ++t) {
    const int64_t c = t / (d.kernelH * d.kernelW), i = (t / d.kernelW) % d.kernelH, j = t % d.kernelW;
    out.offsets[static_cast<size_t>(t)] = c * planeStride + i * d.dilationH * wp + j * d.dilationW;
  }
  float* sums = tlsSums.get(static_cast<size_t>(oBlocks * tapBlocks * T * V * 16));
  std::memset(sums, 0, sizeof(float) * oBlocks * tapBlocks * T * V * 16);
  out.plan = GradPlan{&d, wp, planeStride, chunks, P, out.offsets.data(), k, tapBlocks, sums};
  out.v = V;
  out.t = T;
  out.oBlocks = oBlocks;
}

// Threads take fixed shares of the tiles and run every image in order through theirs: each sum
// is one chain on one thread, and an image's data stays in cache across a share's tiles. The
// images are laid out a group at a time (about 4 MB, at least one image), the threads splitting
// that work: the input planes padded, and the output gradient turned channel-last, 16 channels a
// chunk ([chunks][P][16] per image).
// run(planes, grads, n, tile) for tiles [0, tiles).
// `cuts` (parts + 1 tile indices, optional): where the threads' shares of the tiles begin, for
// tiles of unequal cost; by default equal counts.
#ifdef OCTET_X86
// pairPlane's words 16 at a time while x[i + 16] lies inside; returns where it stopped.
__attribute__((target("avx512f"))) int64_t pairPlaneAvx512(const float* x, uint32_t* out, int64_t n) {
  const __m512i high = _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u));
  int64_t i = 0;
  for (; i + 17 <= n; i += 16) {
    const __m512i a = _mm512_castps_si512(_mm512_loadu_ps(x + i)), b = _mm512_castps_si512(_mm512_loadu_ps(x + i + 1));
    _mm512_storeu_si512(out + i, _mm512_ternarylogic_epi32(a, high, _mm512_srli_epi32(b, 16), 0xEA));
  }
  return i;
}
#endif

// out[i] = (bits(x[i]) & 0xffff0000) | (bits(x[i + 1]) >> 16), x[n] taken as 0.
void pairPlane(const float* x, uint32_t* out, int64_t n) {
  int64_t i = 0;
#ifdef OCTET_X86
  if (cpuHasAvx512()) i = pairPlaneAvx512(x, out, n);
#endif
  uint32_t bits[2];
  for (; i < n; ++i) {
    std::memcpy(bits, x + i, 4);
    if (i + 1 < n) std::memcpy(bits + 1, x + i + 1, 4);
    else bits[1] = 0;
    out[i] = (bits[0] & 0xffff0000u) | (bits[1] >> 16);
  }
}

// Images a group of runGradientTiles holds.
int64_t gradGroup(const GradPlan& p) {
  const DirectConv& d = *p.d;
  const int64_t planesFloats = d.channels * p.planeStride, gradsFloats = p.chunks * p.p * 16;
  return std::clamp<int64_t>((int64_t(1) << 20) / (planesFloats + gradsFloats), 1, d.batch);
}

// With `pairPlanes`, each padded plane is followed, gradGroup x channels x planeStride floats
// further on, by its pair plane: word i = (bits(x[i]) & 0xffff0000) | (bits(x[i + 1]) >> 16), the
// bfloat16 pair of two neighbours (exact where the values are bfloat16 values), x past the plane 0.
template <class Run>
void runGradientTiles(const GradLayout& l, int64_t tiles, const DirectOperand& dy, const DirectOperand& x, int threads, Run run,
                      const std::vector<int64_t>* cuts = nullptr, bool pairPlanes = false) {
  const GradPlan& p = l.plan;
  const DirectConv& d = *p.d;
  const int64_t parts = cuts ? static_cast<int64_t>(cuts->size()) - 1 : std::min<int64_t>(std::max(threads, 1), tiles);
  const int64_t planesFloats = d.channels * p.planeStride, gradsFloats = p.chunks * p.p * 16;
  const int64_t group = gradGroup(p);
  float* planes = tlsPadded.get(static_cast<size_t>(group * planesFloats * (pairPlanes ? 2 : 1)));
  float* grads = tlsGradients.get(static_cast<size_t>(group * gradsFloats));
  for (int64_t n0 = 0; n0 < d.batch; n0 += group) {
    const int64_t count = std::min(group, d.batch - n0);
    parallelFor(count * d.channels, threads, [&](int64_t q) {
      float* plane = planes + (q / d.channels) * planesFloats + (q % d.channels) * p.planeStride;
      padPlane(d, x, n0 * d.channels + q, p.wp, p.planeStride, plane);
      if (pairPlanes) pairPlane(plane, reinterpret_cast<uint32_t*>(plane + group * planesFloats), p.planeStride);
    });
    parallelFor(count * p.chunks, threads, [&](int64_t u) {
      const int64_t n = n0 + u / p.chunks, chunk = u % p.chunks;
      const int nc = static_cast<int>(std::min<int64_t>(16, d.outChannels - chunk * 16));
      const int64_t at = n * d.yImageStride + chunk * 16 * p.p;
      const float* src;
      if (dy.codes) {
        float* decoded = tlsPlanes.get(static_cast<size_t>(16 * p.p));
        decodeCodes(dy.codes + at, dy.lut, dy.e5m2, nc * p.p, decoded);
        src = decoded;
      } else {
        src = dy.values + at;
      }
      channelsLast16Best(src, p.p, p.p, nc, grads + (u / p.chunks) * gradsFloats + chunk * p.p * 16);
    });
    parallelFor(parts, threads, [&](int64_t part) {
      const int64_t first = cuts ? (*cuts)[static_cast<size_t>(part)] : tiles * part / parts;
      const int64_t last = cuts ? (*cuts)[static_cast<size_t>(part) + 1] : tiles * (part + 1) / parts;
      for (int64_t i = 0; i < count; ++i)
        for (int64_t u = first; u < last; ++u) run(planes + i * planesFloats, grads + i * gradsFloats, n0 + i, u);
    });
  }
}

// dw[o][t] from the tiles' sums.
void storeGradient(const GradLayout& l, const DirectConv& d, const float* sums, float* dw) {
  const int64_t k = l.plan.k, V = l.v, T = l.t;
  for (int64_t o = 0; o < d.outChannels; ++o) {
    const int64_t ob = o / (V * 16), lane = o % (V * 16);
    for (int64_t t = 0; t < k; ++t) dw[o * k + t] = sums[((ob * l.plan.tapBlocks + t / T) * T + t % T) * V * 16 + lane];
  }
}

#ifdef OCTET_X86
// ---- The weight gradient under an emulated accumulator (AVX-512; AVX2 below) ----

struct GradLowpPlan {
  const GradPlan* plan;
  const int64_t* ends;  // the nonempty chunks' ends along q = n * P + p, or null
  int64_t endCount;
  lowp::FastRange range;
  float* totals;  // with chunks: each tile's running totals (plan->sums holds the chunk partials)
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// Tile (ob, tb) over image n under lowpGemm's fast nearest rounding: each addition s = fma(dy, x,
// s) rounded, chunk partials folded into the totals where q reaches a chunk's end. False where a
// rounded value left the format's normal range (kCheck).
template <int V, int T, bool kCheck>
__attribute__((target("avx512f"))) bool gradLowpTileAvx512(const GradLowpPlan& lp, const float* image, const float* grads, int64_t n, int64_t ob, int64_t tb) {
  const GradPlan& p = *lp.plan;
  const DirectConv& d = *p.d;
  const int64_t at0 = (ob * p.tapBlocks + tb) * T * V * 16;
  float* partials = p.sums + at0;
  __m512 acc[T][V];
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v) acc[t][v] = _mm512_loadu_ps(partials + (t * V + v) * 16);
  const __m512 splitter = _mm512_set1_ps(lp.range.splitter);
  __m512i worstHigh = _mm512_set1_epi32(-1), worstLow = _mm512_set1_epi32(-1);
  int64_t off[T];
  for (int t = 0; t < T; ++t) off[t] = p.offsets[tb * T + t];
  const float* base = image;
  const float* dyImage = grads + ob * V * p.p * 16;
  const int64_t q0 = n * p.p;
  int64_t run = lp.ends ? std::upper_bound(lp.ends, lp.ends + lp.endCount, q0) - lp.ends : 0;
  int64_t pos = 0, oy = 0, ox = 0;
  while (pos < p.p) {
    const int64_t segEnd = lp.ends ? std::min<int64_t>(p.p, lp.ends[run] - q0) : p.p;
    for (; pos < segEnd; ++pos) {
      const float* at = base + oy * d.strideH * p.wp + ox * d.strideW;
      const float* g = dyImage + pos * 16;
      __m512 dv[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) dv[v] = _mm512_loadu_ps(g + v * p.p * 16);
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        const __m512 xv = _mm512_set1_ps(at[off[t]]);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[t][v] = roundedAvx512<kCheck>(_mm512_fmadd_ps(dv[v], xv, acc[t][v]), splitter, worstHigh, worstLow);
      }
      if (++ox == d.outW) {
        ox = 0;
        ++oy;
      }
    }
    if (lp.ends && q0 + pos == lp.ends[run]) {
      float* totals = lp.totals + at0;
      for (int t = 0; t < T; ++t)
        for (int v = 0; v < V; ++v) {
          float* total = totals + (t * V + v) * 16;
          _mm512_storeu_ps(total, roundedAvx512<kCheck>(_mm512_add_ps(_mm512_loadu_ps(total), acc[t][v]), splitter, worstHigh, worstLow));
          acc[t][v] = _mm512_setzero_ps();
        }
      ++run;
    }
  }
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(partials + (t * V + v) * 16, acc[t][v]);
  return !kCheck || (_mm512_cmpgt_epi32_mask(worstHigh, _mm512_set1_epi32(static_cast<int>(lp.range.maxBitsLess1))) == 0 &&
                     _mm512_cmplt_epu32_mask(worstLow, _mm512_set1_epi32(static_cast<int>(lp.range.minBitsLess1))) == 0);
}
#pragma GCC diagnostic pop

using GradLowpTile = bool (*)(const GradLowpPlan&, const float*, const float*, int64_t, int64_t, int64_t);

// The same tile on AVX2, in gradTileAvx2's passes (L 8-lane groups by TT taps, 12 chains): each
// pass walks the image's positions with the chunk ends, folding its partials into the totals.
template <int V, int T, int L, int TT, bool kCheck>
__attribute__((target("avx2,fma"), always_inline)) inline void gradLowpPassAvx2(const GradLowpPlan& lp, const float* image, const float* grads, int64_t n, int64_t ob,
                                                                              int64_t tb, int u0, int t0, __m256i& worstHigh, __m256i& worstLow) {
  const GradPlan& p = *lp.plan;
  const DirectConv& d = *p.d;
  const int64_t at0 = (ob * p.tapBlocks + tb) * T * V * 16;
  float* partials = p.sums + at0;
  __m256 acc[TT][L];
  for (int t = 0; t < TT; ++t)
    for (int u = 0; u < L; ++u) acc[t][u] = _mm256_loadu_ps(partials + (t0 + t) * V * 16 + (u0 + u) * 8);
  const __m256 splitter = _mm256_set1_ps(lp.range.splitter);
  int64_t off[TT];
  for (int t = 0; t < TT; ++t) off[t] = p.offsets[tb * T + t0 + t];
  int64_t lane[L];
  laneOffsetsAvx2<L>(p, u0, lane);
  const float* dyImage = grads + ob * V * p.p * 16;
  const int64_t q0 = n * p.p;
  int64_t run = lp.ends ? std::upper_bound(lp.ends, lp.ends + lp.endCount, q0) - lp.ends : 0;
  int64_t pos = 0, oy = 0, ox = 0;
  while (pos < p.p) {
    const int64_t segEnd = lp.ends ? std::min<int64_t>(p.p, lp.ends[run] - q0) : p.p;
    for (; pos < segEnd; ++pos) {
      const float* at = image + oy * d.strideH * p.wp + ox * d.strideW;
      const float* g = dyImage + pos * 16;
      __m256 dv[L];
#pragma GCC unroll 4
      for (int u = 0; u < L; ++u) dv[u] = _mm256_loadu_ps(g + lane[u]);
#pragma GCC unroll 6
      for (int t = 0; t < TT; ++t) {
        const __m256 xv = _mm256_broadcast_ss(at + off[t]);
#pragma GCC unroll 4
        for (int u = 0; u < L; ++u) acc[t][u] = roundedAvx2<kCheck>(_mm256_fmadd_ps(dv[u], xv, acc[t][u]), splitter, worstHigh, worstLow);
      }
      if (++ox == d.outW) {
        ox = 0;
        ++oy;
      }
    }
    if (lp.ends && q0 + pos == lp.ends[run]) {
      float* totals = lp.totals + at0;
      for (int t = 0; t < TT; ++t)
        for (int u = 0; u < L; ++u) {
          float* total = totals + (t0 + t) * V * 16 + (u0 + u) * 8;
          _mm256_storeu_ps(total, roundedAvx2<kCheck>(_mm256_add_ps(_mm256_loadu_ps(total), acc[t][u]), splitter, worstHigh, worstLow));
          acc[t][u] = _mm256_setzero_ps();
        }
      ++run;
    }
  }
  for (int t = 0; t < TT; ++t)
    for (int u = 0; u < L; ++u) _mm256_storeu_ps(partials + (t0 + t) * V * 16 + (u0 + u) * 8, acc[t][u]);
}

template <int V, int T, bool kCheck>
__attribute__((target("avx2,fma"))) bool gradLowpTileAvx2(const GradLowpPlan& lp, const float* image, const float* grads, int64_t n, int64_t ob, int64_t tb) {
  constexpr int L = 2 * V < 4 ? 2 * V : 4, TT = 12 / L;
  __m256i worstHigh = _mm256_set1_epi32(-1), worstLow = _mm256_set1_epi32(-1);
  for (int u0 = 0; u0 < 2 * V; u0 += L) {
    int t0 = 0;
    for (; t0 + TT <= T; t0 += TT) gradLowpPassAvx2<V, T, L, TT, kCheck>(lp, image, grads, n, ob, tb, u0, t0, worstHigh, worstLow);
    if constexpr (T % TT != 0) gradLowpPassAvx2<V, T, L, T % TT, kCheck>(lp, image, grads, n, ob, tb, u0, t0, worstHigh, worstLow);
  }
  return !kCheck || inRangeAvx2(worstHigh, worstLow, lp.range);
}

GradLowpTile gradLowpTileFor(int v, bool check) {
  if (family() != Family::kAvx512) {
    if (check) return v == 4 ? gradLowpTileAvx2<4, 6, true> : v == 2 ? gradLowpTileAvx2<2, 8, true> : gradLowpTileAvx2<1, 16, true>;
    return v == 4 ? gradLowpTileAvx2<4, 6, false> : v == 2 ? gradLowpTileAvx2<2, 8, false> : gradLowpTileAvx2<1, 16, false>;
  }
  if (check) return v == 4 ? gradLowpTileAvx512<4, 6, true> : v == 2 ? gradLowpTileAvx512<2, 8, true> : gradLowpTileAvx512<1, 16, true>;
  return v == 4 ? gradLowpTileAvx512<4, 6, false> : v == 2 ? gradLowpTileAvx512<2, 8, false> : gradLowpTileAvx512<1, 16, false>;
}
#endif

#ifdef OCTET_X86
// ---- The weight gradient of a weight pruned in blocks (AVX-512 and AVX2) ----

// A tile: up to kSparseTaps columns of one block column (its slots padded with the last column,
// whose extra sums are discarded) by up to kSparseSlices slices of 8 output channels of the block
// rows that store that block column, two slices to a vector (16 lanes: blocks a multiple of 16
// rows tall take both halves from one block row): each column's input value, a broadcast, serves
// every slice.
constexpr int kSparseTaps = 8;
constexpr int kSparseSlices = 6;
constexpr int kSparseSums = kSparseTaps * kSparseSlices * 8;

// Item u: `slices` slices from channels o0[0], o0[1], .. by `count` columns (slots u * kSparseTaps ..).
struct SparseGradItem {
  int64_t o0[kSparseSlices];
  int slices, count;
};

struct SparseGradPlan {
  const GradPlan* plan;
  const int64_t* offsets;  // per slot: the column's input offset in the padded planes
  const SparseGradItem* items;
  float* sums;  // per item kSparseSums floats ([pair][column][16 lanes]): the chains between images
  int64_t pairOffset = 0;  // floats from a padded plane to its pair plane (runGradientTiles' pairPlanes)
};

// Where output channel o's lanes of the channel-last dY start: its vector of 16 channels, its lane.
inline const float* sliceRow(const GradPlan& p, const float* grads, int64_t o) { return grads + (o / 16) * p.p * 16 + o % 16; }

// Where slice v's sums of column t start among an item's (a tile of T columns): vector v / 2, half v % 2.
inline int64_t sliceSum(int64_t T, int64_t v, int64_t t) { return (v / 2) * T * 16 + t * 16 + (v % 2) * 8; }

// Two slices' 8 lanes each (at lo and hi) as one vector's bits.
__attribute__((target("avx512f"), always_inline)) inline __m512i slicePair(const float* lo, const float* hi) {
  const __m512d low = _mm512_castpd256_pd512(_mm256_loadu_pd(reinterpret_cast<const double*>(lo)));
  return _mm512_castpd_si512(_mm512_insertf64x4(low, _mm256_loadu_pd(reinterpret_cast<const double*>(hi)), 1));
}

// A sparse tile's registers: its chains, its columns' input offsets, and its slices' rows of the
// channel-last dY (lo, hi: the lower and upper 8 lanes of each vector).
template <int P, int T>
struct SparseGradState {
  __m512 acc[T][P];
  int64_t off[T];
  const float* lo[P];
  const float* hi[P];
};

// A sparse tile's start: the chains as the sums hold them, the offsets, the dY rows.
template <int P, int T>
__attribute__((target("avx512f"), always_inline)) inline void sparseGradBegin(const SparseGradPlan& sp, const float* grads, int64_t u, SparseGradState<P, T>& st) {
  const GradPlan& p = *sp.plan;
  const SparseGradItem& it = sp.items[u];
  const float* sums = sp.sums + u * kSparseSums;
  for (int v = 0; v < P; ++v)
    for (int t = 0; t < T; ++t) st.acc[t][v] = _mm512_loadu_ps(sums + (v * T + t) * 16);
  for (int t = 0; t < T; ++t) st.off[t] = sp.offsets[u * kSparseTaps + t];
  for (int v = 0; v < P; ++v) {
    const int64_t a = it.o0[2 * v], b = 2 * v + 1 < it.slices ? it.o0[2 * v + 1] : a;
    st.lo[v] = sliceRow(p, grads, a);
    st.hi[v] = sliceRow(p, grads, b);
  }
}

// A sparse tile's end: its chains back to the sums, for the next image.
template <int P, int T>
__attribute__((target("avx512f"), always_inline)) inline void sparseGradEnd(const SparseGradPlan& sp, int64_t u, const SparseGradState<P, T>& st) {
  float* sums = sp.sums + u * kSparseSums;
  for (int v = 0; v < P; ++v)
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(sums + (v * T + t) * 16, st.acc[t][v]);
}

// Item u over one image: the dense tile's chains (acc = fma(dy, x, acc) over the image's
// positions in order) for the item's slices (P vectors of two) and T columns only. Past an odd
// count of slices the last vector's upper half repeats its lower one (discarded).
template <int P, int T>
__attribute__((target("avx512f"))) void sparseGradTile(const SparseGradPlan& sp, const float* image, const float* grads, int64_t u) {
  const GradPlan& p = *sp.plan;
  const DirectConv& d = *p.d;
  SparseGradState<P, T> st;
  sparseGradBegin<P, T>(sp, grads, u, st);
  for (int64_t oy = 0; oy < d.outH; ++oy) {
    const float* row = image + oy * d.strideH * p.wp;
    const int64_t q0 = oy * d.outW * 16;
    for (int64_t ox = 0; ox < d.outW; ++ox) {
      const float* at = row + ox * d.strideW;
      const int64_t q = q0 + ox * 16;
      __m512 dv[P];
#pragma GCC unroll 4
      for (int v = 0; v < P; ++v) dv[v] = _mm512_castsi512_ps(slicePair(st.lo[v] + q, st.hi[v] + q));
      gradTapsAvx512<T, P>(st.acc, dv, at, st.off);
    }
  }
  sparseGradEnd<P, T>(sp, u, st);
}


// sparseGradTile on bfloat16 pairs (stride 1 along rows, output rows of even width): positions
// (ox, ox + 1) of a row as one step, dY's two vectors joined into pair words (ox in the high half)
// and each column's input pair one word of the pair plane, broadcast; one VDPBF16PS per
// accumulator adds the high half's product and then the low one's, each as a fused multiply-add:
// the float tile's chain, two steps an instruction, where pairs apply (see
// directConvWeightGradientSparse).
template <int P, int T>
__attribute__((target("avx512f,avx512bf16"))) void sparseGradPairTile(const SparseGradPlan& sp, const float* image, const float* grads, int64_t u) {
  const GradPlan& p = *sp.plan;
  const DirectConv& d = *p.d;
  SparseGradState<P, T> st;
  sparseGradBegin<P, T>(sp, grads, u, st);
  const uint32_t* pairs = reinterpret_cast<const uint32_t*>(image + sp.pairOffset);
  const __m512i high = _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u));
  for (int64_t oy = 0; oy < d.outH; ++oy) {
    const uint32_t* row = pairs + oy * d.strideH * p.wp;
    const int64_t q0 = oy * d.outW * 16;
    for (int64_t ox = 0; ox < d.outW; ox += 2) {
      const uint32_t* at = row + ox;
      const int64_t q = q0 + ox * 16;
      __m512bh dv[P];
#pragma GCC unroll 4
      for (int v = 0; v < P; ++v) {
        dv[v] = (__m512bh)_mm512_ternarylogic_epi32(slicePair(st.lo[v] + q, st.hi[v] + q), high, _mm512_srli_epi32(slicePair(st.lo[v] + q + 16, st.hi[v] + q + 16), 16), 0xEA);
      }
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m512bh xv = (__m512bh)_mm512_set1_epi32(static_cast<int32_t>(at[st.off[t]]));
#pragma GCC unroll 4
        for (int v = 0; v < P; ++v) st.acc[t][v] = _mm512_dpbf16_ps(st.acc[t][v], dv[v], xv);
      }
    }
  }
  sparseGradEnd<P, T>(sp, u, st);
}

// sparseGradTile on AVX2, one slice a vector: slices [s0, s0 + S) by columns [t0, t0 + TT) of
// item u (of a tile T columns wide) as one pass over the image, their chains in registers (at most
// 12) and in the sums' places (sliceSum): each chain the same fused multiply-adds in the same order
// as the AVX-512 tile's lanes.
template <int S, int TT>
__attribute__((target("avx2,fma"), always_inline)) inline void sparseGradPassAvx2(const SparseGradPlan& sp, const float* image, const float* grads, int64_t u, int s0,
                                                                                int t0, int T) {
  const GradPlan& p = *sp.plan;
  const DirectConv& d = *p.d;
  const SparseGradItem& it = sp.items[u];
  float* sums = sp.sums + u * kSparseSums;
  __m256 acc[TT][S];
  const float* rows[S];
  int64_t off[TT];
  for (int v = 0; v < S; ++v) {
    const int slice = s0 + v;
    rows[v] = sliceRow(p, grads, it.o0[slice]);
    for (int t = 0; t < TT; ++t) acc[t][v] = _mm256_loadu_ps(sums + sliceSum(T, slice, t0 + t));
  }
  for (int t = 0; t < TT; ++t) off[t] = sp.offsets[u * kSparseTaps + t0 + t];
  for (int64_t oy = 0; oy < d.outH; ++oy) {
    const float* row = image + oy * d.strideH * p.wp;
    const int64_t q0 = oy * d.outW * 16;
    for (int64_t ox = 0; ox < d.outW; ++ox) {
      const float* at = row + ox * d.strideW;
      const int64_t q = q0 + ox * 16;
      __m256 dv[S];
#pragma GCC unroll 3
      for (int v = 0; v < S; ++v) dv[v] = _mm256_loadu_ps(rows[v] + q);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) {
        const __m256 xv = _mm256_broadcast_ss(at + off[t]);
#pragma GCC unroll 3
        for (int v = 0; v < S; ++v) acc[t][v] = _mm256_fmadd_ps(dv[v], xv, acc[t][v]);
      }
    }
  }
  for (int v = 0; v < S; ++v)
    for (int t = 0; t < TT; ++t) _mm256_storeu_ps(sums + sliceSum(T, s0 + v, t0 + t), acc[t][v]);
}

// Item u over one image on AVX2 (T = 4 or 8 columns): a lone slice all its columns in one pass
// (4 or 8 chains), else the slices in groups of 3 or 2 by 4 columns at a time.
template <int T>
__attribute__((target("avx2,fma"))) void sparseGradTileAvx2(const SparseGradPlan& sp, const float* image, const float* grads, int64_t u) {
  const int slices = sp.items[u].slices;
  if (slices == 1) {
    sparseGradPassAvx2<1, T>(sp, image, grads, u, 0, 0, T);
    return;
  }
  for (int s0 = 0; s0 < slices;) {
    const int left = slices - s0, group = left == 4 || left == 2 ? 2 : 3;  // 2..6 slices: 2, 3, 2+2, 3+2, 3+3
    for (int t0 = 0; t0 < T; t0 += 4) {
      if (group == 3) sparseGradPassAvx2<3, 4>(sp, image, grads, u, s0, t0, T);
      else sparseGradPassAvx2<2, 4>(sp, image, grads, u, s0, t0, T);
    }
    s0 += group;
  }
}

using SparseGradTile = void (*)(const SparseGradPlan&, const float*, const float*, int64_t);

// The tile for an item: its slices in pairs, 4 columns or 8; on bfloat16 pairs of positions where
// `pairs`; on AVX2 one slice a vector.
SparseGradTile sparseGradTileFor(int slices, int count, bool pairs) {
  if (family() == Family::kAvx2) return count <= 4 ? sparseGradTileAvx2<4> : sparseGradTileAvx2<kSparseTaps>;
  const int vectors = (slices + 1) / 2;
  if (pairs) {
    if (count <= 4) return vectors == 1 ? sparseGradPairTile<1, 4> : vectors == 2 ? sparseGradPairTile<2, 4> : sparseGradPairTile<3, 4>;
    return vectors == 1 ? sparseGradPairTile<1, 8> : vectors == 2 ? sparseGradPairTile<2, 8> : sparseGradPairTile<3, 8>;
  }
  if (count <= 4) return vectors == 1 ? sparseGradTile<1, 4> : vectors == 2 ? sparseGradTile<2, 4> : sparseGradTile<3, 4>;
  return vectors == 1 ? sparseGradTile<1, 8> : vectors == 2 ? sparseGradTile<2, 8> : sparseGradTile<3, 8>;
}
#endif

}  // namespace

void directConvWeightGradient(const DirectConv& d, const DirectOperand& dy, const DirectOperand& x, float* dw, int threads) {
  const int64_t k = d.channels * d.kernelH * d.kernelW;
  if (d.outChannels <= 0 || k <= 0) return;
  GradLayout l;
  prepareGradient(d, l);
  const GradTile tile = gradTileFor(l.v);
  const int64_t tapBlocks = l.plan.tapBlocks;
  runGradientTiles(l, l.oBlocks * tapBlocks, dy, x, threads, [&](const float* planes, const float* grads, int64_t n, int64_t u) {
    tile(l.plan, planes, grads, n, u / tapBlocks, u % tapBlocks);
  });
  storeGradient(l, d, l.plan.sums, dw);
}

bool directConvWeightGradientLowp(const DirectConv& d, const DirectOperand& dy, const DirectOperand& x, const LowpGemmArgs& accumulator, float* dw, int threads) {
#ifdef OCTET_X86
  const CodecParams& acc = accumulator.acc;
  if (!emulatedTiles() || !accumulator.lut || acc.mantissaBits >= 23 || !acc.subnormalsKept || !acc.signedZero || !acc.signedNaN ||
      acc.rounding == kStochastic || !accumulator.exactProducts) {
    return false;
  }
  const int64_t k = d.channels * d.kernelH * d.kernelW, P = d.outH * d.outW;
  if (d.outChannels <= 0 || k <= 0) return true;
  // The GEMM this is: dW (outChannels x k) = dY (outChannels x batch * P) col^T; its chunks run
  // along batch * P. The range proof from the operands' largest magnitudes.
  LowpGemmArgs g = accumulator;
  g.m = d.outChannels;
  g.n = k;
  g.k = d.batch * P;
  const std::vector<int64_t> ends = lowpChunkEnds(g);
  g.ends = ends.empty() ? nullptr : ends.data();
  g.endCount = static_cast<int64_t>(ends.size());
  auto amaxOf = [&](const DirectOperand& o, int64_t stride, int64_t count) {
    float worst = 0.0f;
    for (int64_t n = 0; n < d.batch && worst == worst; ++n) {
      const int64_t at = n * stride;
      const float a = lowpOperandAmax(o.values ? o.values + at : nullptr, o.codes ? o.codes + at : nullptr, o.lut, o.e5m2, count, threads);
      worst = a != a ? a : std::max(worst, a);
    }
    return worst;
  };
  const double bound = static_cast<double>(g.k) * amaxOf(dy, d.yImageStride, d.outChannels * P) * amaxOf(x, d.xImageStride, d.channels * d.height * d.width);
  const bool unchecked = lowpRangeProvenBy(g, bound);
  GradLayout l;
  prepareGradient(d, l);
  const int64_t sums = l.oBlocks * l.plan.tapBlocks * l.t * l.v * 16;
  float* totals = tlsTotals.get(static_cast<size_t>(sums));
  std::memset(totals, 0, sizeof(float) * sums);
  const GradLowpPlan lp{&l.plan, g.ends, g.endCount, lowp::fastRangeOf(acc), totals};
  const GradLowpTile tile = gradLowpTileFor(l.v, !unchecked);
  std::atomic<bool> failed{false};
  const int64_t tapBlocks = l.plan.tapBlocks;
  runGradientTiles(l, l.oBlocks * tapBlocks, dy, x, threads, [&](const float* planes, const float* grads, int64_t n, int64_t u) {
    if (!failed.load(std::memory_order_relaxed) && !tile(lp, planes, grads, n, u / tapBlocks, u % tapBlocks)) failed.store(true, std::memory_order_relaxed);
  });
  if (failed.load()) return false;
  storeGradient(l, d, g.ends ? totals : l.plan.sums, dw);
  return true;
#else
  (void)d, (void)dy, (void)x, (void)accumulator, (void)dw, (void)threads;
  return false;
#endif
}

bool directConvWeightGradientSparse(const DirectConv& d, const DirectOperand& dy, const DirectOperand& x, const int32_t* rowPtr, const int32_t* colIdx,
                                    int64_t br, int64_t bc, float* dw, int threads) {
#ifdef OCTET_X86
  if (family() == Family::kPortable || br <= 0 || br % 8 != 0 || bc <= 0) return false;
  const int64_t k = d.channels * d.kernelH * d.kernelW, P = d.outH * d.outW;
  if (d.outChannels <= 0 || k <= 0) return true;
  const int64_t blockRows = (d.outChannels + br - 1) / br, blockCols = (k + bc - 1) / bc;
  constexpr int64_t L = 8;  // output channels a slice
  const int64_t wp = d.width + 2 * d.padW, hp = d.height + 2 * d.padH;
  const int64_t planeStride = (hp * wp + 15) / 16 * 16;
  // Each stored block's slices (o0 and its index s in colIdx), by block column; the tiles take a
  // block column's slices kSparseSlices at a time by its columns kSparseTaps at a time.
  const int64_t slicesPerRow = br / L, chunksPerBlock = (bc + kSparseTaps - 1) / kSparseTaps;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> slicesOf(static_cast<size_t>(blockCols));
  for (int64_t q = 0; q < blockRows; ++q)
    for (int32_t s = rowPtr[q]; s < rowPtr[q + 1]; ++s)
      for (int64_t o0 = q * br; o0 < std::min(d.outChannels, (q + 1) * br); o0 += L) slicesOf[static_cast<size_t>(colIdx[s])].push_back({o0, s});
  std::vector<int64_t> offsets;
  std::vector<SparseGradItem> items;
  // Where the sums of (stored block s, its slice, its chunk of columns) start: column t of it at
  // + 16 t, row r at + r.
  std::vector<int64_t> sumAt(static_cast<size_t>(rowPtr[blockRows] * slicesPerRow * chunksPerBlock), -1);
  for (int64_t pc = 0; pc < blockCols; ++pc) {
    const std::vector<std::pair<int64_t, int64_t>>& slices = slicesOf[static_cast<size_t>(pc)];
    const int64_t c0 = pc * bc, c1 = std::min(k, c0 + bc);
    for (size_t f = 0; f < slices.size(); f += kSparseSlices) {
      for (int64_t t0 = c0; t0 < c1; t0 += kSparseTaps) {
        SparseGradItem it{};
        it.slices = static_cast<int>(std::min<size_t>(kSparseSlices, slices.size() - f));
        it.count = static_cast<int>(std::min<int64_t>(kSparseTaps, c1 - t0));
        const int T = it.count <= 4 ? 4 : kSparseTaps;
        for (int v = 0; v < it.slices; ++v) {
          const auto [o0, s] = slices[f + static_cast<size_t>(v)];
          it.o0[v] = o0;
          const int64_t slice = (o0 % br) / L, chunk = (t0 - c0) / kSparseTaps;
          sumAt[static_cast<size_t>((s * slicesPerRow + slice) * chunksPerBlock + chunk)] =
              static_cast<int64_t>(items.size()) * kSparseSums + sliceSum(T, v, 0);
        }
        items.push_back(it);
        for (int t = 0; t < kSparseTaps; ++t) {
          const int64_t c = t0 + std::min(t, it.count - 1);
          const int64_t ch = c / (d.kernelH * d.kernelW), i = (c / d.kernelW) % d.kernelH, j = c % d.kernelW;
          offsets.push_back(ch * planeStride + i * d.dilationH * wp + j * d.dilationW);
        }
      }
    }
  }
  if (items.empty()) return true;
  const int64_t tiles = static_cast<int64_t>(items.size());
  float* sums = tlsSums.get(static_cast<size_t>(tiles * kSparseSums));
  std::memset(sums, 0, sizeof(float) * tiles * kSparseSums);
  GradLayout l;
  l.plan = GradPlan{&d, wp, planeStride, (d.outChannels + 15) / 16, P, nullptr, k, 0, sums};
  // Two positions an instruction (bfloat16 pairs) where that is the float tile's chain: both
  // operands one-byte codes whose values are exact in bfloat16 and whose products and sums can be
  // neither denormal nor infinite (pairProductsExact over the batch's chain), no Inf or NaN read,
  // stride 1 along rows and output rows of even width (a pair is two neighbours of a row).
  bool pairs = false;
  if (family() == Family::kAvx512 && dy.codes && x.codes && dy.lut && x.lut && d.strideW == 1 && d.outW % 2 == 0 && gemm_detail::bf16PairsEnabled()) {
    const TableFacts fy = tableFacts(dy.lut, 256), fx = tableFacts(x.lut, 256);
    pairs = pairProductsExact(fy, fx, d.batch * P);
    for (int64_t n = 0; pairs && n < d.batch; ++n) {
      pairs = !mayReadNonFinite(dy.codes + n * d.yImageStride, d.outChannels * P, fy) &&
              !mayReadNonFinite(x.codes + n * d.xImageStride, d.channels * d.height * d.width, fx);
    }
  }
  if (pairs) noteBf16PairProduct();
  SparseGradPlan sp{&l.plan, offsets.data(), items.data(), sums};
  if (pairs) sp.pairOffset = gradGroup(l.plan) * d.channels * planeStride;
  std::vector<SparseGradTile> tile(items.size());
  for (size_t u = 0; u < items.size(); ++u) tile[u] = sparseGradTileFor(items[u].slices, items[u].count, pairs);
  // The threads' shares by cost (a tile's vectors times its columns), not by count: a block
  // column stored by six block rows costs three times one stored by one or two.
  const int64_t parts = std::min<int64_t>(std::max(threads, 1), tiles);
  std::vector<int64_t> cost(static_cast<size_t>(tiles) + 1, 0);
  for (int64_t u = 0; u < tiles; ++u) {
    const SparseGradItem& it = items[static_cast<size_t>(u)];
    cost[static_cast<size_t>(u) + 1] = cost[static_cast<size_t>(u)] + ((it.slices + 1) / 2) * (it.count <= 4 ? 4 : kSparseTaps) + 2;
  }
  std::vector<int64_t> cuts(static_cast<size_t>(parts) + 1, tiles);
  cuts[0] = 0;
  for (int64_t part = 1, u = 0; part < parts; ++part) {
    while (u < tiles && cost[static_cast<size_t>(u)] * parts < cost[static_cast<size_t>(tiles)] * part) ++u;
    cuts[static_cast<size_t>(part)] = u;
  }
  runGradientTiles(l, tiles, dy, x, threads, [&](const float* planes, const float* grads, int64_t, int64_t u) { tile[static_cast<size_t>(u)](sp, planes, grads, u); }, &cuts,
                   pairs);
  // Row by row, left to right (each row's stored entries written while its lines are in cache).
  for (int64_t o = 0; o < d.outChannels; ++o) {
    const int64_t q = o / br, slice = (o % br) / L, r = o % L;
    float* row = dw + o * k;
    for (int32_t s = rowPtr[q]; s < rowPtr[q + 1]; ++s) {
      const int64_t c0 = static_cast<int64_t>(colIdx[s]) * bc, c1 = std::min(k, c0 + bc);
      for (int64_t chunk = 0; c0 + chunk * kSparseTaps < c1; ++chunk) {
        const float* at = sums + sumAt[static_cast<size_t>((s * slicesPerRow + slice) * chunksPerBlock + chunk)] + r;
        const int64_t t0 = c0 + chunk * kSparseTaps, count = std::min<int64_t>(kSparseTaps, c1 - t0);
        for (int64_t t = 0; t < count; ++t) row[t0 + t] = at[t * 16];
      }
    }
  }
  return true;
#else
  (void)d, (void)dy, (void)x, (void)rowPtr, (void)colIdx, (void)br, (void)bc, (void)dw, (void)threads;
  return false;
#endif
}

}  // namespace octet
