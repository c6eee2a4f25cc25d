#include "block_sparse.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "channels_last.h"
#include "cpu.h"
#include "gemm.h"
#include "parallel.h"
#include "sources.h"

namespace octet {
namespace {

// X's used rows are packed per chunk of columns into one buffer (row u at u * stride, stride =
// the chunk's width padded by 16 floats so that consecutive rows fall in different cache sets),
// shared by every block row; the kernels run over it kPanel columns at a time. Rows n floats apart
// in X itself would share cache sets, and the
// chunk's rows are read once per block row.
constexpr int64_t kPanel = 64;

// Columns per chunk: X's chunk (k x cols floats) about 1 MiB, at least one panel.
int64_t chunkColumns(int64_t k) {
  const int64_t cols = (int64_t(1) << 18) / std::max<int64_t>(1, k) / kPanel * kPanel;
  return std::max(kPanel, std::min<int64_t>(512, cols));
}

// The block columns in [p0, p1) that some block row stores, in order (`used`), and each one's
// index among them (`slot`, -1 for the others); returns the number of stored blocks.
int64_t usedBlockColumns(const int32_t* rowPtr, const int32_t* colIdx, int64_t blockRows, int64_t blockCols, int64_t p0, int64_t p1,
                         std::vector<int32_t>& slot, std::vector<int64_t>& used) {
  slot.assign(static_cast<size_t>(blockCols), -1);
  used.clear();
  const int64_t stored = rowPtr[blockRows];
  for (int64_t b = 0; b < stored; ++b) {
    if (colIdx[b] >= p0 && colIdx[b] < p1) slot[colIdx[b]] = 0;
  }
  for (int64_t p = 0; p < blockCols; ++p) {
    if (slot[p] < 0) continue;
    slot[p] = static_cast<int32_t>(used.size());
    used.push_back(p);
  }
  return stored;
}

// Where C(i, j) is (see BsrGemmArgs).
inline float* cAt(const BsrGemmArgs& g, int64_t i, int64_t j) {
  return g.cPlane ? g.c + (j / g.cPlane) * g.cImageStride + i * g.ldc + j % g.cPlane : g.c + (i - g.cRow0) * g.ldc + j;
}

// The runs of `lanes` consecutive columns from column j of C that lie in one image each: calls
// put(first lane, lane count, where the first lane goes) for each.
template <typename Put>
inline void imageRuns(const BsrGemmArgs& g, int64_t i, int64_t j, int lanes, Put&& put) {
  if (!g.cPlane || j % g.cPlane + lanes <= g.cPlane) {
    put(0, lanes, cAt(g, i, j));
    return;
  }
  for (int l = 0; l < lanes;) {
    const int64_t col = j + l, count = std::min<int64_t>(lanes - l, g.cPlane - col % g.cPlane);
    put(l, static_cast<int>(count), cAt(g, i, col));
    l += static_cast<int>(count);
  }
}

// Rows [r0, r0 + rows) of block row q over one panel (kPanel columns from `panel`, rows `stride`
// apart): plain loops (every build).
void tileScalar(const BsrGemmArgs& g, const int32_t* slot, int64_t q, int64_t r0, int64_t rows, const float* panel, int64_t stride, int64_t width,
                int64_t c0) {
  const int64_t blockSize = g.br * g.bc;
  for (int64_t r = r0; r < r0 + rows; ++r) {
    float acc[kPanel];
    for (int64_t j = 0; j < kPanel; ++j) acc[j] = 0.0f;
    for (int32_t b = g.rowPtr[q]; b < g.rowPtr[q + 1]; ++b) {
      const int64_t k0 = static_cast<int64_t>(g.colIdx[b]) * g.bc, span = std::min(g.bc, g.k - k0);
      const float* w = g.values + b * blockSize + r * g.bc;
      for (int64_t t = 0; t < span; ++t) {
        const float wv = w[t];
        const float* xrow = panel + (static_cast<int64_t>(slot[g.colIdx[b]]) * g.bc + t) * stride;
        if (g.fused) {
          for (int64_t j = 0; j < kPanel; ++j) acc[j] = std::fma(wv, xrow[j], acc[j]);
        } else {
          for (int64_t j = 0; j < kPanel; ++j) acc[j] = acc[j] + wv * xrow[j];
        }
      }
    }
    for (int64_t j = 0; j < width; ++j) *cAt(g, q * g.br + r, c0 + j) = acc[j];
  }
}

#ifdef OCTET_X86
// Which of the 16 lanes of each of V vectors lie before `left` columns.
template <int V>
inline void columnMasks(int64_t left, __mmask16* mask) {
  for (int v = 0; v < V; ++v, left -= 16) {
    mask[v] = left >= 16 ? static_cast<__mmask16>(0xffff) : left <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << left) - 1u);
  }
}

// Rows [i0, i0 + min(R, rows)) of C from column j0: V vectors of 16 columns each, masked.
template <int R, int V>
__attribute__((target("avx512f"))) inline void storeTile(const BsrGemmArgs& g, const __m512 (&acc)[R][V], const __mmask16* mask, int64_t i0, int64_t rows,
                                                         int64_t j0) {
  for (int r = 0; r < R && r < rows; ++r) {
    for (int v = 0; v < V; ++v) {
      if (!mask[v]) continue;
      const int64_t i = i0 + r, j = j0 + 16 * v;
      if (!g.cPlane || j % g.cPlane + 16 <= g.cPlane) {
        _mm512_mask_storeu_ps(cAt(g, i, j), mask[v], acc[r][v]);
      } else {
        // 16 columns across an image's end: each image's lanes stored where they go.
        alignas(64) float lanes[16];
        _mm512_store_ps(lanes, acc[r][v]);
        const __mmask16 m = mask[v];
        imageRuns(g, i, j, 16, [&](int l, int count, float* at) {
          for (int t = 0; t < count; ++t)
            if (m >> (l + t) & 1) at[t] = lanes[l + t];
        });
      }
    }
  }
}

// The tile on bfloat16 pairs: R rows x V vectors of 16 columns, every stored k of block row q
// in order two at a time, one VDPBF16PS per accumulator (the pair's first k in the high half, so
// first in the chain: the float tile's bits, see pairsEligible). wpairs holds each stored block's
// rows as bc / 2 pair words; the panel, pair rows of 32-bit words (slot s's rows at s * bc / 2).
template <int R, int V>
__attribute__((target("avx512f,avx512bf16"))) void tilePairsAvx512(const BsrGemmArgs& g, const uint32_t* wpairs, const int32_t* slot, int64_t q, int64_t r0,
                                                                  int64_t rows, const uint32_t* panel, int64_t stride, int64_t offset, int64_t width,
                                                                  int64_t c0) {
  __mmask16 mask[V];
  columnMasks<V>(width - offset, mask);
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  const int64_t half = g.bc / 2, blockWords = g.br * half;
  for (int32_t b = g.rowPtr[q]; b < g.rowPtr[q + 1]; ++b) {
    const int64_t k0 = static_cast<int64_t>(g.colIdx[b]) * g.bc, steps = (std::min(g.bc, g.k - k0) + 1) / 2;
    const uint32_t* w = wpairs + b * blockWords + r0 * half;
    const uint32_t* xrow = panel + static_cast<int64_t>(slot[g.colIdx[b]]) * half * stride + offset;
    for (int64_t s = 0; s < steps; ++s) {
      __m512bh xv[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) xv[v] = (__m512bh)_mm512_load_si512(xrow + 16 * v);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512bh wv = (__m512bh)_mm512_set1_epi32(static_cast<int>(w[r * half + s]));
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], wv, xv[v]);
      }
      xrow += stride;
    }
  }
  storeTile<R, V>(g, acc, mask, q * g.br + r0, rows, c0 + offset);
}

template <int R, int V>
void runRowsPairs(const BsrGemmArgs& g, const uint32_t* wpairs, const int32_t* slot, int64_t q, int64_t r0, int64_t rows, const uint32_t* panel,
                  int64_t stride, int64_t width, int64_t c0) {
  for (int64_t offset = 0; offset < kPanel && offset < width; offset += 16 * V) tilePairsAvx512<R, V>(g, wpairs, slot, q, r0, rows, panel, stride, offset, width, c0);
}

// Block row q over one panel of pair rows (blockRow's groups of rows).
void blockRowPairs(const BsrGemmArgs& g, const uint32_t* wpairs, const int32_t* slot, int64_t q, const uint32_t* panel, int64_t stride, int64_t width,
                   int64_t c0) {
  const int64_t height = std::min(g.br, g.m - q * g.br);
  for (int64_t r0 = 0; r0 < height;) {
    const int64_t left = height - r0, span = std::min<int64_t>(g.br - r0, 8);
    if (span >= 8) runRowsPairs<8, 2>(g, wpairs, slot, q, r0, std::min<int64_t>(left, 8), panel, stride, width, c0), r0 += 8;
    else if (span >= 4) runRowsPairs<4, 4>(g, wpairs, slot, q, r0, std::min<int64_t>(left, 4), panel, stride, width, c0), r0 += 4;
    else if (span >= 2) runRowsPairs<2, 4>(g, wpairs, slot, q, r0, std::min<int64_t>(left, 2), panel, stride, width, c0), r0 += 2;
    else runRowsPairs<1, 4>(g, wpairs, slot, q, r0, 1, panel, stride, width, c0), r0 += 1;
  }
}

#endif

#ifdef OCTET_X86
// R rows x V vectors of 16 columns of a panel from column `offset` (masked past width),
// every stored k of block row q in order.
template <int R, int V, bool kFused>
__attribute__((target("avx512f"))) void tileAvx512(const BsrGemmArgs& g, const int32_t* slot, int64_t q, int64_t r0, int64_t rows, const float* panel,
                                                   int64_t stride, int64_t offset, int64_t width, int64_t c0) {
  __mmask16 mask[V];
  columnMasks<V>(width - offset, mask);
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  const int64_t blockSize = g.br * g.bc;
  for (int32_t b = g.rowPtr[q]; b < g.rowPtr[q + 1]; ++b) {
    const int64_t k0 = static_cast<int64_t>(g.colIdx[b]) * g.bc, span = std::min(g.bc, g.k - k0);
    const float* w = g.values + b * blockSize + r0 * g.bc;
    const float* xrow = panel + static_cast<int64_t>(slot[g.colIdx[b]]) * g.bc * stride + offset;
    for (int64_t t = 0; t < span; ++t) {
      __m512 xv[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) xv[v] = _mm512_load_ps(xrow + 16 * v);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512 wv = _mm512_set1_ps(w[r * g.bc + t]);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[r][v] = kFused ? _mm512_fmadd_ps(wv, xv[v], acc[r][v]) : _mm512_add_ps(acc[r][v], _mm512_mul_ps(wv, xv[v]));
      }
      xrow += stride;
    }
  }
  storeTile<R, V>(g, acc, mask, q * g.br + r0, rows, c0 + offset);
}

template <int R, int V>
void runRows(const BsrGemmArgs& g, const int32_t* slot, int64_t q, int64_t r0, int64_t rows, const float* panel, int64_t stride, int64_t width,
             int64_t c0) {
  for (int64_t offset = 0; offset < kPanel && offset < width; offset += 16 * V) {
    if (g.fused) tileAvx512<R, V, true>(g, slot, q, r0, rows, panel, stride, offset, width, c0);
    else tileAvx512<R, V, false>(g, slot, q, r0, rows, panel, stride, offset, width, c0);
  }
}

// One step of the AVX2 tile: x the V vectors of a packed row, w[r * bc] row r's weight.
template <int R, int V, bool kFused>
__attribute__((target("avx2,fma"), always_inline)) inline void tileStepAvx2(__m256 (&acc)[R][V], const float* x, const float* w, int64_t bc) {
  __m256 xv[V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) xv[v] = _mm256_load_ps(x + 8 * v);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const __m256 wv = _mm256_set1_ps(w[r * bc]);
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = kFused ? _mm256_fmadd_ps(wv, xv[v], acc[r][v]) : _mm256_add_ps(acc[r][v], _mm256_mul_ps(wv, xv[v]));
  }
}

