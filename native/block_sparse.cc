#include "block_sparse.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

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

// Where C(i, j) is (see BsrGemmArgs).
inline float* cAt(const BsrGemmArgs& g, int64_t i, int64_t j) {
  return g.cPlane ? g.c + (j / g.cPlane) * g.cImageStride + i * g.ldc + j % g.cPlane : g.c + i * g.ldc + j;
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
// R rows x V vectors of 16 columns of a panel from column `offset` (masked past width),
// every stored k of block row q in order.
template <int R, int V, bool kFused>
__attribute__((target("avx512f"))) void tileAvx512(const BsrGemmArgs& g, const int32_t* slot, int64_t q, int64_t r0, int64_t rows, const float* panel,
                                                   int64_t stride, int64_t offset, int64_t width, int64_t c0) {
  __mmask16 mask[V];
  for (int v = 0; v < V; ++v) {
    const int64_t left = width - (offset + 16 * v);
    mask[v] = left >= 16 ? static_cast<__mmask16>(0xffff) : left <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << left) - 1u);
  }
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
  for (int r = 0; r < R && r < rows; ++r) {
    for (int v = 0; v < V; ++v) {
      if (!mask[v]) continue;
      const int64_t i = q * g.br + r0 + r, j = c0 + offset + 16 * v;
      if (!g.cPlane || j % g.cPlane + 16 <= g.cPlane) {
        _mm512_mask_storeu_ps(cAt(g, i, j), mask[v], acc[r][v]);
      } else {
        // 16 columns across an image's end: each image's lanes stored where they go.
        alignas(64) float lanes[16];
        _mm512_store_ps(lanes, acc[r][v]);
        imageRuns(g, i, j, 16, [&](int l, int count, float* at) {
          for (int t = 0; t < count; ++t)
            if (mask[v] >> (l + t) & 1) at[t] = lanes[l + t];
        });
      }
    }
  }
}

template <int R, int V>
void runRows(const BsrGemmArgs& g, const int32_t* slot, int64_t q, int64_t r0, int64_t rows, const float* panel, int64_t stride, int64_t width,
             int64_t c0) {
  for (int64_t offset = 0; offset < kPanel && offset < width; offset += 16 * V) {
    if (g.fused) tileAvx512<R, V, true>(g, slot, q, r0, rows, panel, stride, offset, width, c0);
    else tileAvx512<R, V, false>(g, slot, q, r0, rows, panel, stride, offset, width, c0);
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
    for (int64_t t = 0; t < span; ++t) {
      __m256 xv[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) xv[v] = _mm256_load_ps(xrow + 8 * v);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m256 wv = _mm256_set1_ps(w[r * g.bc + t]);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[r][v] = kFused ? _mm256_fmadd_ps(wv, xv[v], acc[r][v]) : _mm256_add_ps(acc[r][v], _mm256_mul_ps(wv, xv[v]));
      }
      xrow += stride;
    }
  }
  for (int r = 0; r < R && r < rows; ++r) {
    for (int v = 0; v < V; ++v) {
      if (offset + 8 * v >= width) continue;
      const int64_t i = q * g.br + r0 + r, j = c0 + offset + 8 * v;
      if (!g.cPlane || j % g.cPlane + 8 <= g.cPlane) {
        _mm256_maskstore_ps(cAt(g, i, j), mask[v], acc[r][v]);
      } else {
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, acc[r][v]);
        const int64_t valid = std::min<int64_t>(8, width - offset - 8 * v);
        imageRuns(g, i, j, static_cast<int>(valid), [&](int l, int count, float* at) {
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

ShiftedRows shiftedRows(const ConvGeometry& g, bool codes) {
  ShiftedRows s;
#ifdef OCTET_X86
  const int64_t plane = g.outH * g.outW;
  if (family() != Family::kAvx512 || (codes && !cpuHasAvx512Bw()) || g.height * g.width > (int64_t(1) << 30)) return s;
  s.mode = g.strideH == 1 && g.strideW == 1 && g.outW == g.width ? ShiftedRows::kShift
           : g.strideW == 2 && g.outW % 16 == 0                      ? ShiftedRows::kStride2
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
      _mm512_mask_storeu_ps(out + w.at, w.lanes, _mm512_maskz_loadu_ps(masks[w.gi], base + w.image * imageStride + w.gi * 16));
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
      _mm512_mask_storeu_ps(out + w.at, w.lanes, _mm512_permutex2var_ps(lo, even, hi));
    }
    return;
  }
  const int32_t* offsets = s.offsets.data() + tap * s.groups * 16;
  for (GroupWalk w(s, q0); w.t < len;) {
    w.next(s, len);
    const __m512i idx = _mm512_loadu_si512(offsets + w.gi * 16);
    _mm512_mask_storeu_ps(out + w.at, w.lanes, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), masks[w.gi], idx, channel + w.image * imageStride, 4));
  }
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) void shiftedRunCodes(const ShiftedRows& s, const VectorTable& table, const uint8_t* x, const ConvGeometry& g,
                                                                        int64_t imageStride, int64_t r, int64_t q0, int64_t len, float* out) {
  const int64_t c = r / s.taps, tap = r % s.taps;
  const uint16_t* masks = s.masks.data() + tap * s.groups;
  const uint8_t* channel = x + c * g.height * g.width;
  alignas(16) uint8_t lanes16[16];
  for (GroupWalk w(s, q0); w.t < len;) {
    w.next(s, len);
    const __mmask16 m = masks[w.gi];
    const uint8_t* image = channel + w.image * imageStride;
    __m128i bytes;
    if (s.mode == ShiftedRows::kShift) {
      bytes = _mm_maskz_loadu_epi8(m, image + s.shift[static_cast<size_t>(tap)] + w.gi * 16);
    } else if (s.mode == ShiftedRows::kStride2) {
      const size_t k = static_cast<size_t>(tap * s.groups + w.gi);
      bytes = _mm256_cvtepi16_epi8(_mm256_maskz_loadu_epi8(s.pairMasks[k], image + s.offsets[k]));
    } else {
      const int32_t* offsets = s.offsets.data() + (tap * s.groups + w.gi) * 16;
      for (int l = 0; l < 16; ++l) lanes16[l] = image[offsets[l]];  // outside lanes read the plane's first code, masked below
      bytes = _mm_maskz_mov_epi8(m, _mm_load_si128(reinterpret_cast<const __m128i*>(lanes16)));
    }
    _mm512_mask_storeu_ps(out + w.at, w.lanes, _mm512_maskz_mov_ps(m, lookup16(table, _mm512_cvtepu8_epi32(bytes))));
  }
}
#endif

}  // namespace

