#include "block_sparse.h"

#include <algorithm>
#include <cmath>

#include "cpu.h"
#include "parallel.h"

namespace octet {
namespace {

// Columns of C one work item covers (the rows of X it reads stay in L2 across its tiles).
constexpr int64_t kChunkCols = 512;

// Rows [r0, r0 + rows) of block row q, columns [j0, j1): plain loops (every build).
void tileScalar(const BsrGemmArgs& g, int64_t q, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  const int64_t blockSize = g.br * g.bc;
  for (int64_t r = r0; r < r0 + rows; ++r) {
    const int64_t i = q * g.br + r;
    float* crow = g.c + i * g.ldc;
    for (int64_t j = j0; j < j1; ++j) crow[j] = 0.0f;
    for (int32_t b = g.rowPtr[q]; b < g.rowPtr[q + 1]; ++b) {
      const int64_t k0 = static_cast<int64_t>(g.colIdx[b]) * g.bc, width = std::min(g.bc, g.k - k0);
      const float* w = g.values + b * blockSize + r * g.bc;
      for (int64_t t = 0; t < width; ++t) {
        const float wv = w[t];
        const float* xrow = g.x + (k0 + t) * g.ldx;
        if (g.fused) {
          for (int64_t j = j0; j < j1; ++j) crow[j] = std::fma(wv, xrow[j], crow[j]);
        } else {
          for (int64_t j = j0; j < j1; ++j) crow[j] = crow[j] + wv * xrow[j];
        }
      }
    }
  }
}

#ifdef OCTET_X86
// R rows x V vectors of 16 columns from j0 (masked past j1), every stored k of block row q in order.
template <int R, int V, bool kFused>
__attribute__((target("avx512f"))) void tileAvx512(const BsrGemmArgs& g, int64_t q, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  __mmask16 mask[V];
  for (int v = 0; v < V; ++v) {
    const int64_t left = j1 - (j0 + 16 * v);
    mask[v] = left >= 16 ? static_cast<__mmask16>(0xffff) : left <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << left) - 1u);
  }
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  const int64_t blockSize = g.br * g.bc;
  for (int32_t b = g.rowPtr[q]; b < g.rowPtr[q + 1]; ++b) {
    const int64_t k0 = static_cast<int64_t>(g.colIdx[b]) * g.bc, width = std::min(g.bc, g.k - k0);
    const float* w = g.values + b * blockSize + r0 * g.bc;
    const float* xrow = g.x + k0 * g.ldx + j0;
    for (int64_t t = 0; t < width; ++t) {
      __m512 xv[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) xv[v] = _mm512_maskz_loadu_ps(mask[v], xrow + 16 * v);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512 wv = _mm512_set1_ps(w[r * g.bc + t]);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[r][v] = kFused ? _mm512_fmadd_ps(wv, xv[v], acc[r][v]) : _mm512_add_ps(acc[r][v], _mm512_mul_ps(wv, xv[v]));
      }
      xrow += g.ldx;
    }
  }
  for (int r = 0; r < R && r < rows; ++r) {
    float* crow = g.c + (q * g.br + r0 + r) * g.ldc + j0;
    for (int v = 0; v < V; ++v) _mm512_mask_storeu_ps(crow + 16 * v, mask[v], acc[r][v]);
  }
}

template <int R, int V>
void runRows(const BsrGemmArgs& g, int64_t q, int64_t r0, int64_t rows, int64_t c0, int64_t c1) {
  for (int64_t j = c0; j < c1; j += 16 * V) {
    const int64_t j1 = std::min(c1, j + 16 * V);
    if (g.fused) tileAvx512<R, V, true>(g, q, r0, rows, j, j1);
    else tileAvx512<R, V, false>(g, q, r0, rows, j, j1);
  }
}
#endif

// Block row q, columns [c0, c1): groups of 8 rows (4, 2 or 1 for narrower blocks).
void blockRow(const BsrGemmArgs& g, int64_t q, int64_t c0, int64_t c1) {
  const int64_t height = std::min(g.br, g.m - q * g.br);
#ifdef OCTET_X86
  if (cpuHasAvx512()) {
    for (int64_t r0 = 0; r0 < height;) {
      const int64_t left = height - r0;
      // Stored rows past m are zero: a group may run over them (never stored) when br allows.
      const int64_t span = std::min<int64_t>(g.br - r0, 8);
      if (span >= 8) runRows<8, 2>(g, q, r0, std::min<int64_t>(left, 8), c0, c1), r0 += 8;
      else if (span >= 4) runRows<4, 4>(g, q, r0, std::min<int64_t>(left, 4), c0, c1), r0 += 4;
      else if (span >= 2) runRows<2, 4>(g, q, r0, std::min<int64_t>(left, 2), c0, c1), r0 += 2;
      else runRows<1, 4>(g, q, r0, 1, c0, c1), r0 += 1;
    }
    return;
  }
#endif
  tileScalar(g, q, 0, height, c0, c1);
}

}  // namespace

void bsrGemm(const BsrGemmArgs& g, int threads) {
  if (g.m <= 0 || g.n <= 0) return;
  const int64_t blockRows = (g.m + g.br - 1) / g.br;
  const int64_t chunks = (g.n + kChunkCols - 1) / kChunkCols;
  const int64_t stored = g.rowPtr[blockRows];
  const double work = static_cast<double>(stored) * static_cast<double>(g.br * g.bc) * static_cast<double>(g.n);
  parallelFor(blockRows * chunks, work < 2e6 ? 1 : threads, [&](int64_t item) {
    const int64_t q = item / chunks, chunk = item % chunks;
    blockRow(g, q, chunk * kChunkCols, std::min(g.n, (chunk + 1) * kChunkCols));
  });
}

}  // namespace octet