// The AVX2 + FMA tile: R rows x V vectors of 8 columns (R x V <= 8 accumulators), masked past width.
template <int R, int V, bool kFused>
__attribute__((target("avx2,fma"))) void tileAvx2(const BsrGemmArgs& g, const int32_t* slot, int64_t q, int64_t r0, int64_t rows, const float* panel,
                                                  int64_t stride, int64_t offset, int64_t width, int64_t c0) {
  __m256i mask[V];
  for (int v = 0; v < V; ++v) {
    const int64_t left = width - (offset + 8 * v);
    mask[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(8, left)))), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  __m256 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  const int64_t blockSize = g.br * g.bc;
  for (int32_t b = g.rowPtr[q]; b < g.rowPtr[q + 1]; ++b) {
    const int64_t k0 = static_cast<int64_t>(g.colIdx[b]) * g.bc, span = std::min(g.bc, g.k - k0);
    const float* w = g.values + b * blockSize + r0 * g.bc;
    const float* xrow = panel + static_cast<int64_t>(slot[g.colIdx[b]]) * g.bc * stride + offset;
    // Whole blocks of 8 columns unrolled (short products, as an input gradient's K = 16, spent a
    // good part of the tile on the loop).
    if (span == 8 && g.bc == 8) {
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) tileStepAvx2<R, V, kFused>(acc, xrow + t * stride, w + t, 8);
    } else {
      for (int64_t t = 0; t < span; ++t) tileStepAvx2<R, V, kFused>(acc, xrow + t * stride, w + t, g.bc);
    }
  }
  // Each vector's place in C found once (a division by the plane where C is NCHW), then its rows.
  const int64_t i0 = q * g.br + r0;
  for (int v = 0; v < V; ++v) {
    if (offset + 8 * v >= width) continue;
    const int64_t j = c0 + offset + 8 * v;
    const bool whole = offset + 8 * v + 8 <= width;
    bool inPlane = true;
    float* col;
    if (g.cPlane) {
      const int64_t image = j / g.cPlane, p = j - image * g.cPlane;
      inPlane = p + 8 <= g.cPlane;
      col = g.c + image * g.cImageStride + i0 * g.ldc + p;
    } else {
      col = g.c + (i0 - g.cRow0) * g.ldc + j;
    }
    for (int r = 0; r < R && r < rows; ++r) {
      if (inPlane) {
        // A plain store for whole vectors: VMASKMOVPS stores are slow on AMD (about a third of
        // the tile's time in an input gradient of K = 16).
        if (whole) _mm256_storeu_ps(col + r * g.ldc, acc[r][v]);
        else _mm256_maskstore_ps(col + r * g.ldc, mask[v], acc[r][v]);
      } else {
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, acc[r][v]);
        const int64_t valid = std::min<int64_t>(8, width - offset - 8 * v);
        imageRuns(g, i0 + r, j, static_cast<int>(valid), [&](int l, int count, float* at) {
          for (int t = 0; t < count; ++t) at[t] = lanes[l + t];
        });
      }
    }
  }
}

template <int R, int V>
void runRowsAvx2(const BsrGemmArgs& g, const int32_t* slot, int64_t q, int64_t r0, int64_t rows, const float* panel, int64_t stride, int64_t width,
                 int64_t c0) {
  for (int64_t offset = 0; offset < kPanel && offset < width; offset += 8 * V) {
    if (g.fused) tileAvx2<R, V, true>(g, slot, q, r0, rows, panel, stride, offset, width, c0);
    else tileAvx2<R, V, false>(g, slot, q, r0, rows, panel, stride, offset, width, c0);
  }
}

// Which vector tiles run: the dense core's family (OCTET_GEMM_KERNEL=avx2|portable forces a
// simpler one, so every path can be tested on one machine).
enum class Family { kAvx512, kAvx2, kPortable };
Family family() {
  static const Family f = [] {
    const std::string name = gemmKernelName();
    return name == "avx512" ? Family::kAvx512 : name == "avx2" ? Family::kAvx2 : Family::kPortable;
  }();
  return f;
}
#endif

// Block row q over one panel (width valid columns, C from column c): groups of 8 rows (4, 2 or 1
// for narrower blocks).
void blockRow(const BsrGemmArgs& g, const int32_t* slot, int64_t q, const float* panel, int64_t stride, int64_t width, int64_t c0) {
  const int64_t height = std::min(g.br, g.m - q * g.br);
#ifdef OCTET_X86
  if (family() == Family::kAvx2) {
    for (int64_t r0 = 0; r0 < height;) {
      const int64_t left = height - r0, span = std::min<int64_t>(g.br - r0, 4);
      if (span >= 4) runRowsAvx2<4, 2>(g, slot, q, r0, std::min<int64_t>(left, 4), panel, stride, width, c0), r0 += 4;
      else if (span >= 2) runRowsAvx2<2, 4>(g, slot, q, r0, std::min<int64_t>(left, 2), panel, stride, width, c0), r0 += 2;
      else runRowsAvx2<1, 4>(g, slot, q, r0, 1, panel, stride, width, c0), r0 += 1;
    }
    return;
  }
  if (family() == Family::kAvx512) {
    for (int64_t r0 = 0; r0 < height;) {
      const int64_t left = height - r0;
      // Stored rows past m are zero: a group may run over them (never stored) when br allows.
      const int64_t span = std::min<int64_t>(g.br - r0, 8);
      if (span >= 8) runRows<8, 2>(g, slot, q, r0, std::min<int64_t>(left, 8), panel, stride, width, c0), r0 += 8;
      else if (span >= 4) runRows<4, 4>(g, slot, q, r0, std::min<int64_t>(left, 4), panel, stride, width, c0), r0 += 4;
      else if (span >= 2) runRows<2, 4>(g, slot, q, r0, std::min<int64_t>(left, 2), panel, stride, width, c0), r0 += 2;
      else runRows<1, 4>(g, slot, q, r0, 1, panel, stride, width, c0), r0 += 1;
    }
    return;
  }
#endif
  tileScalar(g, slot, q, 0, height, panel, stride, width, c0);
}

struct AlignedBuffer {
  float* data = nullptr;
  size_t size = 0;
  ~AlignedBuffer() { std::free(data); }
  float* get(size_t want) {
    if (want > size) {
      std::free(data);
      data = static_cast<float*>(std::aligned_alloc(64, (want * sizeof(float) + 63) / 64 * 64));
      size = want;
    }
    return data;
  }
};

thread_local AlignedBuffer chunkBuffer;

// Column runs of convolutions, 16 outputs of a plane at a time with AVX-512 (the same values as
// columnRun, which serves other CPUs and the forced avx2/portable families). A plane is cut into
// groups of 16 outputs (the last one shorter where the plane is not a multiple of 16); which
// lanes of a group read inside the image is a 16-bit mask per tap and group, built once per
// product; masked lanes are +0 (code 0 is +0 in every format) and never read, so addresses past
// the plane's edges are harmless. Each group is stored with a mask of the lanes the run covers
// (a run may start or end inside a group, and groups never straddle two images).
// - Stride 1 with output rows as wide as the input's (outW == W, "same" padding): row (c, i, j)
//   of the column matrix is the plane shifted by the constant (i * dilationH - padH) * W + j *
//   dilationW - padW: one masked load and one store per 16 columns.
// - Stride 2 along rows, output rows a multiple of 16 wide: 16 outputs of one output row read 32
//   consecutive inputs from a tabled start; two masked loads and a permute keep the even ones
//   (codes: one masked load of 32 bytes, narrowed to the low byte of each pair).
// - Any other geometry: each lane's offset in the plane is tabled (per tap and output), and 16
//   lanes are one masked gather (floats) or 16 byte loads (codes).
struct ShiftedRows {
  enum Mode { kOff, kShift, kStride2, kGather } mode = kOff;
  int64_t plane = 0, groups = 0, taps = 0;
  std::vector<uint16_t> masks;   // masks[tap * groups + p / 16]
  std::vector<int64_t> shift;    // kShift: per tap
  std::vector<int32_t> offsets;  // kGather: offsets[tap * groups * 16 + p], 0 where outside; kStride2: the start of each group's 32 inputs, [tap * groups + p / 16]
  std::vector<uint32_t> pairMasks;  // kStride2: which of the 32 inputs lie inside, [tap * groups + p / 16]
};

// Whether the images of codes hold a code whose table value is Inf or NaN.
bool imagesReadNonFinite(const uint8_t* codes, const float* table, const ConvGeometry& geo, int64_t batch, int64_t imageStride) {
  const TableFacts fx = tableFacts(table, 256);
  for (int64_t n = 0; n < batch; ++n) {
    if (mayReadNonFinite(codes + n * imageStride, geo.channels * geo.height * geo.width, fx)) return true;
  }
  return false;
}

#ifdef OCTET_X86
// Whether `table` holds E5M2's values: every entry bit for bit as the half-precision conversion
// gives it (AVX2 and F16C, or AVX-512), or only its finite ones where the images read no other.
bool e5m2Table(const float* table, bool finiteOnly) {
  if (!haveHalfConversion()) return false;
  uint8_t codes[16];
  float values[16];
  for (int c0 = 0; c0 < 256; c0 += 16) {
    for (int l = 0; l < 16; ++l) codes[l] = static_cast<uint8_t>(c0 + l);
    decodeE5m2(codes, values, 16);
    for (int l = 0; l < 16; ++l) {
      if (finiteOnly && !std::isfinite(values[l]) && !std::isfinite(table[c0 + l])) continue;
      if (std::memcmp(values + l, table + c0 + l, 4) != 0) return false;
    }
  }
  return true;
}
#else
bool e5m2Table(const float*, bool) { return false; }
#endif


// Whether the product can run on the bfloat16-pair tile with the float tile's bits (as the dense
// core's pair kernel, gemm.cc's pairsEligible): images of one-byte codes and stored weights whose
// values are all exact in bfloat16 and finite, fused chains (products of two bfloat16 values are
// exact in float32), even block columns, no Inf or NaN among the codes the images hold (the
// caller's check), and no product or partial sum denormal or infinite (both value sets lie on
// grids 2^ex and 2^ew with ex + ew >= -126, and k times the largest product stays finite). Fills
// the weights' pair words then.
bool sparsePairs(const BsrGemmArgs& g, int64_t stored, std::vector<uint32_t>& wpairs) {
#ifdef OCTET_X86
  if (family() != Family::kAvx512 || !gemmBf16Pairs() || !g.fused || !g.imageCodes || !g.table || !g.geometry || g.bc % 2 != 0) return false;
  const TableFacts fx = tableFacts(g.table, 256), fw = valueFacts(g.values, stored * g.br * g.bc);
  if (fw.firstNonFinite < 128 || !pairProductsExact(fx, fw, g.k)) return false;
  // Block b's row r as bc / 2 words: (bits(w[2s]) & 0xffff0000) | (bits(w[2s + 1]) >> 16), the
  // stored values taken two by two (bc is even, so pairs stay within rows); past the last block
  // column's stored k (odd k), the low half -0 (times the +0 rows packed there: -0, which adds
  // nothing to any sum).
  const int64_t half = g.bc / 2, words = stored * g.br * half;
  wpairs.resize(static_cast<size_t>(words));
  pairWordsFromRun(g.values, 2 * words, 0, wpairs.data());
  if (g.k % 2 == 1) {
    const int64_t last = (g.k - 1) / g.bc, t = ((g.k - last * g.bc) - 1) / 2;
    for (int64_t b = 0; b < stored; ++b) {
      if (g.colIdx[b] != last) continue;
      for (int64_t r = 0; r < g.br; ++r) {
        uint32_t& w = wpairs[static_cast<size_t>((b * g.br + r) * half + t)];
        w = (w & 0xffff0000u) | 0x8000u;
      }
    }
  }
  return true;
#else
  (void)g;
  (void)stored;
  (void)wpairs;
  return false;
#endif
}