void bsrGemm(const BsrGemmArgs& g, int threads) {
  if (g.m <= 0 || g.n <= 0) return;
  const int64_t blockRows = (g.m + g.br - 1) / g.br, blockCols = (g.k + g.bc - 1) / g.bc;
  // The block columns some block row stores, and where each one's bc rows of X sit in a panel.
  std::vector<int32_t> slot(static_cast<size_t>(blockCols), -1);
  const int64_t stored = g.rowPtr[blockRows];
  for (int64_t b = 0; b < stored; ++b) slot[g.colIdx[b]] = 0;
  std::vector<int64_t> used;
  for (int64_t p = 0; p < blockCols; ++p) {
    if (slot[p] < 0) continue;
    slot[p] = static_cast<int32_t>(used.size());
    used.push_back(p);
  }
  const int64_t packedRows = static_cast<int64_t>(used.size()) * g.bc;
  const int64_t chunkCols = chunkColumns(packedRows);
  const int64_t chunks = (g.n + chunkCols - 1) / chunkCols;
  // Column runs 16 outputs at a time where the CPU allows (ShiftedRows).
  const ShiftedRows shifted = g.geometry ? shiftedRows(*g.geometry, g.imageCodes != nullptr) : ShiftedRows{};
#ifdef OCTET_X86
  std::unique_ptr<VectorTable> table;
  if (shifted.mode != ShiftedRows::kOff && g.imageCodes) {
    table = std::make_unique<VectorTable>();
    loadVectorTable(g.table, *table);
  }
#endif
  const double work = static_cast<double>(stored) * static_cast<double>(g.br * g.bc) * static_cast<double>(g.n);
  // Each item a chunk of columns: the rows of X the stored blocks read packed once, every block
  // row run over them.
  parallelFor(chunks, work < 2e6 ? 1 : threads, [&](int64_t chunk) {
    const int64_t j0 = chunk * chunkCols, j1 = std::min(g.n, j0 + chunkCols);
    const int64_t panels = (j1 - j0 + kPanel - 1) / kPanel, stride = panels * kPanel + 16;
    float* buffer = chunkBuffer.get(static_cast<size_t>(std::max<int64_t>(1, packedRows * stride)));
    // Each used row of X over the chunk's columns: one column run (or copy) straight into its
    // buffer row; the columns past the chunk up to the last panel's end are zero.
    thread_local std::vector<uint8_t> codeLine;
    if (g.imageCodes) codeLine.resize(static_cast<size_t>(j1 - j0));
    const int64_t width = j1 - j0;
    for (size_t u = 0; u < used.size(); ++u) {
      for (int64_t t = 0; t < g.bc; ++t) {
        const int64_t k = used[u] * g.bc + t;
        float* row = buffer + (static_cast<int64_t>(u) * g.bc + t) * stride;
        int64_t j = 0;
        if (k < g.k) {
#ifdef OCTET_X86
          if (shifted.mode != ShiftedRows::kOff && g.imageCodes) {
            shiftedRunCodes(shifted, *table, g.imageCodes, *g.geometry, g.imageStride, k, j0, width, row);
          } else if (shifted.mode != ShiftedRows::kOff) {
            shiftedRun(shifted, g.images, *g.geometry, g.imageStride, k, j0, width, row);
          } else
#endif
          if (g.geometry && g.imageCodes) {
            columnRun(g.imageCodes, *g.geometry, g.imageStride, k, j0, width, codeLine.data());
            decodeCodes(codeLine.data(), g.table, false, width, row);
          } else if (g.geometry) {
            columnRun(g.images, *g.geometry, g.imageStride, k, j0, width, row);
          } else {
            std::memcpy(row, g.x + k * g.ldx + j0, static_cast<size_t>(width) * sizeof(float));
          }
          j = width;
        }
        for (; j < panels * kPanel; ++j) row[j] = 0.0f;
      }
    }
    for (int64_t q = 0; q < blockRows; ++q) {
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t c0 = j0 + p * kPanel;
        blockRow(g, slot.data(), q, buffer + p * kPanel, stride, std::min(kPanel, j1 - c0), c0);
      }
    }
  });
}

}  // namespace octet