ShiftedRows shiftedRows(const ConvGeometry& g, bool codes) {
  ShiftedRows s;
#ifdef OCTET_X86
  const int64_t plane = g.outH * g.outW;
  // AVX2: shifted or gathered (shiftedRunAvx2, shiftedRunCodesAvx2).
  const bool avx2 = family() == Family::kAvx2;
  const bool avx512 = family() == Family::kAvx512 && (!codes || cpuHasAvx512Bw());
  if (!(avx512 || avx2) || g.height * g.width > (int64_t(1) << 30)) return s;
  s.mode = g.strideH == 1 && g.strideW == 1 && g.outW == g.width ? ShiftedRows::kShift
           : !avx2 && g.strideW == 2 && g.outW % 16 == 0             ? ShiftedRows::kStride2
                                                                      : ShiftedRows::kGather;
  s.plane = plane;
  s.groups = (plane + 15) / 16;
  s.taps = g.kernelH * g.kernelW;
  s.masks.assign(static_cast<size_t>(s.taps * s.groups), 0);
  s.shift.resize(static_cast<size_t>(s.taps));
  if (s.mode == ShiftedRows::kGather) s.offsets.assign(static_cast<size_t>(s.taps * s.groups * 16), 0);
  if (s.mode == ShiftedRows::kStride2) {
    s.offsets.assign(static_cast<size_t>(s.taps * s.groups), 0);
    s.pairMasks.assign(static_cast<size_t>(s.taps * s.groups), 0);
  }
  for (int64_t i = 0; i < g.kernelH; ++i) {
    for (int64_t j = 0; j < g.kernelW; ++j) {
      const int64_t tap = i * g.kernelW + j, dy = i * g.dilationH - g.padH, dx = j * g.dilationW - g.padW;
      s.shift[static_cast<size_t>(tap)] = dy * g.width + dx;
      for (int64_t p = 0; s.mode == ShiftedRows::kStride2 && p < plane; p += 16) {
        const int64_t ih = (p / g.outW) * g.strideH + dy, iw0 = (p % g.outW) * 2 + dx;
        const size_t at = static_cast<size_t>(tap * s.groups + p / 16);
        s.offsets[at] = static_cast<int32_t>(ih * g.width + iw0);
        for (int64_t l = 0; l < 32; ++l) {
          if (ih >= 0 && ih < g.height && iw0 + l >= 0 && iw0 + l < g.width) s.pairMasks[at] |= 1u << l;
        }
      }
      for (int64_t p = 0; p < plane; ++p) {
        const int64_t ih = (p / g.outW) * g.strideH + dy, iw = (p % g.outW) * g.strideW + dx;
        if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) continue;
        s.masks[static_cast<size_t>(tap * s.groups + p / 16)] |= static_cast<uint16_t>(1u << (p % 16));
        if (s.mode == ShiftedRows::kGather) s.offsets[static_cast<size_t>(tap * s.groups * 16 + p)] = static_cast<int32_t>(ih * g.width + iw);
      }
    }
  }
#else
  (void)g;
  (void)codes;
#endif
  return s;
}

#ifdef OCTET_X86
// The groups of 16 outputs a run [q0, q0 + len) touches, in order: `next` moves to the next one
// (while t < len) and sets gi (the group in its plane), image, lanes (the group's lanes inside the
// run) and at (where the group's lane 0 goes in the run's output: before it for a run that starts
// inside a group, whose earlier lanes are not stored).
struct GroupWalk {
  int64_t n, p, t = 0, gi = 0, image = 0, at = 0;
  __mmask16 lanes = 0;
  GroupWalk(const ShiftedRows& s, int64_t q0) : n(q0 / s.plane), p(q0 % s.plane) {}
  void next(const ShiftedRows& s, int64_t len) {
    const int64_t p0 = p & ~int64_t(15), end = std::min(std::min(s.plane, p0 + 16), p + (len - t));
    lanes = static_cast<__mmask16>(((1u << (end - p0)) - 1u) & ~((1u << (p - p0)) - 1u));
    gi = p0 / 16;
    image = n;
    at = t - (p - p0);
    t += end - p;
    if ((p = end) == s.plane) p = 0, ++n;
  }
};

// Stores the lanes of a group a run covers: a plain store when all 16 are (the common case;
// masked stores are slower on some CPUs), else a masked one.
__attribute__((target("avx512f"), always_inline)) inline void storeLanes(float* at, __mmask16 lanes, __m512 v) {
  if (lanes == static_cast<__mmask16>(0xffff)) _mm512_storeu_ps(at, v);
  else _mm512_mask_storeu_ps(at, lanes, v);
}

// out[t] = col(r, q0 + t) for t in [0, len) (see ShiftedRows).
__attribute__((target("avx512f"))) void shiftedRun(const ShiftedRows& s, const float* x, const ConvGeometry& g, int64_t imageStride, int64_t r, int64_t q0,
                                                   int64_t len, float* out) {
  const int64_t c = r / s.taps, tap = r % s.taps;
  const uint16_t* masks = s.masks.data() + tap * s.groups;
  const float* channel = x + c * g.height * g.width;
  if (s.mode == ShiftedRows::kShift) {
    const float* base = channel + s.shift[static_cast<size_t>(tap)];
    for (GroupWalk w(s, q0); w.t < len;) {
      w.next(s, len);
      storeLanes(out + w.at, w.lanes, _mm512_maskz_loadu_ps(masks[w.gi], base + w.image * imageStride + w.gi * 16));
    }
    return;
  }
  if (s.mode == ShiftedRows::kStride2) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const int32_t* starts = s.offsets.data() + tap * s.groups;
    const uint32_t* pairs = s.pairMasks.data() + tap * s.groups;
    for (GroupWalk w(s, q0); w.t < len;) {
      w.next(s, len);
      const float* in = channel + w.image * imageStride + starts[w.gi];
      const uint32_t m = pairs[w.gi];
      const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m), in), hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m >> 16), in + 16);
      storeLanes(out + w.at, w.lanes, _mm512_permutex2var_ps(lo, even, hi));
    }
    return;
  }
  const int32_t* offsets = s.offsets.data() + tap * s.groups * 16;
  for (GroupWalk w(s, q0); w.t < len;) {
    w.next(s, len);
    const __m512i idx = _mm512_loadu_si512(offsets + w.gi * 16);
    storeLanes(out + w.at, w.lanes, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), masks[w.gi], idx, channel + w.image * imageStride, 4));
  }
}

// shiftedRun on AVX2 (float images; kShift and kGather): each group of 16 lanes as two halves of
// 8, their lane masks as vectors, masked loads or gathers (masked lanes +0 and never read), and
// masked stores where the run covers part of a group.
__attribute__((target("avx2"), always_inline)) inline __m256i laneMask8(uint32_t bits) {
  const __m256i each = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), each), each);
}

// storeLanes on 8 lanes: a plain store when the run covers all 8 (masked stores are slow on AMD),
// a masked one when it covers some.
__attribute__((target("avx2"), always_inline)) inline void storeHalf(float* at, uint32_t lanes, __m256 v) {
  if (lanes == 0xffu) _mm256_storeu_ps(at, v);
  else if (lanes) _mm256_maskstore_ps(at, laneMask8(lanes), v);
}

__attribute__((target("avx2"))) void shiftedRunAvx2(const ShiftedRows& s, const float* x, const ConvGeometry& g, int64_t imageStride, int64_t r, int64_t q0,
                                                    int64_t len, float* out) {
  const int64_t c = r / s.taps, tap = r % s.taps;
  const uint16_t* masks = s.masks.data() + tap * s.groups;
  const float* channel = x + c * g.height * g.width;
  const float* base = channel + (s.mode == ShiftedRows::kShift ? s.shift[static_cast<size_t>(tap)] : 0);
  const int32_t* offsets = s.offsets.data() + tap * s.groups * 16;
  for (GroupWalk w(s, q0); w.t < len;) {
    w.next(s, len);
    const float* image = base + w.image * imageStride;
    for (int h = 0; h < 2; ++h) {
      const uint32_t lanes = (static_cast<uint32_t>(w.lanes) >> (8 * h)) & 0xffu;
      if (!lanes) continue;
      const __m256i inside = laneMask8((static_cast<uint32_t>(masks[w.gi]) >> (8 * h)) & 0xffu);
      const __m256 v = s.mode == ShiftedRows::kShift
                           ? _mm256_maskload_ps(image + w.gi * 16 + 8 * h, inside)
                           : _mm256_mask_i32gather_ps(_mm256_setzero_ps(), image, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(offsets + w.gi * 16 + 8 * h)),
                                                      _mm256_castsi256_ps(inside), 4);
      storeHalf(out + w.at + 8 * h, lanes, v);
    }
  }
}

// shiftedRunCodes on AVX2: each group's 16 codes (those outside the image code 0, whose table
// value is +0, as columnRun writes them), decoded as E5M2 by half conversion or through the table
// by two gathers, stored as shiftedRunAvx2 stores. AVX2 has no masked byte load: a shifted group
// is one 16-byte load, its outside lanes cleared, where those 16 bytes lie in the image (reading
// neighbouring codes of the same image is harmless), else lane by lane; gathered groups read their
// tabled offsets lane by lane (outside lanes read the plane's first code, cleared).
__attribute__((target("avx2"), always_inline)) inline __m128i byteMask16(uint32_t bits) {
  const __m128i spread = _mm_shuffle_epi8(_mm_cvtsi32_si128(static_cast<int>(bits)), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const __m128i each = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return _mm_cmpeq_epi8(_mm_and_si128(spread, each), each);
}

__attribute__((target("avx2,f16c"))) void shiftedRunCodesAvx2(const ShiftedRows& s, const float* lut, bool e5m2, const uint8_t* x, const ConvGeometry& g,
                                                              int64_t imageStride, int64_t r, int64_t q0, int64_t len, float* out) {
  const int64_t c = r / s.taps, tap = r % s.taps, imageCodes = g.channels * g.height * g.width, channelAt = c * g.height * g.width;
  const uint16_t* masks = s.masks.data() + tap * s.groups;
  const int32_t* offsets = s.offsets.data() + tap * s.groups * 16;
  // kShift: group 0's first code, in the image
  const int64_t shifted = channelAt + (s.mode == ShiftedRows::kShift ? s.shift[static_cast<size_t>(tap)] : 0);
  alignas(16) uint8_t lanes16[16];
  for (GroupWalk w(s, q0); w.t < len;) {
    w.next(s, len);
    const uint8_t* image = x + w.image * imageStride;
    const uint32_t inside = masks[w.gi];
    __m128i bytes;
    if (s.mode == ShiftedRows::kShift) {
      const int64_t from = shifted + w.gi * 16;
      if (from >= 0 && from + 16 <= imageCodes) {
        bytes = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(image + from)), byteMask16(inside));
      } else {
        for (int l = 0; l < 16; ++l) lanes16[l] = (inside >> l) & 1u ? image[from + l] : 0;
        bytes = _mm_load_si128(reinterpret_cast<const __m128i*>(lanes16));
      }
    } else {
      const int32_t* at = offsets + w.gi * 16;
      const uint8_t* channel = image + channelAt;
      for (int l = 0; l < 16; ++l) lanes16[l] = channel[at[l]];
      bytes = _mm_and_si128(_mm_load_si128(reinterpret_cast<const __m128i*>(lanes16)), byteMask16(inside));
    }
    __m256 half[2];
    if (e5m2) {
      const __m256i h = _mm256_slli_epi16(_mm256_cvtepu8_epi16(bytes), 8);
      half[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
      half[1] = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
    } else {
      half[0] = _mm256_i32gather_ps(lut, _mm256_cvtepu8_epi32(bytes), 4);
      half[1] = _mm256_i32gather_ps(lut, _mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)), 4);
    }
    for (int h = 0; h < 2; ++h) storeHalf(out + w.at + 8 * h, (static_cast<uint32_t>(w.lanes) >> (8 * h)) & 0xffu, half[h]);
  }
}

// The values of the codes at lanes of group gi of row r's plane in one image (the lanes the
// tap reads inside the image; +0 elsewhere).
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c"), always_inline)) inline __m512 groupValues(const ShiftedRows& s, const VectorTable& table, bool e5m2,
                                                                                                       const uint8_t* image, int64_t tap, int64_t gi) {
  const __mmask16 m = s.masks[static_cast<size_t>(tap * s.groups + gi)];
  __m128i bytes;
  if (s.mode == ShiftedRows::kShift) {
    bytes = _mm_maskz_loadu_epi8(m, image + s.shift[static_cast<size_t>(tap)] + gi * 16);
  } else if (s.mode == ShiftedRows::kStride2) {
    const size_t k = static_cast<size_t>(tap * s.groups + gi);
    bytes = _mm256_cvtepi16_epi8(_mm256_maskz_loadu_epi8(s.pairMasks[k], image + s.offsets[k]));
  } else {
    alignas(16) uint8_t lanes16[16];
    const int32_t* offsets = s.offsets.data() + (tap * s.groups + gi) * 16;
    for (int l = 0; l < 16; ++l) lanes16[l] = image[offsets[l]];  // outside lanes read the plane's first code, masked below
    bytes = _mm_maskz_mov_epi8(m, _mm_load_si128(reinterpret_cast<const __m128i*>(lanes16)));
  }
  // E5M2: code << 8 is the binary16 of the same value (decodeE5m2x16); others through the table.
  if (e5m2) return _mm512_maskz_mov_ps(m, _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(bytes), 8)));
  return _mm512_maskz_mov_ps(m, lookup16(table, _mm512_cvtepu8_epi32(bytes)));
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c"))) void shiftedRunCodes(const ShiftedRows& s, const VectorTable& table, bool e5m2, const uint8_t* x,
                                                                                  const ConvGeometry& g, int64_t imageStride, int64_t r, int64_t q0, int64_t len,
                                                                                  float* out) {
  const int64_t c = r / s.taps, tap = r % s.taps;
  const uint8_t* channel = x + c * g.height * g.width;
  for (GroupWalk w(s, q0); w.t < len;) {
    w.next(s, len);
    storeLanes(out + w.at, w.lanes, groupValues(s, table, e5m2, channel + w.image * imageStride, tap, w.gi));
  }
}

// Rows rHigh and rLow (rLow < 0: +0) of the column matrix as one run of pair words, 16 columns
// at a time: (bits(high) & 0xffff0000) | (bits(low) >> 16) (values exact in bfloat16).
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c"))) void shiftedPairCodes(const ShiftedRows& s, const VectorTable& table, bool e5m2,
                                                                                   const uint8_t* x, const ConvGeometry& g, int64_t imageStride, int64_t rHigh,
                                                                                   int64_t rLow, int64_t q0, int64_t len, uint32_t* out) {
  const int64_t plane = g.height * g.width;
  const int64_t tapHigh = rHigh % s.taps, tapLow = rLow >= 0 ? rLow % s.taps : 0;
  const uint8_t* high = x + (rHigh / s.taps) * plane;
  const uint8_t* low = rLow >= 0 ? x + (rLow / s.taps) * plane : nullptr;
  const __m512i top = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  for (GroupWalk w(s, q0); w.t < len;) {
    w.next(s, len);
    const __m512i h = _mm512_and_si512(_mm512_castps_si512(groupValues(s, table, e5m2, high + w.image * imageStride, tapHigh, w.gi)), top);
    const __m512i l = low ? _mm512_srli_epi32(_mm512_castps_si512(groupValues(s, table, e5m2, low + w.image * imageStride, tapLow, w.gi)), 16) : _mm512_setzero_si512();
    _mm512_mask_storeu_epi32(out + w.at, w.lanes, _mm512_or_si512(h, l));
  }
}
#endif

// Row k of a convolution's column matrix over columns [j0, j0 + len) into `row`, from float
// images or codes (decoded): 16 outputs at a time where `shifted` allows (AVX-512 or AVX2), else one
// column run (codeLine: a byte buffer of at least len).
void columnRow(const ShiftedRows& shifted, const void* tablePtr, bool e5m2, const ConvGeometry& geo, const float* images, const uint8_t* codes,
               const float* lut, int64_t imageStride, int64_t k, int64_t j0, int64_t len, float* row, std::vector<uint8_t>& codeLine) {
#ifdef OCTET_X86
  if (shifted.mode != ShiftedRows::kOff && codes) {
    if (family() == Family::kAvx2) shiftedRunCodesAvx2(shifted, lut, e5m2, codes, geo, imageStride, k, j0, len, row);
    else shiftedRunCodes(shifted, *static_cast<const VectorTable*>(tablePtr), e5m2, codes, geo, imageStride, k, j0, len, row);
    return;
  }
  if (shifted.mode != ShiftedRows::kOff) {
    if (family() == Family::kAvx2) shiftedRunAvx2(shifted, images, geo, imageStride, k, j0, len, row);
    else shiftedRun(shifted, images, geo, imageStride, k, j0, len, row);
    return;
  }
#else
  (void)shifted;
  (void)tablePtr;
  (void)e5m2;
#endif
  if (codes) {
    columnRun(codes, geo, imageStride, k, j0, len, codeLine.data());
    decodeCodes(codeLine.data(), lut, false, len, row);
  } else {
    columnRun(images, geo, imageStride, k, j0, len, row);
  }
}

}  // namespace

void bsrGemm(const BsrGemmArgs& g, int threads) {
  if (g.m <= 0 || g.n <= 0) return;
  const int64_t blockRows = (g.m + g.br - 1) / g.br, blockCols = (g.k + g.bc - 1) / g.bc;
  // The block columns some block row stores, and where each one's bc rows of X sit in a panel.
  std::vector<int32_t> slot;
  std::vector<int64_t> used;
  const int64_t stored = usedBlockColumns(g.rowPtr, g.colIdx, blockRows, blockCols, 0, blockCols, slot, used);
  const int64_t packedRows = static_cast<int64_t>(used.size()) * g.bc;
  // AVX2: chunks narrower than a panel where one panel of X would not fit in 256 KB (down to the
  // tile's 16 columns), so that the chunk every block row reads stays in L2 (512 KB on AMD Zen 3):
  // ResNet-18 layer4's 4608 rows x 64 columns (1.2 MB) had been read from L3 by each block row.
  // (Since the AVX2 tile's plain stores and unrolled blocks, 16, 32 and 64 columns measure within
  // noise of each other on layer4: 2026-12-08.)
#ifdef OCTET_X86
  const bool avx2 = family() == Family::kAvx2;
#else
  const bool avx2 = false;
#endif
  const int64_t chunkCols = avx2 && packedRows * kPanel > (int64_t(1) << 16) ? std::max<int64_t>(16, (int64_t(1) << 16) / packedRows / 16 * 16) : chunkColumns(packedRows);
  const int64_t chunks = (g.n + chunkCols - 1) / chunkCols;
  // Column runs 16 outputs at a time where the CPU allows (ShiftedRows).
  const ShiftedRows shifted = g.geometry ? shiftedRows(*g.geometry, g.imageCodes != nullptr) : ShiftedRows{};
  const void* tablePtr = nullptr;
#ifdef OCTET_X86
  std::unique_ptr<VectorTable> table;
  if (shifted.mode != ShiftedRows::kOff && g.imageCodes && !avx2) {
    table = std::make_unique<VectorTable>();
    loadVectorTable(g.table, *table);
    tablePtr = table.get();
  }
#endif
  // Images of codes: whether they read a non-finite value, and whether their table is E5M2's
  // (decoded by a half-precision conversion instead of a table lookup).
  const bool finiteImages = g.imageCodes && !imagesReadNonFinite(g.imageCodes, g.table, *g.geometry, g.n / (g.geometry->outH * g.geometry->outW), g.imageStride);
  const bool e5m2 = shifted.mode != ShiftedRows::kOff && g.imageCodes && e5m2Table(g.table, finiteImages);
  std::vector<uint32_t> wpairs;
  const bool pairs = shifted.mode != ShiftedRows::kOff && finiteImages && sparsePairs(g, stored, wpairs);
  if (pairs) noteBf16PairProduct();
  const double work = static_cast<double>(stored) * static_cast<double>(g.br * g.bc) * static_cast<double>(g.n);
  // Each item a chunk of columns: the rows of X the stored blocks read packed once, every block
  // row run over them.
  parallelFor(chunks, work < 2e6 ? 1 : threads, [&](int64_t chunk) {
    const int64_t j0 = chunk * chunkCols, j1 = std::min(g.n, j0 + chunkCols);
    const int64_t panels = (j1 - j0 + kPanel - 1) / kPanel, stride = panels * kPanel + 16;
    // The columns the tiles read: whole panels, or on AVX2 whole tiles (16 columns where blocks
    // have a multiple of 4 rows, else 32: runRowsAvx2).
    const int64_t tileCols = g.br % 4 == 0 ? 16 : 32;
    const int64_t reach = avx2 ? std::min(panels * kPanel, (j1 - j0 + tileCols - 1) / tileCols * tileCols) : panels * kPanel;
    float* buffer = chunkBuffer.get(static_cast<size_t>(std::max<int64_t>(1, packedRows * stride)));
    // Each used row of X over the chunk's columns: one column run (or copy) straight into its
    // buffer row; the columns past the chunk up to the last panel's end are zero.
    thread_local std::vector<uint8_t> codeLine;
    if (g.imageCodes) codeLine.resize(static_cast<size_t>(j1 - j0));
    const int64_t width = j1 - j0;
    for (size_t u = 0; u < used.size(); ++u) {
#ifdef OCTET_X86
      if (pairs) {
        // Pair row u * bc / 2 + t of rows (2t, 2t + 1) of the slot; rows past k are +0.
        for (int64_t t = 0; 2 * t < g.bc; ++t) {
          const int64_t k = used[u] * g.bc + 2 * t;
          uint32_t* row = reinterpret_cast<uint32_t*>(buffer) + (static_cast<int64_t>(u) * (g.bc / 2) + t) * stride;
          int64_t j = 0;
          if (k < g.k) {
            shiftedPairCodes(shifted, *table, e5m2, g.imageCodes, *g.geometry, g.imageStride, k, k + 1 < g.k ? k + 1 : -1, j0, width, row);
            j = width;
          }
          for (; j < panels * kPanel; ++j) row[j] = 0;
        }
        continue;
      }
#endif
      for (int64_t t = 0; t < g.bc; ++t) {
        const int64_t k = used[u] * g.bc + t;
        float* row = buffer + (static_cast<int64_t>(u) * g.bc + t) * stride;
        int64_t j = 0;
        if (k < g.k) {
          if (g.geometry) {
            columnRow(shifted, tablePtr, e5m2, *g.geometry, g.images, g.imageCodes, g.table, g.imageStride, k, j0, width, row, codeLine);
          } else {
            std::memcpy(row, g.x + k * g.ldx + j0, static_cast<size_t>(width) * sizeof(float));
          }
          j = width;
        }
        for (; j < reach; ++j) row[j] = 0.0f;
      }
    }
    // Panel by panel, every block row over it: a panel's packed rows (k x 64 columns) stay in
    // cache while the block rows read them (block row by block row, each would sweep the whole
    // chunk, about 1 MiB, from the next level).
    for (int64_t p = 0; p < panels; ++p) {
      for (int64_t q = 0; q < blockRows; ++q) {
        const int64_t c0 = j0 + p * kPanel;
#ifdef OCTET_X86
        if (pairs) {
          blockRowPairs(g, wpairs.data(), slot.data(), q, reinterpret_cast<const uint32_t*>(buffer) + p * kPanel, stride, std::min(kPanel, j1 - c0), c0);
          continue;
        }
#endif
        blockRow(g, slot.data(), q, buffer + p * kPanel, stride, std::min(kPanel, j1 - c0), c0);
      }
    }
  });
}


namespace {

thread_local AlignedBuffer rowsBuffer;

}  // namespace

namespace {

// bsrGather over a dense source: floats as they are (Get = identity) or codes through a table.
template <class T, class Get>
void gatherBlocks(const int32_t* rowPtr, const int32_t* colIdx, int64_t blockRows, const T* dense, int64_t rows, int64_t cols, int64_t br, int64_t bc,
                  bool transposed, float* values, Get get) {
  const int64_t size = br * bc;
  // The described matrix: rows x cols as stored, or cols x rows read through the transpose.
  const int64_t height = transposed ? cols : rows, width = transposed ? rows : cols;
  for (int64_t q = 0; q < blockRows; ++q) {
    const int64_t r0 = q * br, rn = std::min(br, height - r0);
    for (int32_t b = rowPtr[q]; b < rowPtr[q + 1]; ++b) {
      const int64_t c0 = static_cast<int64_t>(colIdx[b]) * bc, cn = std::min(bc, width - c0);
      float* out = values + static_cast<int64_t>(b) * size;
      if (rn < br || cn < bc) std::fill(out, out + size, 0.0f);
      if (!transposed) {
        for (int64_t r = 0; r < rn; ++r) {
          const T* from = dense + (r0 + r) * cols + c0;
          for (int64_t c = 0; c < cn; ++c) out[r * bc + c] = get(from[c]);
        }
      } else {
        for (int64_t c = 0; c < cn; ++c) {
          const T* from = dense + (c0 + c) * cols + r0;
          for (int64_t r = 0; r < rn; ++r) out[r * bc + c] = get(from[r]);
        }
      }
    }
  }
}

}  // namespace

void bsrGather(const int32_t* rowPtr, const int32_t* colIdx, int64_t blockRows, const float* dense, int64_t rows, int64_t cols, int64_t br, int64_t bc,
               bool transposed, float* values, const uint8_t* codes, const float* table) {
  if (codes) {
    gatherBlocks(rowPtr, colIdx, blockRows, codes, rows, cols, br, bc, transposed, values, [table](uint8_t v) { return table[v]; });
  } else {
    gatherBlocks(rowPtr, colIdx, blockRows, dense, rows, cols, br, bc, transposed, values, [](float v) { return v; });
  }
}

void bsrConvInputGradient(const BsrGemmArgs& wt, const float* dy, const ConvGeometry& geo, int64_t batch, float* dx, int64_t dxImageStride, int threads,
                          bool clear) {
  const int64_t plane = geo.outH * geo.outW;
  if (wt.m <= 0 || batch <= 0 || plane <= 0) return;
  const int64_t blockRows = (wt.m + wt.br - 1) / wt.br, blockCols = (wt.k + wt.bc - 1) / wt.bc;
  std::vector<int32_t> slot;
  std::vector<int64_t> used;
  if (usedBlockColumns(wt.rowPtr, wt.colIdx, blockRows, blockCols, 0, blockCols, slot, used) == 0) {
    if (clear) parallelFor(batch, threads, [&](int64_t n) { std::memset(dx + n * dxImageStride, 0, static_cast<size_t>(geo.channels * geo.height * geo.width) * sizeof(float)); });
    return;
  }
  // Planes smaller than a panel: several images side by side in one item's columns (image i of
  // the item at columns i * plane), so the tiles' vectors are not mostly past the plane.
  const int64_t group = plane < kPanel ? std::min(batch, kPanel / plane) : 1;
  const int64_t width = group * plane;
  const int64_t panels = (width + kPanel - 1) / kPanel, stride = panels * kPanel + 16, ldt = panels * kPanel;
  const int64_t packedRows = static_cast<int64_t>(used.size()) * wt.bc;
  const int64_t imageFloats = geo.channels * geo.height * geo.width;
  const FlatFold flat = flatFoldPlan(geo);
  parallelFor((batch + group - 1) / group, threads, [&](int64_t item) {
    const int64_t n0 = item * group, images = std::min(group, batch - n0), valid = images * plane;
    // The rows of dY (these images') that the stored blocks read, packed once.
    float* buffer = chunkBuffer.get(static_cast<size_t>(packedRows * stride));
    for (size_t u = 0; u < used.size(); ++u) {
      for (int64_t t = 0; t < wt.bc; ++t) {
        const int64_t o = used[u] * wt.bc + t;
        float* row = buffer + (static_cast<int64_t>(u) * wt.bc + t) * stride;
        int64_t j = 0;
        if (o < wt.k) {
          for (int64_t i = 0; i < images; ++i) std::memcpy(row + i * plane, dy + ((n0 + i) * wt.k + o) * plane, static_cast<size_t>(plane) * sizeof(float));
          j = valid;
        }
        for (; j < panels * kPanel; ++j) row[j] = 0.0f;
      }
    }
    float* t = rowsBuffer.get(static_cast<size_t>(wt.br * ldt));
    BsrGemmArgs g = wt;
    g.c = t;
    g.ldc = ldt;
    g.cPlane = 0;
    if (clear) {
      for (int64_t i = 0; i < images; ++i) std::memset(dx + (n0 + i) * dxImageStride, 0, static_cast<size_t>(imageFloats) * sizeof(float));
    }
    for (int64_t q = 0; q < blockRows; ++q) {
      if (wt.rowPtr[q] == wt.rowPtr[q + 1]) continue;
      g.cRow0 = q * wt.br;
      for (int64_t p = 0; p < panels; ++p) blockRow(g, slot.data(), q, buffer + p * kPanel, stride, std::min(kPanel, valid - p * kPanel), p * kPanel);
      for (int64_t r = 0; r < wt.br && q * wt.br + r < wt.m; ++r) {
        for (int64_t i = 0; i < images; ++i) {
          const float* in = t + r * ldt + i * plane;
          float* image = dx + (n0 + i) * dxImageStride;
          if (flat.on) flatFoldRow(in, q * wt.br + r, geo, flat, image);
          else col2imRow(in, q * wt.br + r, geo, image);
        }
      }
    }
  });
}

namespace {

// The weight gradient's plan. The used block columns (those some block row stores) are packed
// side by side: packed column u = slot * bc + e is row used[slot] * bc + e of the column matrix,
// and a chunk of columns j is packed transposed in groups of 16 packed columns: group G's row t
// (column j0 + t) is the 16 floats at (G * chunk + t) * 16, so a run of lanes reads one cache
// line per column, consecutive ones for consecutive columns (rows of all packed columns side by
// side would put each column's loads of one item on different pages). A block row's stored entries, in
// order, are cut into vectors of 16 lanes; each vector is a few runs of lanes whose packed columns
// and weight columns are both consecutive (one masked load or store each).
struct GradRun {
  uint16_t mask;   // the run's lanes
  int32_t packed;  // packed column of lane 0 (the run's first packed column - its first lane)
  int32_t col;     // weight column of lane 0
};
struct GradVector {
  int32_t run0, runs;
};
// Rows [q * br + r0, + rows) of block row q times vectors [vec0, vec0 + vectors).
struct GradItem {
  int64_t q, r0, rows;
  int32_t vec0, vectors;
};

struct GradPlan {
  std::vector<int64_t> used;  // block columns by slot
  std::vector<GradRun> runs;
  std::vector<GradVector> vectors;
  std::vector<GradItem> items;
  int64_t packed = 0;  // packed columns (used x bc)
};

// The plan of the stored blocks in block columns [p0, p1).
GradPlan gradPlan(const BsrWeightGradArgs& g, int64_t p0, int64_t p1) {
  GradPlan plan;
  const int64_t blockRows = (g.m + g.br - 1) / g.br, blockCols = (g.k + g.bc - 1) / g.bc;
  std::vector<int32_t> slot;
  usedBlockColumns(g.rowPtr, g.colIdx, blockRows, blockCols, p0, p1, slot, plan.used);
  plan.packed = static_cast<int64_t>(plan.used.size()) * g.bc;
  for (int64_t q = 0; q < blockRows; ++q) {
    // The block row's stored entries in order: (packed column, weight column).
    std::vector<std::pair<int32_t, int32_t>> lanes;
    for (int32_t b = g.rowPtr[q]; b < g.rowPtr[q + 1]; ++b) {
      if (g.colIdx[b] < p0 || g.colIdx[b] >= p1) continue;
      for (int64_t e = 0; e < g.bc && g.colIdx[b] * g.bc + e < g.k; ++e) {
        lanes.emplace_back(static_cast<int32_t>(slot[g.colIdx[b]] * g.bc + e), static_cast<int32_t>(g.colIdx[b] * g.bc + e));
      }
    }
    const int32_t vec0 = static_cast<int32_t>(plan.vectors.size());
    for (size_t l0 = 0; l0 < lanes.size(); l0 += 16) {
      GradVector v{static_cast<int32_t>(plan.runs.size()), 0};
      const size_t end = std::min(lanes.size(), l0 + 16);
      for (size_t l = l0; l < end; ++l) {
        const int lane = static_cast<int>(l - l0);
        // A run stays within one group of 16 packed columns (one cache line of a packed row).
        const bool extends = l > l0 && lanes[l].first == lanes[l - 1].first + 1 && lanes[l].second == lanes[l - 1].second + 1 && lanes[l].first % 16 != 0;
        if (extends) {
          plan.runs.back().mask = static_cast<uint16_t>(plan.runs.back().mask | (1u << lane));
        } else {
          plan.runs.push_back({static_cast<uint16_t>(1u << lane), lanes[l].first - lane, lanes[l].second - lane});
          ++v.runs;
        }
      }
      plan.vectors.push_back(v);
    }
    const int32_t count = static_cast<int32_t>(plan.vectors.size()) - vec0;
    const int64_t height = std::min(g.br, g.m - q * g.br);
    // Groups of 8 rows (then 4, 2, 1) times groups of 3 vectors (the last 1 or 2).
    for (int64_t r0 = 0; r0 < height;) {
      const int64_t left = height - r0, rows = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
      for (int32_t v0 = 0; v0 < count; v0 += 3) plan.items.push_back({q, r0, rows, vec0 + v0, std::min<int32_t>(3, count - v0)});
      r0 += rows;
    }
  }
  return plan;
}

// Block columns [cut[w], cut[w + 1]) for worker w: contiguous ranges of about equal work, a
// block column costing its stored entries' chains plus, where some block stores it, packing its
// bc rows of the column matrix (about 8 chains' worth per element).
std::vector<int64_t> splitColumns(const BsrWeightGradArgs& g, int workers) {
  const int64_t blockRows = (g.m + g.br - 1) / g.br, blockCols = (g.k + g.bc - 1) / g.bc;
  std::vector<int64_t> cost(static_cast<size_t>(blockCols), 0);
  for (int64_t b = 0; b < g.rowPtr[blockRows]; ++b) cost[static_cast<size_t>(g.colIdx[b])] += g.br * g.bc;
  int64_t total = 0;
  for (int64_t& c : cost) total += c = c ? c + 8 * g.bc : 0;
  std::vector<int64_t> cut(static_cast<size_t>(workers) + 1, blockCols);
  cut[0] = 0;
  int64_t sum = 0;
  int w = 1;
  for (int64_t p = 0; p < blockCols && w < workers; ++p) {
    sum += cost[static_cast<size_t>(p)];
    while (w < workers && sum * workers >= total * w) cut[static_cast<size_t>(w++)] = p + 1;
  }
  return cut;
}

// One item over packed rows [0, len) in plain loops (every build): the same chains.
void gradItemScalar(const GradPlan& plan, const GradItem& it, const float* colsT, int64_t chunk, int64_t len, const float* dyT, int64_t ldd, float* dw,
                    const BsrWeightGradArgs& g, bool first) {
  for (int32_t v = it.vec0; v < it.vec0 + it.vectors; ++v) {
    const GradVector& vec = plan.vectors[static_cast<size_t>(v)];
    for (int32_t r = vec.run0; r < vec.run0 + vec.runs; ++r) {
      const GradRun& run = plan.runs[static_cast<size_t>(r)];
      for (int lane = 0; lane < 16; ++lane) {
        if (!((run.mask >> lane) & 1u)) continue;
        for (int64_t i = it.q * g.br + it.r0; i < it.q * g.br + it.r0 + it.rows; ++i) {
          float* out = dw + i * g.k + run.col + lane;
          const float* d = dyT + i * ldd;
          float acc = first ? 0.0f : *out;
          const int64_t u = run.packed + lane;
          const float* column = colsT + (u / 16) * chunk * 16 + u % 16;
          for (int64_t t = 0; t < len; ++t) acc = std::fma(d[t], column[t * 16], acc);
          *out = acc;
        }
      }
    }
  }
}

#ifdef OCTET_X86
// R rows x V vectors of one item, each vector NR runs (padded with empty ones): the chains in
// registers over packed rows [0, len), started from +0 (first chunk) or from dw. The runs' masks
// and offsets are copied out first so that the loop is fully unrolled (no arrays in memory).
template <int R, int V, int NR>
__attribute__((target("avx512f"))) void gradTile(const GradPlan& plan, const GradItem& it, const float* colsT, int64_t chunk, int64_t len, const float* dyT,
                                                 int64_t ldd, float* dw, const BsrWeightGradArgs& g, float* carried, bool first, bool last) {
  __mmask16 mask[V][NR];
  int64_t packed[V][NR], col[V][NR];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const GradVector& vec = plan.vectors[static_cast<size_t>(it.vec0 + v)];
    for (int r = 0; r < NR; ++r) {
      const bool real = r < vec.runs;
      const GradRun& run = plan.runs[static_cast<size_t>(vec.run0 + (real ? r : 0))];
      mask[v][r] = real ? run.mask : 0;
      // The run's first packed column u and lane l: its loads start at group u / 16, offset u % 16 - l.
      const int lane = __builtin_ctz(run.mask), u = run.packed + lane;
      packed[v][r] = (u / 16) * chunk * 16 + u % 16 - lane;
      col[v][r] = run.col;
    }
  }
  const int64_t i0 = it.q * g.br + it.r0;
  // Every loop over acc unrolled: an index the compiler cannot resolve would keep acc in memory.
  // Between chunks the chains wait in `carried` (whole aligned vectors: masked stores are slow).
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = first ? _mm512_setzero_ps() : _mm512_load_ps(carried + (r * V + v) * 16);
  }
  const float* d = dyT + i0 * ldd;
  for (int64_t t = 0; t < len; ++t) {
    const float* row = colsT + t * 16;
    __m512 x[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      x[v] = _mm512_maskz_loadu_ps(mask[v][0], row + packed[v][0]);
#pragma GCC unroll 16
      for (int u = 1; u < NR; ++u) x[v] = _mm512_mask_loadu_ps(x[v], mask[v][u], row + packed[v][u]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 b = _mm512_set1_ps(d[r * ldd + t]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(b, x[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float* out = dw + (i0 + r) * g.k;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      if (!last) {
        _mm512_store_ps(carried + (r * V + v) * 16, acc[r][v]);
        continue;
      }
#pragma GCC unroll 16
      for (int u = 0; u < NR; ++u) _mm512_mask_storeu_ps(out + col[v][u], mask[v][u], acc[r][v]);
    }
  }
}

template <int R, int NR>
void gradVectors(const GradPlan& plan, const GradItem& it, const float* colsT, int64_t chunk, int64_t len, const float* dyT, int64_t ldd, float* dw,
                 const BsrWeightGradArgs& g, float* carried, bool first, bool last) {
  if (it.vectors == 3) gradTile<R, 3, NR>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
  else if (it.vectors == 2) gradTile<R, 2, NR>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
  else gradTile<R, 1, NR>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
}

template <int R>
void gradRows(const GradPlan& plan, const GradItem& it, const float* colsT, int64_t chunk, int64_t len, const float* dyT, int64_t ldd, float* dw,
              const BsrWeightGradArgs& g, float* carried, bool first, bool last) {
  int32_t runs = 0;
  for (int32_t v = it.vec0; v < it.vec0 + it.vectors; ++v) runs = std::max(runs, plan.vectors[static_cast<size_t>(v)].runs);
  if (runs <= 1) gradVectors<R, 1>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
  else if (runs <= 2) gradVectors<R, 2>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
  else if (runs <= 4) gradVectors<R, 4>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
  else if (runs <= 8) gradVectors<R, 8>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
  else gradVectors<R, 16>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
}

// The AVX2 + FMA tile: rows [r0, r0 + R) of an item times its vector v, the 16 lanes as two
// halves of 8 (each run one masked load per half, combined by OR: the other runs' lanes load as
// +0), the same chains; between chunks they wait in the item's `carried` block as the AVX-512
// tile leaves them ((r * vectors + v) * 16 floats).
template <int R, int NR>
__attribute__((target("avx2,fma"))) void gradTileAvx2(const GradPlan& plan, const GradItem& it, int v, int64_t r0, const float* colsT, int64_t chunk, int64_t len,
                                                     const float* dyT, int64_t ldd, float* dw, const BsrWeightGradArgs& g, float* carried, bool first, bool last) {
  const GradVector& vec = plan.vectors[static_cast<size_t>(it.vec0 + v)];
  __m256i mask[NR][2];
  int64_t packed[NR], col[NR];
  uint32_t bits[NR];
  for (int u = 0; u < NR; ++u) {
    const bool real = u < vec.runs;
    const GradRun& run = plan.runs[static_cast<size_t>(vec.run0 + (real ? u : 0))];
    bits[u] = real ? run.mask : 0;
    const int lane = __builtin_ctz(run.mask), k = run.packed + lane;
    packed[u] = (k / 16) * chunk * 16 + k % 16 - lane;
    col[u] = run.col;
    for (int h = 0; h < 2; ++h) {
      alignas(32) int32_t m[8];
      for (int l = 0; l < 8; ++l) m[l] = (bits[u] >> (8 * h + l)) & 1u ? -1 : 0;
      mask[u][h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
    }
  }
  const int64_t i0 = it.q * g.br + it.r0 + r0;
  __m256 acc[R][2];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    for (int h = 0; h < 2; ++h) acc[r][h] = first ? _mm256_setzero_ps() : _mm256_load_ps(carried + ((r0 + r) * it.vectors + v) * 16 + 8 * h);
  }
  const float* d = dyT + i0 * ldd;
  for (int64_t t = 0; t < len; ++t) {
    const float* row = colsT + t * 16;
    __m256 x[2];
    for (int h = 0; h < 2; ++h) {
      x[h] = _mm256_maskload_ps(row + packed[0] + 8 * h, mask[0][h]);
#pragma GCC unroll 16
      for (int u = 1; u < NR; ++u) x[h] = _mm256_or_ps(x[h], _mm256_maskload_ps(row + packed[u] + 8 * h, mask[u][h]));
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256 b = _mm256_broadcast_ss(d + r * ldd + t);
      acc[r][0] = _mm256_fmadd_ps(b, x[0], acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(b, x[1], acc[r][1]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    float* keep = carried + ((r0 + r) * it.vectors + v) * 16;
    _mm256_store_ps(keep, acc[r][0]);
    _mm256_store_ps(keep + 8, acc[r][1]);
  }
  if (!last) return;
  for (int r = 0; r < R; ++r) {
    const float* sums = carried + ((r0 + r) * it.vectors + v) * 16;
    float* out = dw + (i0 + r) * g.k;
    for (int u = 0; u < NR; ++u) {
      for (uint32_t m = bits[u]; m; m &= m - 1) out[col[u] + __builtin_ctz(m)] = sums[__builtin_ctz(m)];
    }
  }
}

template <int NR>
void gradItemAvx2Runs(const GradPlan& plan, const GradItem& it, const float* colsT, int64_t chunk, int64_t len, const float* dyT, int64_t ldd, float* dw,
                      const BsrWeightGradArgs& g, float* carried, bool first, bool last) {
  for (int v = 0; v < it.vectors; ++v) {
    for (int64_t r0 = 0; r0 < it.rows;) {
      const int64_t left = it.rows - r0;
      if (left >= 4) gradTileAvx2<4, NR>(plan, it, v, r0, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last), r0 += 4;
      else if (left >= 2) gradTileAvx2<2, NR>(plan, it, v, r0, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last), r0 += 2;
      else gradTileAvx2<1, NR>(plan, it, v, r0, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last), r0 += 1;
    }
  }
}

void gradItemAvx2(const GradPlan& plan, const GradItem& it, const float* colsT, int64_t chunk, int64_t len, const float* dyT, int64_t ldd, float* dw,
                  const BsrWeightGradArgs& g, float* carried, bool first, bool last) {
  int32_t runs = 0;
  for (int32_t v = it.vec0; v < it.vec0 + it.vectors; ++v) runs = std::max(runs, plan.vectors[static_cast<size_t>(v)].runs);
  if (runs <= 1) gradItemAvx2Runs<1>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
  else if (runs <= 2) gradItemAvx2Runs<2>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
  else if (runs <= 4) gradItemAvx2Runs<4>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
  else if (runs <= 8) gradItemAvx2Runs<8>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
  else gradItemAvx2Runs<16>(plan, it, colsT, chunk, len, dyT, ldd, dw, g, carried, first, last);
}

// 16 rows of 16 floats (rows ld apart) transposed: out row i (i < count) at out + i * S gets
// column i of the input.
__attribute__((target("avx512f"))) void transpose16(const float* in, int64_t ld, float* out, int64_t S, int64_t count) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(in + i * ld);
  transpose16x16(r, t);
  for (int64_t i = 0; i < count; ++i) _mm512_storeu_ps(out + i * S, t[i]);
}

// transpose16 in four 8 x 8 transposes (the same reads and writes).
__attribute__((target("avx2"))) void transpose16Avx2(const float* in, int64_t ld, float* out, int64_t S, int64_t count) {
  for (int64_t b = 0; b < 2 && b * 8 < count; ++b) {
    for (int64_t a = 0; a < 2; ++a) {
      __m256 r[8], t[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + (a * 8 + i) * ld + b * 8);
      transpose8x8(r, t);
      for (int64_t i = 0; i < 8 && b * 8 + i < count; ++i) _mm256_storeu_ps(out + (b * 8 + i) * S + a * 8, t[i]);
    }
  }
}
#endif

thread_local AlignedBuffer gradRowsBuffer, gradColsBuffer, gradDyBuffer, gradCarriedBuffer;

// One worker's share: the stored entries of block columns [p0, p1), over every chunk of
// columns j in order; its packed columns and the output gradient's rows in buffers of its own
// (nothing written by one worker is read by another).
void gradWorker(const BsrWeightGradArgs& g, const ShiftedRows& shifted, const void* tablePtr, bool e5m2, int64_t p0, int64_t p1) {
  const ConvGeometry& geo = *g.geometry;
  const int64_t plane = geo.outH * geo.outW, n = g.batch * plane;
  const GradPlan plan = gradPlan(g, p0, p1);
  if (plan.items.empty()) return;
  bool avx512 = false, avx2 = false;
#ifdef OCTET_X86
  avx512 = family() == Family::kAvx512;
  avx2 = family() == Family::kAvx2;
#else
  (void)avx2;
#endif
  // Groups of 16 packed columns, each `chunk` rows of 16 floats (see GradPlan); chunks of about
  // 1 MiB of packed columns.
  const int64_t groups = (plan.packed + 15) / 16, S = groups * 16;
  const int64_t chunk = std::max<int64_t>(16, std::min<int64_t>(4096, (262144 / S) / 16 * 16));
  const int64_t ldd = chunk + 16, width = chunk + 16;
  float* colsT = gradColsBuffer.get(static_cast<size_t>(chunk * S));  // groups x chunk x 16
  float* dyT = gradDyBuffer.get(static_cast<size_t>(g.m * ldd));
  float* rows = gradRowsBuffer.get(static_cast<size_t>(16 * width));
  int64_t carriedSize = 16;
  for (const GradItem& it : plan.items) carriedSize += it.rows * it.vectors * 16;
  float* carriedAll = gradCarriedBuffer.get(static_cast<size_t>(carriedSize));
  // The output gradient's rows this worker's blocks read.
  std::vector<int64_t> dyRows;
  for (int64_t o = 0; o < g.m; ++o) {
    const int64_t q = o / g.br;
    for (int32_t b = g.rowPtr[q]; b < g.rowPtr[q + 1]; ++b) {
      if (g.colIdx[b] >= p0 && g.colIdx[b] < p1) {
        dyRows.push_back(o);
        break;
      }
    }
  }
  std::vector<uint8_t> codeLine(g.imageCodes ? static_cast<size_t>(chunk) : 0);
  for (int64_t j0 = 0; j0 < n; j0 += chunk) {
    const int64_t len = std::min(chunk, n - j0);
    for (const int64_t o : dyRows) {
      float* out = dyT + o * ldd;
      for (int64_t t = 0; t < len;) {
        const int64_t j = j0 + t, img = j / plane, p = j % plane, seg = std::min(plane - p, len - t);
        const int64_t at = (img * g.m + o) * plane + p;
        if (g.dyCodes) decodeCodes(g.dyCodes + at, g.dyTable, false, seg, out + t);
        else std::memcpy(out + t, g.dy + at, static_cast<size_t>(seg) * sizeof(float));
        t += seg;
      }
    }
    // 16 packed columns at a time: their rows of the column matrix, then transposed.
    for (int64_t group = 0; group < groups; ++group) {
      for (int64_t r = 0; r < 16; ++r) {
        const int64_t u = group * 16 + r;
        float* row = rows + r * width;
        const int64_t kk = u < plan.packed ? plan.used[static_cast<size_t>(u / g.bc)] * g.bc + u % g.bc : g.k;
        if (kk >= g.k) std::fill(row, row + width, 0.0f);
        else columnRow(shifted, tablePtr, e5m2, geo, g.images, g.imageCodes, g.table, g.imageStride, kk, j0, len, row, codeLine);
      }
      float* out = colsT + group * chunk * 16;
#ifdef OCTET_X86
      if (avx512) {
        for (int64_t t = 0; t < len; t += 16) transpose16(rows + t, width, out + t * 16, 16, std::min<int64_t>(16, len - t));
        continue;
      }
#endif
      for (int64_t r = 0; r < 16; ++r) {
        for (int64_t t = 0; t < len; ++t) out[t * 16 + r] = rows[r * width + t];
      }
    }
    const bool first = j0 == 0, last = j0 + len == n;
    float* carried = carriedAll;
    for (const GradItem& it : plan.items) {
#ifdef OCTET_X86
      if (avx512) {
        if (it.rows == 8) gradRows<8>(plan, it, colsT, chunk, len, dyT, ldd, g.dw, g, carried, first, last);
        else if (it.rows == 4) gradRows<4>(plan, it, colsT, chunk, len, dyT, ldd, g.dw, g, carried, first, last);
        else if (it.rows == 2) gradRows<2>(plan, it, colsT, chunk, len, dyT, ldd, g.dw, g, carried, first, last);
        else gradRows<1>(plan, it, colsT, chunk, len, dyT, ldd, g.dw, g, carried, first, last);
        carried += it.rows * it.vectors * 16;
        continue;
      }
      if (avx2) {
        gradItemAvx2(plan, it, colsT, chunk, len, dyT, ldd, g.dw, g, carried, first, last);
        carried += it.rows * it.vectors * 16;
        continue;
      }
#endif
      gradItemScalar(plan, it, colsT, chunk, len, dyT, ldd, g.dw, g, first);
    }
  }
}

}  // namespace

void bsrConvWeightGradient(const BsrWeightGradArgs& g, int threads) {
  const ConvGeometry& geo = *g.geometry;
  const int64_t n = g.batch * geo.outH * geo.outW, blockRows = (g.m + g.br - 1) / g.br;
  if (g.m <= 0 || g.k <= 0 || n <= 0 || g.rowPtr[blockRows] == 0) return;
  const ShiftedRows shifted = shiftedRows(geo, g.imageCodes != nullptr);
  const void* tablePtr = nullptr;
  bool e5m2 = false;
#ifdef OCTET_X86
  std::unique_ptr<VectorTable> table;
  if (family() == Family::kAvx512 && g.imageCodes) {
    table = std::make_unique<VectorTable>();
    loadVectorTable(g.table, *table);
    tablePtr = table.get();
  }
  if (shifted.mode != ShiftedRows::kOff && g.imageCodes) e5m2 = e5m2Table(g.table, !imagesReadNonFinite(g.imageCodes, g.table, geo, g.batch, g.imageStride));
#endif
  // Workers split the weight's block columns (each stored entry is one worker's chain).
  const double work = static_cast<double>(g.rowPtr[blockRows]) * static_cast<double>(g.br * g.bc) * static_cast<double>(n);
  const int team = work < 2e6 ? 1 : std::max(1, threads);
  const std::vector<int64_t> cut = splitColumns(g, team);
  parallelFor(team, team, [&](int64_t w) { gradWorker(g, shifted, tablePtr, e5m2, cut[static_cast<size_t>(w)], cut[static_cast<size_t>(w) + 1]); });
}

namespace {

// The input gradient of one-byte codes as the contract computes it (lowpConv2dBackwardData): the
// stride-1 forward convolution of the stride-dilated dY with the rotated weights, each dx element
// one chain over (output channel, then rotated tap) from +0, one rounding a product-add. The
// chains here visit the kept weights only (a pruned weight's product is an exact zero, which
// changes no sum but a zero one's sign, and the contract's zero results are +0 as these are),
// with the 16 lanes of a vector 16 images: every tap's shift is a whole number of vectors, so a
// product reads one aligned vector and no lane is spent between images.
// - Phases: dx rows h = y SH + ph (columns alike). Rotated tap i reaches a dY row only in the
//   phase with (ph + i DH - dH) divisible by SH, and there dY row y + delta, delta = (ph + i DH -
//   dH) / SH; the other taps read the dilated image's zeros. Stride 1: one phase, delta = i DH - dH.
// - dY, 16 images at a time, is decoded into planes [OC][positions][16 images]: rows T + OH + B
//   and columns L + OW + R (= wp) with dY(oh, ow) at (T + oh, L + ow) and zeros around it, T and L
//   the largest upward and leftward reach, B and R what the phases' last rows and columns read
//   past dY.
// - Phase f's output (y, x) is position y wp + x; its taps read position + (T + delta_i) wp + L +
//   delta_j. Positions run 16 at a time, the columns past the phase's of each row computed and dropped.
// - List (f, c): channel c's chain in phase f, for each block row q its rows oc in order, each
//   with its kept columns of c in decreasing column (increasing rotated tap) whose tap is of the
//   phase; entries (value, offset) stored run by run, a run one list's entries of one block row,
//   in the items' order (phase, block row, channel); built in parallel over lists.
// - An item is 16 positions of a phase x a range of channels, block row by block row (the planes
//   of the block row's output channels stay in cache while the channels' runs add them in); the
//   sums transposed back to images (16 positions x 16 images) and stored where they are outputs.
constexpr int64_t kLaneChannels = 512;

AlignedBuffer lanePlanes;
thread_local AlignedBuffer laneAcc, laneLine;

// Lanes [lane, lane + count) of a chunk: phase row y (dx row y SH + ph) from phase column x.
struct OutputRun {
  int32_t lane, count, h, w;
};

#ifdef OCTET_X86
// acc[v] = fma(w, x[v], acc[v]) over the entries in order, x at base + the entry's offset (16
// positions of 16 images: sixteen independent chains).
__attribute__((target("avx512f"))) void laneRun(const float* values, const int32_t* offsets, int64_t count, const float* base, float* acc) {
  __m512 s[16];
#pragma GCC unroll 16
  for (int v = 0; v < 16; ++v) s[v] = _mm512_load_ps(acc + 16 * v);
  for (int64_t e = 0; e < count; ++e) {
    const __m512 w = _mm512_set1_ps(values[e]);
    const float* x = base + offsets[e];
#pragma GCC unroll 16
    for (int v = 0; v < 16; ++v) s[v] = _mm512_fmadd_ps(w, _mm512_load_ps(x + 16 * v), s[v]);
  }
#pragma GCC unroll 16
  for (int v = 0; v < 16; ++v) _mm512_store_ps(acc + 16 * v, s[v]);
}

// laneRun on 8 lanes: the 16 positions in passes of 6, 6 and 4 (12, 12 and 8 chains in
// registers), each pass over the entries in order: every lane's chain the same fused
// multiply-adds in the same order.
template <int NP>
__attribute__((target("avx2,fma"), always_inline)) inline void laneRunPassAvx2(const float* values, const int32_t* offsets, int64_t count, const float* base, float* acc) {
  __m256 s[2 * NP];
#pragma GCC unroll 12
  for (int v = 0; v < 2 * NP; ++v) s[v] = _mm256_load_ps(acc + 8 * v);
  for (int64_t e = 0; e < count; ++e) {
    const __m256 w = _mm256_broadcast_ss(values + e);
    const float* x = base + offsets[e];
#pragma GCC unroll 12
    for (int v = 0; v < 2 * NP; ++v) s[v] = _mm256_fmadd_ps(w, _mm256_load_ps(x + 8 * v), s[v]);
  }
#pragma GCC unroll 12
  for (int v = 0; v < 2 * NP; ++v) _mm256_store_ps(acc + 8 * v, s[v]);
}

__attribute__((target("avx2,fma"))) void laneRunAvx2(const float* values, const int32_t* offsets, int64_t count, const float* base, float* acc) {
  laneRunPassAvx2<6>(values, offsets, count, base, acc);
  laneRunPassAvx2<6>(values, offsets, count, base + 96, acc + 96);
  laneRunPassAvx2<4>(values, offsets, count, base + 192, acc + 192);
}

// Lanes [lane, lane + count) of the 16 floats at `from` to to[0 .. count).
__attribute__((target("avx512f"))) inline void storeRun(float* to, const float* from, int lane, int count) {
  _mm512_mask_storeu_ps(to - lane, static_cast<__mmask16>(((1u << count) - 1u) << lane), _mm512_load_ps(from));
}
#endif

}  // namespace

bool sparseRotatedInputGradient(const SparseInputGradArgs& a, int threads) {
#ifdef OCTET_X86
  // AVX-512 (16 images a vector) or AVX2 (the same vectors as two halves); not the plain loops.
  if (family() == Family::kPortable) return false;
  const bool wide = family() == Family::kAvx512;
  const auto run = wide ? laneRun : laneRunAvx2;
  const auto transpose = wide ? transpose16 : transpose16Avx2;
  const int64_t taps = a.kernelH * a.kernelW, k = a.channels * taps;
  const int64_t sH = a.strideH, sW = a.strideW;
  const int64_t C = a.channels, OC = a.outChannels, H = a.height, W = a.width, OH = a.outH, OW = a.outW;
  // The dilated gradient image's offset: dx(h, w) reads it at (h + i DH, w + j DW), and dY(oh, ow)
  // sits there at (oh SH + dH, ow SW + dW).
  const int64_t dH = a.dilationH * (a.kernelH - 1) - a.padH, dW = a.dilationW * (a.kernelW - 1) - a.padW;
  if (sH < 1 || sW < 1 || dH < 0 || dW < 0) return false;
  const int64_t dyPlane = OH * OW;
  // dY finite (the images lie one after the other).
  if (a.dyImageStride != OC * dyPlane) return false;
  if (a.dyCodes ? mayReadNonFinite(a.dyCodes, a.batch * a.dyImageStride, tableFacts(a.dyTable, 256))
                : valueFacts(a.dy, a.batch * a.dyImageStride).firstNonFinite < 128) {
    return false;
  }
  auto phaseOf = [](int64_t t, int64_t dil, int64_t d, int64_t s) {
    const int64_t m = ((d - t * dil) % s + s) % s;  // the ph with ph + t dil - d = 0 (mod s)
    return std::pair<int64_t, int64_t>{m, (m + t * dil - d) / s};
  };
  auto rowsOfPhase = [](int64_t size, int64_t ph, int64_t s) { return ph >= size ? int64_t(0) : (size - ph + s - 1) / s; };
  int64_t minRow = 0, maxRow = 0, minCol = 0, maxCol = 0, topDelta = 0, leftDelta = 0;
  for (int64_t i = 0; i < a.kernelH; ++i) {
    const auto [ph, delta] = phaseOf(i, a.dilationH, dH, sH);
    minRow = std::min(minRow, delta);
    topDelta = std::max(topDelta, delta);
    maxRow = std::max(maxRow, rowsOfPhase(H, ph, sH) - 1 + delta - (OH - 1));
  }
  for (int64_t j = 0; j < a.kernelW; ++j) {
    const auto [pw, delta] = phaseOf(j, a.dilationW, dW, sW);
    minCol = std::min(minCol, delta);
    leftDelta = std::max(leftDelta, delta);
    maxCol = std::max(maxCol, rowsOfPhase(W, pw, sW) - 1 + delta - (OW - 1));
  }
  const int64_t T = -minRow, B = std::max<int64_t>(0, maxRow), L = -minCol, R = std::max<int64_t>(0, maxCol);
  const int64_t wp = L + OW + R, hp = T + OH + B;
  const int64_t phases = sH * sW;
  // Each phase's chunks of 16 positions (phase rows x wp), and the planes' length in vectors: the
  // padded plane, or as far as the last chunk's furthest tap reads.
  std::vector<int64_t> chunkStart(static_cast<size_t>(phases) + 1, 0);
  for (int64_t f = 0; f < phases; ++f) {
    const int64_t rowsHere = rowsOfPhase(H, f / sW, sH), colsHere = rowsOfPhase(W, f % sW, sW);
    chunkStart[static_cast<size_t>(f) + 1] = chunkStart[static_cast<size_t>(f)] + (rowsHere && colsHere ? (rowsHere * wp + 15) / 16 : 0);
  }
  int64_t longest = 0;
  for (int64_t f = 0; f < phases; ++f) longest = std::max(longest, chunkStart[static_cast<size_t>(f) + 1] - chunkStart[static_cast<size_t>(f)]);
  const int64_t planeVecs = std::max(hp * wp, longest * 16 + (T + topDelta) * wp + L + leftDelta);
  if (static_cast<double>(OC) * static_cast<double>(planeVecs) * 16.0 > 2e9) return false;  // offsets are 32-bit floats
  // Each kernel tap's phase (-1: a phase with no dx rows or columns, kernels wider than the image)
  // and its offset in the planes (floats), by the tap's index t in the kernel, rotated (KH-1 - t / KW, KW-1 - t % KW).
  std::vector<int32_t> tapPhase(static_cast<size_t>(taps)), tapOffset(static_cast<size_t>(taps));
  for (int64_t t = 0; t < taps; ++t) {
    const auto [ph, di] = phaseOf(a.kernelH - 1 - t / a.kernelW, a.dilationH, dH, sH);
    const auto [pw, dj] = phaseOf(a.kernelW - 1 - t % a.kernelW, a.dilationW, dW, sW);
    const bool reaches = rowsOfPhase(H, ph, sH) > 0 && rowsOfPhase(W, pw, sW) > 0;
    tapPhase[static_cast<size_t>(t)] = reaches ? static_cast<int32_t>(ph * sW + pw) : -1;
    tapOffset[static_cast<size_t>(t)] = static_cast<int32_t>(((T + di) * wp + L + dj) * 16);
  }
  const int64_t blockRows = (OC + a.br - 1) / a.br, blockCols = (k + a.bc - 1) / a.bc;
  // Where each block is stored, by (block row, block column); -1 where it is not.
  std::vector<int32_t> blockAt(static_cast<size_t>(blockRows * blockCols), -1);
  for (int64_t q = 0; q < blockRows; ++q) {
    for (int32_t b = a.rowPtr[q]; b < a.rowPtr[q + 1]; ++b) blockAt[static_cast<size_t>(q * blockCols + a.colIdx[b])] = b;
  }
  // Channel c's kept columns of block row q in phase f: visit(col) for each, by decreasing column.
  auto columns = [&](int64_t f, int64_t c, int64_t q, auto visit) {
    const int64_t lo = c * taps, hi = (c + 1) * taps;
    for (int64_t bcol = (hi - 1) / a.bc; bcol >= lo / a.bc; --bcol) {
      if (blockAt[static_cast<size_t>(q * blockCols + bcol)] < 0) continue;
      for (int64_t col = std::min(hi, (bcol + 1) * a.bc) - 1; col >= std::max(lo, bcol * a.bc); --col) {
        if (tapPhase[static_cast<size_t>(col - lo)] == f) visit(col);
      }
    }
  };
  // Run (f, q, c): list (f, c)'s entries of block row q (rows of the block row times the
  // columns). Runs are stored in the order the items visit them (phase, block row, channel), so
  // that an item streams its entries (stored list by list, each run had been a few entries at a
  // jump of a list's length: a third of the AVX2 loop's time waited for them).
  const int64_t lists = phases * C;
  auto runOf = [&](int64_t f, int64_t q, int64_t c) { return (f * blockRows + q) * C + c; };
  thread_local std::vector<int64_t> runStart;
  thread_local std::vector<float> values;
  thread_local std::vector<int32_t> offsets;
  runStart.assign(static_cast<size_t>(phases * blockRows * C + 1), 0);
  int64_t* starts = runStart.data();
  for (int64_t l = 0; l < lists; ++l) {
    for (int64_t q = 0; q < blockRows; ++q) {
      int64_t cols = 0;
      columns(l / C, l % C, q, [&](int64_t) { ++cols; });
      starts[runOf(l / C, q, l % C) + 1] = cols * (std::min(OC, (q + 1) * a.br) - q * a.br);
    }
  }
  for (int64_t r = 0; r < phases * blockRows * C; ++r) starts[r + 1] += starts[r];
  const int64_t total = starts[phases * blockRows * C];
  values.resize(static_cast<size_t>(total));
  offsets.resize(static_cast<size_t>(total));
  float* valueAt = values.data();
  int32_t* offsetAt = offsets.data();
  std::atomic<bool> finite{true};
  parallelFor(lists, threads, [&](int64_t l) {
    const int64_t f = l / C, c = l % C, lo = c * taps;
    bool ok = true;
    for (int64_t q = 0; q < blockRows; ++q) {
      int64_t at = starts[runOf(f, q, c)];
      if (starts[runOf(f, q, c) + 1] == at) continue;
      for (int64_t oc = q * a.br; oc < std::min(OC, (q + 1) * a.br); ++oc) {
        const int32_t planeAt = static_cast<int32_t>(oc * planeVecs * 16);
        columns(f, c, q, [&](int64_t col) {
          const float v = a.wCodes ? a.wTable[a.wCodes[oc * k + col]] : a.w[oc * k + col];
          ok = ok && std::isfinite(v);
          valueAt[at] = v;
          offsetAt[at] = planeAt + tapOffset[static_cast<size_t>(col - lo)];
          ++at;
        });
      }
    }
    if (!ok) finite = false;
  });
  if (!finite) return false;
  // Each chunk's runs of output lanes (a run within one phase row).
  const int64_t chunks = chunkStart[static_cast<size_t>(phases)];
  std::vector<OutputRun> outputRuns;
  std::vector<size_t> chunkRuns(static_cast<size_t>(chunks) + 1, 0);
  for (int64_t f = 0; f < phases; ++f) {
    const int64_t ph = f / sW, pw = f % sW, rowsHere = rowsOfPhase(H, ph, sH), colsHere = rowsOfPhase(W, pw, sW);
    for (int64_t ch = chunkStart[static_cast<size_t>(f)]; ch < chunkStart[static_cast<size_t>(f) + 1]; ++ch) {
      const int64_t first = (ch - chunkStart[static_cast<size_t>(f)]) * 16;
      for (int64_t l = 0; l < 16;) {
        const int64_t p = first + l, y = p / wp, x = p % wp;
        if (y >= rowsHere || x >= colsHere) {
          ++l;
          continue;
        }
        const int64_t count = std::min(colsHere - x, 16 - l);
        outputRuns.push_back({static_cast<int32_t>(l), static_cast<int32_t>(count), static_cast<int32_t>(y * sH + ph), static_cast<int32_t>(x * sW + pw)});
        l += count;
      }
      chunkRuns[static_cast<size_t>(ch) + 1] = outputRuns.size();
    }
  }
  // dY is finite (checked above): E5M2 codes by half conversion where the table is E5M2's.
  const bool e5m2 = a.dyCodes && e5m2Table(a.dyTable, true);
  const int64_t pixels = H * W;
  const int64_t lineWidth = (dyPlane + 31) / 16 * 16;  // a plane and the 16 floats a last transpose may read past it
  float* planes = lanePlanes.get(static_cast<size_t>(OC * planeVecs * 16));
  // Channels an item: as many as keep their sums within 512 KB (every item reads all output
  // channels' planes over its positions, block row by block row), fewer where the items would
  // not spread over the threads.
  int64_t laneChannels = std::min<int64_t>(C, kLaneChannels);
  while (laneChannels > 16 && longest * ((C + laneChannels - 1) / laneChannels) < 4 * threads) laneChannels = (laneChannels + 1) / 2;
  const int64_t channelBlocks = (C + laneChannels - 1) / laneChannels;
  for (int64_t n0 = 0; n0 < a.batch; n0 += 16) {
    const int64_t images = std::min<int64_t>(16, a.batch - n0);
    // The group's planes: every vector written (zeros around dY), output channel by output channel.
    parallelFor(OC, threads, [&](int64_t oc) {
      float* plane = planes + oc * planeVecs * 16;
      // The 16 images' planes of this output channel side by side (rows lineWidth apart).
      float* line = laneLine.get(static_cast<size_t>(16 * lineWidth));
      for (int64_t i = 0; i < 16; ++i) {
        float* row = line + i * lineWidth;
        const int64_t from = (n0 + i) * a.dyImageStride + oc * dyPlane;
        if (i >= images) std::memset(row, 0, sizeof(float) * static_cast<size_t>(dyPlane + 16));
        else if (a.dyCodes) decodeCodes(a.dyCodes + from, a.dyTable, e5m2, dyPlane, row);
        else std::memcpy(row, a.dy + from, sizeof(float) * static_cast<size_t>(dyPlane));
      }
      std::memset(plane, 0, sizeof(float) * 16 * static_cast<size_t>(T * wp));
      for (int64_t oh = 0; oh < OH; ++oh) {
        float* out = plane + ((oh + T) * wp) * 16;
        std::memset(out, 0, sizeof(float) * 16 * static_cast<size_t>(L));
        for (int64_t ow = 0; ow < OW; ow += 16) transpose(line + oh * OW + ow, lineWidth, out + (L + ow) * 16, 16, std::min<int64_t>(16, OW - ow));
        std::memset(out + (L + OW) * 16, 0, sizeof(float) * 16 * static_cast<size_t>(R));
      }
      std::memset(plane + (T + OH) * wp * 16, 0, sizeof(float) * 16 * static_cast<size_t>(planeVecs - (T + OH) * wp));
    });
    // An item: chunk j of every phase (neighbouring dx rows and columns, written while in cache)
    // for a range of channels.
    parallelFor(longest * channelBlocks, threads, [&](int64_t item) {
      const int64_t j = item / channelBlocks, c0 = (item % channelBlocks) * laneChannels, c1 = std::min(C, c0 + laneChannels);
      float* acc = laneAcc.get(static_cast<size_t>(laneChannels * 256));
      alignas(64) float byImage[256];
      for (int64_t f = 0; f < phases; ++f) {
        const int64_t ch = chunkStart[static_cast<size_t>(f)] + j;
        if (ch >= chunkStart[static_cast<size_t>(f) + 1]) continue;
        std::memset(acc, 0, sizeof(float) * 256 * static_cast<size_t>(c1 - c0));
        const float* base = planes + j * 256;
        for (int64_t q = 0; q < blockRows; ++q) {
          for (int64_t c = c0; c < c1; ++c) {
            const int64_t r = runOf(f, q, c), s0 = starts[r], s1 = starts[r + 1];
            if (s1 > s0) run(valueAt + s0, offsetAt + s0, s1 - s0, base, acc + (c - c0) * 256);
          }
        }
        const size_t r0 = chunkRuns[static_cast<size_t>(ch)], r1 = chunkRuns[static_cast<size_t>(ch) + 1];
        for (int64_t c = c0; c < c1; ++c) {
          transpose(acc + (c - c0) * 256, 16, byImage, 16, 16);
          for (int64_t i = 0; i < images; ++i) {
            float* image = a.dx + (n0 + i) * a.dxImageStride + c * pixels;
            const float* lanes = byImage + i * 16;
            for (size_t r = r0; r < r1; ++r) {
              const OutputRun& out = outputRuns[r];
              if (sW == 1 && wide) {
                storeRun(image + out.h * W + out.w, lanes, out.lane, out.count);
              } else if (sW == 1) {
                std::memcpy(image + out.h * W + out.w, lanes + out.lane, sizeof(float) * static_cast<size_t>(out.count));
              } else {
                for (int32_t e = 0; e < out.count; ++e) image[out.h * W + out.w + e * sW] = lanes[out.lane + e];
              }
            }
          }
        }
      }
    });
  }
  return true;
#else
  (void)a, (void)threads;
  return false;
#endif
}

}  // namespace octet
