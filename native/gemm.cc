#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "parallel.h"
#include "scratch.h"
#include "sources.h"

#include "gemm_kernels.h"

namespace octet {
namespace {

using gemm_detail::KernelSpec;
using gemm_detail::selectKernel;

// Aligned scratch for packed panels, one set per thread, grown as needed and reused.
struct PackBuffers {
  AlignedFloats a, b;
};

thread_local PackBuffers tlsPack;

// Rows of a k-major operand (a transposed A, a row-major B) packed together across all the
// block's panels: rows a multiple of 4 KiB apart share cache sets, and streaming a panel's whole k
// range row by row would evict what the next panel reads (32: measured best of 1-128 on tall
// block-scaled products).
constexpr int64_t kPackRows = 32;

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

#ifdef OCTET_X86
// dst[j * ldd + i] = src[i * ld + j] for a 16 x 16 block: three rounds of unpacks and lane
// shuffles (32-bit pairs, 64-bit pairs, then 128-bit lanes).
__attribute__((target("avx512f"))) inline void transpose16(const float* src, int64_t ld, float* dst, int64_t ldd) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ld);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // r[4k + j], lane L: column 4L + j of rows 4k .. 4k + 3.
  for (int k = 0; k < 16; k += 4) {
    const __m512d a = _mm512_castps_pd(t[k]), b = _mm512_castps_pd(t[k + 1]), c = _mm512_castps_pd(t[k + 2]), d = _mm512_castps_pd(t[k + 3]);
    r[k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 u0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x44), u1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xEE);
    const __m512 v0 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x44), v1 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xEE);
    _mm512_storeu_ps(dst + (0 + j) * ldd, _mm512_shuffle_f32x4(u0, v0, 0x88));
    _mm512_storeu_ps(dst + (4 + j) * ldd, _mm512_shuffle_f32x4(u0, v0, 0xDD));
    _mm512_storeu_ps(dst + (8 + j) * ldd, _mm512_shuffle_f32x4(u1, v1, 0x88));
    _mm512_storeu_ps(dst + (12 + j) * ldd, _mm512_shuffle_f32x4(u1, v1, 0xDD));
  }
}
#endif

inline uint32_t floatBits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}

// The pair kernel's 32-bit word of two values exact in bfloat16 (their float32 bits): the first's
// top half above the second's; with `pad` as the low half past an odd k.
inline uint32_t pairWord(uint32_t first, uint32_t second) { return (first & 0xffff0000u) | (second >> 16); }
inline uint32_t padWord(uint32_t first, uint32_t pad) { return (first & 0xffff0000u) | pad; }

#ifdef OCTET_X86
// The same on 16 lanes; second null: the low halves are pad.
__attribute__((target("avx512f"), always_inline)) inline __m512i pairWords16(__m512i first, const __m512i* second, uint32_t pad) {
  const __m512i high = _mm512_and_si512(first, _mm512_set1_epi32(static_cast<int>(0xffff0000u)));
  return _mm512_or_si512(high, second ? _mm512_srli_epi32(*second, 16) : _mm512_set1_epi32(static_cast<int>(pad)));
}

// One row of packPairsInPlace, 16 columns at a time; returns how many columns it did.
__attribute__((target("avx512f"))) inline int pairRowAvx512(const uint32_t* high, const uint32_t* low, uint32_t pad, int width,
                                                            uint32_t* out) {
  int j = 0;
  for (; j + 16 <= width; j += 16) {
    const __m512i l = low ? _mm512_loadu_si512(low + j) : _mm512_setzero_si512();
    _mm512_storeu_si512(out + j, pairWords16(_mm512_loadu_si512(high + j), low ? &l : nullptr, pad));
  }
  return j;
}
#endif

// Interleave `lines` runs of kc floats (run l at lines[l * kc]) into a panel of `width` columns:
// dst[p * width + l] = run l's element p, zero for l >= lines. 16 x 16 blocks transpose in
// registers where AVX-512 is there; the rest element by element (the same values either way).
void interleaveLines(const float* runs, int64_t lines, int64_t kc, int width, float* dst) {
  int64_t fullLines = 0, fullP = 0;
#ifdef OCTET_X86
  if (cpuHasAvx512()) {
    fullLines = lines / 16 * 16;
    fullP = kc / 16 * 16;
    for (int64_t l0 = 0; l0 < fullLines; l0 += 16) {
      for (int64_t p0 = 0; p0 < fullP; p0 += 16) transpose16(runs + l0 * kc + p0, kc, dst + p0 * width + l0, width);
    }
  }
#endif
  for (int64_t p = 0; p < kc; ++p) {
    float* d = dst + p * width;
    for (int64_t l = p < fullP ? fullLines : 0; l < lines; ++l) d[l] = runs[l * kc + p];
    for (int64_t l = lines; l < width; ++l) d[l] = 0.0f;
  }
}

// E5M2 operands read across their rows (A's rows, or B's rows when B is transposed): decode each of
// the `lines` runs of kc codes 16 at a time into `tmp` (lines x kc floats), then interleave them
// into the panel as the float path does: dst[p * width + line] = tmp[line * kc + p].
#ifdef OCTET_X86
void packLinesE5m2(const uint8_t* codes, int64_t ld, int64_t lines, int64_t kc, int width, float* tmp, float* dst) {
  for (int64_t l = 0; l < lines; ++l) decodeE5m2(codes + l * ld, tmp + l * kc, kc);
  interleaveLines(tmp, lines, kc, width, dst);
}

thread_local std::vector<float> lineBuffer;

// `count` runs of kc E5M2 codes, `ld` apart from `first`, into panels of `width` runs each
// (panel q at dst + q * kc * width), through packLinesE5m2.
void packPanelsE5m2(const uint8_t* first, int64_t ld, int64_t count, int64_t kc, int width, float* dst) {
  lineBuffer.resize(static_cast<size_t>(width * kc));
  for (int64_t l0 = 0; l0 < count; l0 += width) {
    packLinesE5m2(first + l0 * ld, ld, std::min<int64_t>(width, count - l0), kc, width, lineBuffer.data(), dst + (l0 / width) * kc * width);
  }
}
#endif

// A packed panel of kc rows of `width` floats, every one exact in bfloat16, rewritten in place as
// ceil(kc / 2) rows of `width` 32-bit pairs: (bits(row 2q) & 0xffff0000) | (bits(row 2q + 1) >> 16),
// the low half `pad` past an odd kc (KernelSpec::pairs). Row q overwrites only rows already read.
void packPairsInPlace(float* panel, int64_t kc, int width, uint32_t pad) {
  uint32_t* words = reinterpret_cast<uint32_t*>(panel);
  for (int64_t q = 0; 2 * q < kc; ++q) {
    const uint32_t* high = words + 2 * q * width;
    const uint32_t* low = 2 * q + 1 < kc ? high + width : nullptr;
    uint32_t* out = words + q * width;
    int j = 0;
#ifdef OCTET_X86
    if (cpuHasAvx512()) j = pairRowAvx512(high, low, pad, width, out);
#endif
    for (; j < width; ++j) out[j] = low ? pairWord(high[j], low[j]) : padWord(high[j], pad);
  }
}

// Panels `count` of them, kc x width each, one after another from `panels`.
void packPanelsPairs(float* panels, int64_t count, int64_t kc, int width, uint32_t pad) {
  for (int64_t q = 0; q < count; ++q) packPairsInPlace(panels + q * kc * width, kc, width, pad);
}

thread_local std::vector<uint8_t> codeRun;
thread_local std::vector<float> floatRun;

#ifdef OCTET_X86
// out[t] = pairWord(bits(v0[t]), bits(v1[t])), v0 and v1 the values of E5M2 codes c0 and c1
// (c1 null: padWord with pad), 16 at a time; returns how many it did.
__attribute__((target("avx512f,avx2,f16c"))) inline int64_t pairWordsE5m2(const uint8_t* c0, const uint8_t* c1, uint32_t pad, int64_t n,
                                                                          uint32_t* out) {
  int64_t t = 0;
  for (; t + 16 <= n; t += 16) {
    const __m512i low = c1 ? _mm512_castps_si512(decodeE5m2x16(c1 + t)) : _mm512_setzero_si512();
    _mm512_storeu_si512(out + t, pairWords16(_mm512_castps_si512(decodeE5m2x16(c0 + t)), c1 ? &low : nullptr, pad));
  }
  return t;
}

// A run of 2 * n floats (exact in bfloat16) as n pair words: out[q] = (bits(v[2q]) & 0xffff0000) |
// (bits(v[2q + 1]) >> 16), 16 at a time by one two-source permutation of 16-bit halves; returns
// how many it did.
__attribute__((target("avx512f,avx512bw"))) inline int64_t pairWordsAlong(const float* v, int64_t n, uint32_t* out) {
  alignas(64) uint16_t order[32];
  for (int q = 0; q < 16; ++q) {
    order[2 * q] = static_cast<uint16_t>(4 * q + 3);      // low half: element 2q + 1's high half
    order[2 * q + 1] = static_cast<uint16_t>(4 * q + 1);  // high half: element 2q's high half
  }
  const __m512i index = _mm512_load_si512(order);
  int64_t q = 0;
  for (; q + 16 <= n; q += 16) {
    const __m512i lo = _mm512_loadu_si512(v + 2 * q), hi = _mm512_loadu_si512(v + 2 * q + 16);
    _mm512_storeu_si512(out + q, _mm512_permutex2var_epi16(lo, index, hi));
  }
  return q;
}
#endif

// The pair words of two runs of n codes (c1 null: the low half pad): see packPairsInPlace.
void pairWordsFromCodes(const uint8_t* c0, const uint8_t* c1, const float* lut, bool e5m2, uint32_t pad, int64_t n, uint32_t* out) {
  int64_t t = 0;
#ifdef OCTET_X86
  if (e5m2 && cpuHasAvx512() && haveHalfConversion()) t = pairWordsE5m2(c0, c1, pad, n, out);
#endif
  for (; t < n; ++t) out[t] = c1 ? pairWord(floatBits(lut[c0[t]]), floatBits(lut[c1[t]])) : padWord(floatBits(lut[c0[t]]), pad);
}

}  // namespace

// A run of kc floats as ceil(kc / 2) pair words, the last low half pad when kc is odd (gemm.h).
void pairWordsFromRun(const float* v, int64_t kc, uint32_t pad, uint32_t* out) {
  const int64_t pairs = kc / 2;
  int64_t q = 0;
#ifdef OCTET_X86
  if (cpuHasAvx512()) q = pairWordsAlong(v, pairs, out);
#endif
  for (; q < pairs; ++q) out[q] = pairWord(floatBits(v[2 * q]), floatBits(v[2 * q + 1]));
  if (kc % 2) out[pairs] = padWord(floatBits(v[kc - 1]), pad);
}

namespace {

thread_local std::vector<uint8_t> codeRunOdd;
thread_local std::vector<uint32_t> wordRun;

// packBColumns for the pair kernel (B's codes exact in bfloat16, B padding with +0): the pair
// panels straight from the images, without a float panel to convert. The columns read inside
// the images (sgemm writes out each plane's read window first: windowGeometry), so the runs need
// no bounds tests.
void packBColumnsPairs(const GemmArgs& g, const KernelSpec& ks, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float* bp) {
  const ImplicitColumns& src = *g.bColumns;
  const ConvGeometry& geo = src.geometry;
  const int nr = ks.nr;
  uint32_t* panels = reinterpret_cast<uint32_t*>(bp);
  const int64_t pairRows = (kc + 1) / 2;
  auto run = [&](int64_t r, int64_t q0, int64_t len, uint8_t* out) { unpaddedColumnRun(src.codes, geo, src.imageStride, r, q0, len, out); };
  if (!g.transB) {
    // Rows pc + 2q and pc + 2q + 1 of col as two runs of codes, combined into row q of each panel.
    // (One long pairing pass, then copies into the panels: faster than pairing panel by panel.)
    codeRun.resize(static_cast<size_t>(nc));
    codeRunOdd.resize(static_cast<size_t>(nc));
    wordRun.resize(static_cast<size_t>(nc));
    for (int64_t q = 0; q < pairRows; ++q) {
      const bool odd = 2 * q + 1 < kc;
      run(pc + 2 * q, jc, nc, codeRun.data());
      if (odd) run(pc + 2 * q + 1, jc, nc, codeRunOdd.data());
      pairWordsFromCodes(codeRun.data(), odd ? codeRunOdd.data() : nullptr, g.bLut, g.bIsE5M2, 0u, nc, wordRun.data());
      for (int64_t j0 = 0; j0 < nc; j0 += nr) {
        const int64_t width = std::min<int64_t>(nr, nc - j0);
        uint32_t* d = panels + (j0 / nr) * kc * nr + q * nr;
        std::memcpy(d, wordRun.data() + j0, static_cast<size_t>(width) * sizeof(uint32_t));
        for (int64_t j = width; j < nr; ++j) d[j] = 0u;
      }
    }
    return;
  }
  // Panel column l is a run along row jc + j0 + l of col: decode it, pair it along the run, then
  // interleave the runs of pair words as the float path interleaves floats.
  floatRun.resize(static_cast<size_t>(kc));
  wordRun.resize(static_cast<size_t>(nr * pairRows));
  codeRun.resize(static_cast<size_t>(kc));
  for (int64_t j0 = 0; j0 < nc; j0 += nr) {
    const int64_t width = std::min<int64_t>(nr, nc - j0);
    for (int64_t l = 0; l < width; ++l) {
      run(jc + j0 + l, pc, kc, codeRun.data());
      decodeCodes(codeRun.data(), g.bLut, g.bIsE5M2, kc, floatRun.data());
      pairWordsFromRun(floatRun.data(), kc, 0u, wordRun.data() + l * pairRows);
    }
    interleaveLines(reinterpret_cast<const float*>(wordRun.data()), width, pairRows, nr, bp + (j0 / nr) * kc * nr);
  }
}

// packB for B read from images: op(B)(p, j) is col(p, j), or col(j, p) with transB.
void packBColumns(const GemmArgs& g, const KernelSpec& ks, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float* bp) {
  const ImplicitColumns& src = *g.bColumns;
  const ConvGeometry& geo = src.geometry;
  const int nr = ks.nr;
  // out[0, len) = col(r, q0 + t), floats whatever the images hold.
  auto run = [&](int64_t r, int64_t q0, int64_t len, float* out) {
    if (src.x) {
      columnRun(src.x, geo, src.imageStride, r, q0, len, out);
      return;
    }
    codeRun.resize(static_cast<size_t>(len));
    columnRun(src.codes, geo, src.imageStride, r, q0, len, codeRun.data());
    decodeCodes(codeRun.data(), g.bLut, g.bIsE5M2, len, out);
  };
  if (!g.transB) {
    // Row pc + p of col over the block's columns as one run, then its panel rows out of it.
    floatRun.resize(static_cast<size_t>(nc));
    float* line = floatRun.data();
    for (int64_t p = 0; p < kc; ++p) {
      run(pc + p, jc, nc, line);
      for (int64_t j0 = 0; j0 < nc; j0 += nr) {
        const int64_t width = std::min<int64_t>(nr, nc - j0);
        float* d = bp + (j0 / nr) * kc * nr + p * nr;
        std::memcpy(d, line + j0, static_cast<size_t>(width) * sizeof(float));
        for (int64_t j = width; j < nr; ++j) d[j] = 0.0f;
      }
    }
    return;
  }
  // Panel column l is a run along row jc + j0 + l of col: gather the runs, then interleave.
  floatRun.resize(static_cast<size_t>(nr * kc));
  float* lines = floatRun.data();
  for (int64_t j0 = 0; j0 < nc; j0 += nr) {
    const int64_t width = std::min<int64_t>(nr, nc - j0);
    float* dst = bp + (j0 / nr) * kc * nr;
    for (int64_t l = 0; l < width; ++l) run(jc + j0 + l, pc, kc, lines + l * kc);
    interleaveLines(lines, width, kc, nr, dst);
  }
}

#ifdef OCTET_X86
// packBFrom for B as row-major one-byte codes (not transposed): a few rows at a time across the
// block's panels (rows ldb apart share L1 sets when ldb is a multiple of 4 KiB), each panel row
// looked up 16 codes at a time in the table held in registers (the same values as CodeSource).
__attribute__((target("avx512f,avx512bw,avx512vl"))) void packBCodeRows(const GemmArgs& g, const KernelSpec& ks, int64_t pc, int64_t kc,
                                                                        int64_t jc, int64_t nc, float* bp) {
  VectorTable table;
  loadVectorTable(g.bLut, table);
  const int nr = ks.nr;
  for (int64_t p0 = 0; p0 < kc; p0 += kPackRows) {
    const int64_t p1 = std::min(kc, p0 + kPackRows);
    for (int64_t j0 = 0; j0 < nc; j0 += nr) {
      const int width = static_cast<int>(std::min<int64_t>(nr, nc - j0));
      float* dst = bp + (j0 / nr) * kc * nr;
      for (int64_t p = p0; p < p1; ++p) {
        const uint8_t* row = g.bCodes + (pc + p) * g.ldb + jc + j0;
        float* d = dst + p * nr;
        for (int h = 0; h < nr; h += 16) lookupRun(table, row + h, std::max(0, std::min(16, width - h)), 16, d + h);
      }
    }
  }
}
#endif

void packBFloats(const GemmArgs& g, const KernelSpec& ks, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float* bp) {
  if (g.bColumns) {
    packBColumns(g, ks, pc, kc, jc, nc, bp);
    return;
  }
#ifdef OCTET_X86
  if (g.bCodes && g.bIsE5M2 && g.transB && kc >= 16 && haveHalfConversion()) {
    packPanelsE5m2(g.bCodes + jc * g.ldb + pc, g.ldb, nc, kc, ks.nr, bp);
    return;
  }
  if (g.bCodes && !g.bIsE5M2 && !g.transB && cpuHasAvx512() && cpuHasAvx512Bw()) {
    packBCodeRows(g, ks, pc, kc, jc, nc, bp);
    return;
  }
  if (g.bCodes && g.bIsE5M2 && !g.transB && haveHalfConversion()) {
    const int nr = ks.nr;
    for (int64_t j0 = 0; j0 < nc; j0 += nr) {
      const int64_t width = std::min<int64_t>(nr, nc - j0);
      float* dst = bp + (j0 / nr) * kc * nr;
      for (int64_t p = 0; p < kc; ++p) {
        float* d = dst + p * nr;
        decodeE5m2(g.bCodes + (pc + p) * g.ldb + jc + j0, d, width);
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
  if (!g.transA) {
    int64_t rows[32];
    for (int64_t i0 = 0; i0 < mc; i0 += mr) {
      const int64_t height = std::min<int64_t>(mr, mc - i0);
      float* dst = ap + (i0 / mr) * kc * mr;
      for (int64_t i = 0; i < height; ++i) rows[i] = (ic + i0 + i) * g.lda + pc;
      for (int64_t p = 0; p < kc; ++p) {
        float* d = dst + p * mr;
        for (int64_t i = 0; i < height; ++i) d[i] = src(rows[i] + p);
        for (int64_t i = height; i < mr; ++i) d[i] = 0.0f;
      }
    }
    return;
  }
  // Transposed: a few rows of A at a time across every panel (see packACodesTransposed).
  for (int64_t p0 = 0; p0 < kc; p0 += kPackRows) {
    const int64_t p1 = std::min(kc, p0 + kPackRows);
    for (int64_t i0 = 0; i0 < mc; i0 += mr) {
      const int64_t height = std::min<int64_t>(mr, mc - i0);
      float* dst = ap + (i0 / mr) * kc * mr;
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t row = (pc + p) * g.lda + ic + i0;
        float* d = dst + p * mr;
        for (int64_t i = 0; i < height; ++i) d[i] = src(row + i);
        for (int64_t i = height; i < mr; ++i) d[i] = 0.0f;
      }
    }
  }
}

#ifdef OCTET_X86
// packAFrom for op(A) stored transposed as one-byte codes (A is k x m, a row of A holds one k's
// values for consecutive rows of op(A)): each panel row is up to MR consecutive codes, looked up
// 16 at a time in the table held in registers (the same values as CodeSource).
__attribute__((target("avx512f,avx512bw,avx512vl"))) void packACodesTransposed(const GemmArgs& g, const KernelSpec& ks, int64_t ic, int64_t mc,
                                                                               int64_t pc, int64_t kc, float* ap) {
  VectorTable table;
  loadVectorTable(g.aLut, table);
  const int mr = ks.mr;
  // A few rows of A at a time across every panel: rows lda apart share L1 sets when lda is a
  // multiple of 4 KiB, and a panel's whole k range would evict itself.
  for (int64_t p0 = 0; p0 < kc; p0 += kPackRows) {
    const int64_t p1 = std::min(kc, p0 + kPackRows);
    for (int64_t i0 = 0; i0 < mc; i0 += mr) {
      const int height = static_cast<int>(std::min<int64_t>(mr, mc - i0));
      float* dst = ap + (i0 / mr) * kc * mr;
      for (int64_t p = p0; p < p1; ++p) {
        const uint8_t* row = g.aCodes + (pc + p) * g.lda + ic + i0;
        float* d = dst + p * mr;
        for (int h = 0; h < mr; h += 16) lookupRun(table, row + h, std::max(0, std::min(16, height - h)), std::min(16, mr - h), d + h);
      }
    }
  }
}
#endif

void packAFloats(const GemmArgs& g, const KernelSpec& ks, int64_t ic, int64_t mc, int64_t pc, int64_t kc, float* ap) {
#ifdef OCTET_X86
  if (g.aCodes && g.aIsE5M2 && !g.transA && kc >= 16 && haveHalfConversion()) {
    packPanelsE5m2(g.aCodes + ic * g.lda + pc, g.lda, mc, kc, ks.mr, ap);
    return;
  }
  if (g.aCodes && g.transA && cpuHasAvx512() && cpuHasAvx512Bw()) {
    packACodesTransposed(g, ks, ic, mc, pc, kc, ap);
    return;
  }
#endif
  if (g.aCodes) packAFrom(g, ks, CodeSource{g.aCodes, g.aLut}, ic, mc, pc, kc, ap);
  else packAFrom(g, ks, FloatSource{g.a}, ic, mc, pc, kc, ap);
}

// Pack B's panels (and, for the pair kernel, convert them; B pads with +0).
void packB(const GemmArgs& g, const KernelSpec& ks, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float* bp) {
  if (ks.pairPanels && g.bColumns) {
    packBColumnsPairs(g, ks, pc, kc, jc, nc, bp);
    return;
  }
  packBFloats(g, ks, pc, kc, jc, nc, bp);
  if (ks.pairPanels) packPanelsPairs(bp, (nc + ks.nr - 1) / ks.nr, kc, ks.nr, 0u);
}

// Pack A's panels (and, for the pair kernel, convert them; A pads with -0, so that the padded
// product is -0 and adds nothing: x + -0 = x for every x, zeros included).
void packA(const GemmArgs& g, const KernelSpec& ks, int64_t ic, int64_t mc, int64_t pc, int64_t kc, float* ap) {
  packAFloats(g, ks, ic, mc, pc, kc, ap);
  if (ks.pairPanels) packPanelsPairs(ap, (mc + ks.mr - 1) / ks.mr, kc, ks.mr, 0x8000u);
}

// Where C(i, j) is (see GemmArgs::cPlane); a tile starting at column j lies within one image.
inline float* cAt(const GemmArgs& g, int64_t i, int64_t j) {
  return g.cPlane ? g.c + (j / g.cPlane) * g.cImageStride + i * g.ldc + j % g.cPlane : g.c + i * g.ldc + j;
}

// Whether the kernel reads op(A) in place for a range of `panels` B panels: when few panels would
// reuse a packed copy of A, and the tile shape has a kernel that reads A directly.
bool readsAInPlace(const GemmArgs& g, const KernelSpec& ks, int64_t panels) {
  return !g.transA && !ks.pairPanels && panels <= 4 && (g.aCodes ? ks.directCoded != nullptr : ks.direct != nullptr);
}

// Multiply the packed B block (kc x nc at column jc) by rows [m0, m1) of op(A), for the NR panels
// [panel0, panel1) of the block.
// prepackedA, when not null, holds op(A) rows [m0, m1) of this k block already packed (the
// layout packA writes, mc blocks one after another).
void multiplyRows(const GemmArgs& g, const KernelSpec& ks, const float* bp, int64_t pc, int64_t kc, int64_t jc,
                  int64_t nc, int64_t m0, int64_t m1, int64_t panel0, int64_t panel1, float beta,
                  const float* prepackedA = nullptr) {
  PackBuffers& buf = tlsPack;
  const int mr = ks.mr, nr = ks.nr;
  // Few B panels: each packed A panel would serve too few tiles, so read A in place.
  if (!prepackedA && readsAInPlace(g, ks, panel1 - panel0)) {
    for (int64_t ir = m0; ir < m1; ir += mr) {
      const int rows = static_cast<int>(std::min<int64_t>(mr, m1 - ir));
      // E5M2 rows decode 16 at a time into a small buffer the float kernel reads (faster than a
      // table load per element inside the kernel, once rows are long enough to pay for the call).
      const float* decodedRows = nullptr;
#ifdef OCTET_X86
      if (g.aCodes && g.aIsE5M2 && kc >= 64 && haveHalfConversion()) {
        float* rowsBuffer = buf.a.get(static_cast<size_t>(mr * kc));
        for (int i = 0; i < rows; ++i) decodeE5m2(g.aCodes + (ir + i) * g.lda + pc, rowsBuffer + i * kc, kc);
        decodedRows = rowsBuffer;
      }
#endif
      for (int64_t panel = panel0; panel < panel1; ++panel) {
        const int64_t jr = panel * nr;
        const int cols = static_cast<int>(std::min<int64_t>(nr, nc - jr));
        if (decodedRows) {
          ks.direct(kc, decodedRows, kc, bp + panel * kc * nr, cAt(g, ir, jc + jr), g.ldc, g.alpha, beta, rows, cols);
        } else if (g.aCodes) {
          ks.directCoded(kc, g.aCodes + ir * g.lda + pc, g.lda, g.aLut, bp + panel * kc * nr, cAt(g, ir, jc + jr), g.ldc, g.alpha, beta,
                         rows, cols);
        } else {
          ks.direct(kc, g.a + ir * g.lda + pc, g.lda, bp + panel * kc * nr, cAt(g, ir, jc + jr), g.ldc, g.alpha, beta, rows, cols);
        }
      }
    }
    return;
  }
  for (int64_t ic = m0; ic < m1; ic += ks.mc) {
    const int64_t mc = std::min(ks.mc, m1 - ic);
    const int64_t mcPadded = (mc + mr - 1) / mr * mr;
    float* ap;
    if (prepackedA) {
      ap = const_cast<float*>(prepackedA) + (ic - m0) / mr * mr * kc;
    } else {
      ap = buf.a.get(static_cast<size_t>(kc * mcPadded));
      packA(g, ks, ic, mc, pc, kc, ap);
    }
    // The A micro-panel (MR x kc) stays in L1 while the B panels stream from L2.
    for (int64_t ir = 0; ir < mc; ir += mr) {
      const float* apanel = ap + (ir / mr) * kc * mr;
      const int rows = static_cast<int>(std::min<int64_t>(mr, mc - ir));
      for (int64_t panel = panel0; panel < panel1; ++panel) {
        const int64_t jr = panel * nr;
        ks.micro(kc, apanel, bp + panel * kc * nr, cAt(g, ic + ir, jc + jr), g.ldc, g.alpha, beta, rows,
                 static_cast<int>(std::min<int64_t>(nr, nc - jr)));
      }
    }
  }
}

void scaleC(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      float* at = cAt(g, i, j);
      *at = g.beta == 0.0f ? 0.0f : g.beta * *at;
    }
  }
}

// Shared packed-B buffer of the calling thread (the team's master), reused across calls; and the
// whole of op(A) packed once when threads split columns (every column block reuses it).
thread_local PackBuffers sharedPack;
thread_local PackBuffers sharedPackA;

// Largest op(A) packed once up front (floats); larger ones are packed per block as before.
constexpr int64_t kPrepackLimit = int64_t(1) << 22;

// Whether this product can run on the bfloat16-pair kernel with the same bits as the float one:
// both operands one-byte codes whose values are exact in bfloat16, alpha = 1 and beta = 0 (every
// chain starts at zero), fused multiply-adds (products exact in float32: two bfloat16 values give
// at most 16 significant bits), no Inf or NaN among the values read, and no product or partial
// sum denormal or infinite: every value is a multiple of its table's grid 2^ea (2^eb), so every
// product and every sum of products is a multiple of 2^(ea + eb) and, when not zero, at least
// that large; and k times the largest product stays finite.
bool pairsEligible(const GemmArgs& g, const KernelSpec& ks) {
  if (!ks.pairs || !gemm_detail::bf16PairsEnabled() || !g.fused || g.alpha != 1.0f || g.beta != 0.0f) return false;
  const uint8_t* bCodes = g.bColumns ? g.bColumns->codes : g.bCodes;
  if (!g.aCodes || !g.aLut || !bCodes || !g.bLut) return false;
  const TableFacts fa = tableFacts(g.aLut, 256), fb = tableFacts(g.bLut, 256);
  if (!pairProductsExact(fa, fb, g.k)) return false;
  const int64_t aCount = (g.transA ? g.k - 1 : g.m - 1) * g.lda + (g.transA ? g.m : g.k);
  if (mayReadNonFinite(g.aCodes, aCount, fa)) return false;
  if (!g.bColumns) return !mayReadNonFinite(bCodes, (g.transB ? g.n - 1 : g.k - 1) * g.ldb + (g.transB ? g.k : g.n), fb);
  // Every image the columns read, whole (padding reads nothing).
  const ImplicitColumns& src = *g.bColumns;
  const ConvGeometry& geo = src.geometry;
  const int64_t batch = (g.transB ? g.k : g.n) / (geo.outH * geo.outW);
  for (int64_t n = 0; n < batch; ++n) {
    if (mayReadNonFinite(bCodes + n * src.imageStride, geo.channels * geo.height * geo.width, fb)) return false;
  }
  return true;
}

// Products run on the pair kernel so far; each thread's last read windows of images (sgemm).
std::atomic<int64_t> pairProducts{0};
thread_local std::vector<uint8_t> windowImages;

// The blocked product on the chosen kernel (see the header).
void runSgemm(const GemmArgs& g, const KernelSpec& ks, int threads) {
  const int mr = ks.mr, nr = ks.nr;
  const int64_t tilesM = (g.m + mr - 1) / mr;
  // Too little work to share: stay on this thread.
  const double flops = 2.0 * g.m * g.n * g.k;
  const int team = flops < 4e6 ? 1 : std::max(1, threads);
  // Threads split the longer side of C: each takes a range of whole MR tiles of rows, or a range
  // of NR panels of columns (then each packs and reads only its own panels of B, and packs the
  // few rows of A itself).
  const bool splitRows = tilesM >= 2 * team && g.m >= g.n;
  // Threads splitting columns would each pack all of op(A) again for every block of columns:
  // when there are several such blocks, pack it once, per k block, shared read-only. (The kernel
  // that reads A in place, for a few panels per thread, is the other way to avoid it.)
  const int64_t mPadded = tilesM * mr;
  const int64_t kBlocks = (g.k + ks.kc - 1) / ks.kc;
  const int64_t panelsPerThread = ((std::min(ks.nc, g.n) + nr - 1) / nr + team - 1) / team;
  const float* packedA = nullptr;
  if (!splitRows && !readsAInPlace(g, ks, panelsPerThread) && g.n > ks.nc && mPadded * g.k <= kPrepackLimit) {
    float* all = sharedPackA.a.get(static_cast<size_t>(mPadded * g.k));
    // Block (pc, ic) of kc x mc starts at pc * mPadded + ic * kc (kc of its own k block).
    parallelFor(kBlocks, team, [&](int64_t b) {
      const int64_t pc = b * ks.kc, kc = std::min(ks.kc, g.k - pc);
      for (int64_t ic = 0; ic < g.m; ic += ks.mc) packA(g, ks, ic, std::min(ks.mc, g.m - ic), pc, kc, all + pc * mPadded + ic * kc);
    });
    packedA = all;
  }
  if (!splitRows) {
    // Threads split columns: each packs the panels of B it multiplies, so no thread waits for
    // another inside the call (one fork-join in all).
    // Each thread has its own region of the buffer, for its share of the widest block.
    const int64_t panelsMax = (std::min(ks.nc, g.n) + nr - 1) / nr;
    const int64_t region = std::min(ks.kc, g.k) * ((panelsMax + team - 1) / team) * nr;
    float* bp = sharedPack.b.get(static_cast<size_t>(region * team));
    parallelFor(team, team, [&](int64_t t) {
      float* own = bp + t * region;
      for (int64_t jc = 0; jc < g.n; jc += ks.nc) {
        const int64_t nc = std::min(ks.nc, g.n - jc);
        const int64_t panels = (nc + nr - 1) / nr;
        const int64_t p0 = panels * t / team, p1 = panels * (t + 1) / team;
        if (p1 <= p0) continue;
        // This thread's columns as a block of their own: [j0, j0 + width).
        const int64_t j0 = jc + p0 * nr, width = std::min(nc, p1 * nr) - p0 * nr;
        for (int64_t pc = 0; pc < g.k; pc += ks.kc) {
          const int64_t kc = std::min(ks.kc, g.k - pc);
          packB(g, ks, pc, kc, j0, width, own);
          multiplyRows(g, ks, own, pc, kc, j0, width, 0, g.m, 0, p1 - p0, pc == 0 ? g.beta : 1.0f,
                       packedA ? packedA + pc * mPadded : nullptr);
        }
      }
    });
    return;
  }
  const int64_t panelsAll = (g.n + nr - 1) / nr;
  if (g.n <= ks.nc && panelsAll * nr * g.k <= kPrepackLimit) {
    // Threads split rows of a single block of columns: pack all of B once (block pc at
    // pc * nPadded), then each thread runs its rows through every k block (two fork-joins).
    const int64_t nPadded = panelsAll * nr;
    float* all = sharedPack.b.get(static_cast<size_t>(nPadded * g.k));
    parallelFor(kBlocks * panelsAll, team, [&](int64_t item) {
      const int64_t pc = item / panelsAll * ks.kc, kc = std::min(ks.kc, g.k - pc), panel = item % panelsAll;
      packB(g, ks, pc, kc, panel * nr, std::min<int64_t>(nr, g.n - panel * nr), all + pc * nPadded + panel * kc * nr);
    });
    parallelFor(team, team, [&](int64_t t) {
      const int64_t m0 = std::min(g.m, tilesM * t / team * mr), m1 = std::min(g.m, tilesM * (t + 1) / team * mr);
      if (m1 <= m0) return;
      for (int64_t pc = 0; pc < g.k; pc += ks.kc) {
        multiplyRows(g, ks, all + pc * nPadded, pc, std::min(ks.kc, g.k - pc), 0, g.n, m0, m1, 0, panelsAll, pc == 0 ? g.beta : 1.0f);
      }
    });
    return;
  }
  for (int64_t jc = 0; jc < g.n; jc += ks.nc) {
    const int64_t nc = std::min(ks.nc, g.n - jc);
    const int64_t panels = (nc + nr - 1) / nr;
    for (int64_t pc = 0; pc < g.k; pc += ks.kc) {
      const int64_t kc = std::min(ks.kc, g.k - pc);
      float* bp = sharedPack.b.get(static_cast<size_t>(kc * panels * nr));
      const float beta = pc == 0 ? g.beta : 1.0f;
      // Pack B: each thread a share of the panels; then each thread its rows.
      parallelFor(team, team, [&](int64_t t) {
        const int64_t p0 = panels * t / team, p1 = panels * (t + 1) / team;
        if (p1 > p0) {
          const int64_t j0 = p0 * nr, j1 = std::min(nc, p1 * nr);
          packB(g, ks, pc, kc, jc + j0, j1 - j0, bp + p0 * kc * nr);
        }
      });
      parallelFor(team, team, [&](int64_t t) {
        const int64_t m0 = std::min(g.m, tilesM * t / team * mr), m1 = std::min(g.m, tilesM * (t + 1) / team * mr);
        if (m1 > m0) multiplyRows(g, ks, bp, pc, kc, jc, nc, m0, m1, 0, panels, beta);
      });
    }
  }
}
}  // namespace

TableFacts tableFacts(const float* lut, int64_t count) {
  TableFacts f;
  for (int64_t c = 0; c < count; ++c) {
    const float v = lut[c];
    if (!std::isfinite(v)) {
      f.firstNonFinite = std::min<int>(f.firstNonFinite, static_cast<int>(c & 0x7f));
      continue;
    }
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    if (bits & 0xffffu) f.bf16Exact = false;
    if (v == 0.0f) continue;
    int exponent;
    const double mantissa = std::frexp(std::fabs(static_cast<double>(v)), &exponent);  // v = mantissa * 2^exponent
    // mantissa has at most 24 significant bits: v = integer * 2^(exponent - 24) exactly.
    int64_t integer = static_cast<int64_t>(std::ldexp(mantissa, 24));
    int shift = 24;
    while ((integer & 1) == 0) {
      integer >>= 1;
      --shift;
    }
    f.gridExponent = std::min(f.gridExponent, exponent - shift);
    f.maxFinite = std::max(f.maxFinite, std::fabs(static_cast<double>(v)));
  }
  return f;
}

#ifdef OCTET_X86
namespace {
// valueFacts' loop 16 values at a time (the lowest set bit as 31 - lzcnt(x & -x)); returns how
// many values it read.
__attribute__((target("avx512f,avx512cd"))) int64_t valueFactsAvx512(const float* values, int64_t count, uint32_t& lowBits, uint32_t& largest, int& grid,
                                                                     bool& nonFinite) {
  __m512i low = _mm512_setzero_si512(), big = _mm512_setzero_si512(), least = _mm512_set1_epi32(1000);
  __mmask16 bad = 0;
  const __m512i absMask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000), frac = _mm512_set1_epi32(0x7fffff);
  const __m512i hidden = _mm512_set1_epi32(0x800000), zero = _mm512_setzero_si512();
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m512i bits = _mm512_loadu_si512(values + i);
    low = _mm512_or_si512(low, bits);
    const __m512i magnitude = _mm512_and_si512(bits, absMask);
    const __mmask16 finite = _mm512_cmplt_epu32_mask(magnitude, inf);
    bad |= static_cast<__mmask16>(~finite);
    const __mmask16 counted = _mm512_mask_cmpneq_epu32_mask(finite, magnitude, zero);
    big = _mm512_mask_max_epu32(big, counted, big, magnitude);
    const __m512i exponent = _mm512_srli_epi32(magnitude, 23);
    const __mmask16 normal = _mm512_cmpneq_epu32_mask(exponent, zero);
    const __m512i significand = _mm512_mask_or_epi32(_mm512_and_si512(magnitude, frac), normal, _mm512_and_si512(magnitude, frac), hidden);
    const __m512i lowest = _mm512_and_si512(significand, _mm512_sub_epi32(zero, significand));
    const __m512i tz = _mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(lowest));
    const __m512i base = _mm512_mask_sub_epi32(_mm512_set1_epi32(-149), normal, exponent, _mm512_set1_epi32(150));
    least = _mm512_mask_min_epi32(least, counted, least, _mm512_add_epi32(base, tz));
  }
  lowBits |= static_cast<uint32_t>(_mm512_reduce_or_epi32(low));
  largest = std::max(largest, static_cast<uint32_t>(_mm512_reduce_max_epu32(big)));
  grid = std::min(grid, _mm512_reduce_min_epi32(least));
  nonFinite = nonFinite || bad != 0;
  return i;
}
}  // namespace
#endif

// tableFacts of many values (a stored weight), read from their bits: bfloat16-exact when the low
// 16 bits are clear; the grid exponent of a nonzero value from its lowest set significand bit;
// the largest magnitude as the largest bit pattern below the sign; firstNonFinite 0 when any
// value is Inf or NaN (128 if none).
TableFacts valueFacts(const float* values, int64_t count) {
  TableFacts f;
  uint32_t lowBits = 0, largest = 0;
  int grid = 1000;
  bool nonFinite = false;
  int64_t i = 0;
#ifdef OCTET_X86
  if (cpuHasAvx512() && cpuHasAvx512Cd()) i = valueFactsAvx512(values, count, lowBits, largest, grid, nonFinite);
#endif
  for (; i < count; ++i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, 4);
    const uint32_t magnitude = bits & 0x7fffffffu;
    lowBits |= bits;
    if (magnitude >= 0x7f800000u) {
      nonFinite = true;
      continue;
    }
    if (magnitude == 0) continue;
    largest = std::max(largest, magnitude);
    const uint32_t exponent = magnitude >> 23, significand = (magnitude & 0x7fffffu) | (exponent ? 0x800000u : 0u);
    grid = std::min(grid, (exponent ? static_cast<int>(exponent) - 150 : -149) + __builtin_ctz(significand));
  }
  f.bf16Exact = (lowBits & 0xffffu) == 0;
  f.gridExponent = grid;
  float maxValue;
  std::memcpy(&maxValue, &largest, 4);
  f.maxFinite = maxValue;
  f.firstNonFinite = nonFinite ? 0 : 128;
  return f;
}

bool pairProductsExact(const TableFacts& a, const TableFacts& b, int64_t k) {
  return a.bf16Exact && b.bf16Exact && a.gridExponent + b.gridExponent >= -126 && static_cast<double>(k) * a.maxFinite * b.maxFinite < 1e38;
}

// Whether the codes an operand reads hold a value whose table entry is non-finite: the largest
// (code & 0x7f) present against the smallest of a non-finite entry.
bool mayReadNonFinite(const uint8_t* codes, int64_t count, const TableFacts& f) {
  return f.firstNonFinite < 128 && count > 0 && maxLowBits(codes, count) >= f.firstNonFinite;
}

void noteBf16PairProduct() { pairProducts.fetch_add(1, std::memory_order_relaxed); }


void sgemmRuns(const GemmArgs& g, const RunScaling& s, int threads) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) {
    for (int64_t i = 0; i < g.m; ++i) std::fill(g.c + i * g.ldc, g.c + i * g.ldc + g.n, 0.0f);
    return;
  }
  const KernelSpec& ks = selectKernel(g.m, g.n);
  const int mr = ks.mr, nr = ks.nr;
  // On bfloat16 pairs (two products per instruction, the same chain: see KernelSpec::pairs) where
  // the product qualifies and no pair would straddle two runs: every run but K's last even.
  bool evenRuns = true;
  for (int64_t r = 0; r + 1 < s.runs; ++r) evenRuns &= (s.ends[r] - (r == 0 ? 0 : s.ends[r - 1])) % 2 == 0;
  const bool pairs = ks.runsPairs && evenRuns && pairsEligible(g, ks);
  if (pairs) pairProducts.fetch_add(1, std::memory_order_relaxed);
  // K blocks of whole runs, each at least ks.kc products long unless K ends first.
  std::vector<int64_t> lengths(static_cast<size_t>(s.runs));
  struct KBlock {
    int64_t pc, kc, run0, count;
  };
  std::vector<KBlock> blocks;
  for (int64_t r = 0, start = 0; r < s.runs;) {
    KBlock b{start, 0, r, 0};
    while (r < s.runs && (b.count == 0 || b.kc < ks.kc)) {
      lengths[r] = s.ends[r] - (r == 0 ? 0 : s.ends[r - 1]);
      b.kc += lengths[r];
      ++b.count;
      ++r;
    }
    start += b.kc;
    blocks.push_back(b);
  }
  // All of B packed once, block by block (block b at pc * nPadded, panel p at + p * kc * nr).
  const int64_t panels = (g.n + nr - 1) / nr, nPadded = panels * nr;
  float* bAll = sharedPack.b.get(static_cast<size_t>(nPadded * g.k));
  const int team = 2.0 * g.m * g.n * g.k < 4e6 ? 1 : std::max(1, threads);
  const int64_t nBlocks = static_cast<int64_t>(blocks.size());
  // Items of up to 16 panels (so that packing reads whole rows of B a few at a time).
  const int64_t perItem = 16, chunks = (panels + perItem - 1) / perItem;
  parallelFor(nBlocks * chunks, team, [&](int64_t item) {
    const KBlock& b = blocks[static_cast<size_t>(item / chunks)];
    const int64_t q0 = item % chunks * perItem, q1 = std::min(panels, q0 + perItem);
    float* panels = bAll + b.pc * nPadded + q0 * b.kc * nr;
    packBFloats(g, ks, b.pc, b.kc, q0 * nr, std::min(g.n, q1 * nr) - q0 * nr, panels);
    if (pairs) packPanelsPairs(panels, q1 - q0, b.kc, nr, 0u);
  });
  // Threads split row tiles when there are enough, else panels; each packs its own A blocks.
  const int64_t tilesM = (g.m + mr - 1) / mr;
  // (as sgemm: a short, wide product splits its panels, e.g. 64 rows = 11 tiles of 6 split 6 + 5 ran
  // at 0.67-0.76x the per-tensor GEMM on 2 threads of AMD Zen 3, whose panels were split evenly).
  const bool splitRows = (tilesM >= 2 * team && g.m >= g.n) || panels < 2 * team;
  const int64_t panelsPerChunk = std::max<int64_t>(1, ks.nc / nr);
  parallelFor(team, team, [&](int64_t t) {
    int64_t m0 = 0, m1 = g.m, q0 = 0, q1 = panels;
    if (splitRows) {
      m0 = std::min(g.m, tilesM * t / team * mr);
      m1 = std::min(g.m, tilesM * (t + 1) / team * mr);
    } else {
      q0 = panels * t / team;
      q1 = panels * (t + 1) / team;
    }
    if (m1 <= m0 || q1 <= q0) return;
    PackBuffers& buf = tlsPack;
    for (int64_t qc = q0; qc < q1; qc += panelsPerChunk) {
      const int64_t qEnd = std::min(q1, qc + panelsPerChunk);
      for (int64_t ic = m0; ic < m1; ic += ks.mc) {
        const int64_t mc = std::min(ks.mc, m1 - ic);
        for (const KBlock& b : blocks) {
          float* ap = buf.a.get(static_cast<size_t>(b.kc * ((mc + mr - 1) / mr * mr)));
          packAFloats(g, ks, ic, mc, b.pc, b.kc, ap);
          if (pairs) packPanelsPairs(ap, (mc + mr - 1) / mr, b.kc, mr, 0x8000u);
          for (int64_t ir = 0; ir < mc; ir += mr) {
            gemm_detail::RunsTile tile{};
            tile.first = b.pc == 0;
            tile.ap = ap + (ir / mr) * b.kc * mr;  // pair panels start where their float panels did
            tile.mr = static_cast<int>(std::min<int64_t>(mr, mc - ir));
            tile.ldc = g.ldc;
            tile.lengths = lengths.data() + b.run0;
            tile.count = b.count;
            tile.rows = s.rows + b.run0 * g.m + ic + ir;
            tile.rowStride = g.m;
            tile.colStride = g.n;
            tile.reciprocal = s.reciprocal + b.run0;
            for (int64_t q = qc; q < qEnd; ++q) {
              tile.bp = bAll + b.pc * nPadded + q * b.kc * nr;
              tile.c = g.c + (ic + ir) * g.ldc + q * nr;
              tile.nr = static_cast<int>(std::min<int64_t>(nr, g.n - q * nr));
              tile.cols = s.cols + b.run0 * g.n + q * nr;
              (pairs ? ks.runsPairs : ks.runs)(tile);
            }
          }
        }
      }
    }
  });
}

const char* gemmKernelName() { return gemm_detail::familyName(); }

bool gemmBf16Pairs() { return gemm_detail::bf16PairsEnabled(); }

int64_t gemmBf16PairProducts() { return pairProducts.load(); }

void sgemm(const GemmArgs& g, int threads) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0 || g.alpha == 0.0f) {
    scaleC(g);
    return;
  }
  const KernelSpec& chosen = selectKernel(g.m, g.n);
  const KernelSpec ks = !g.fused ? chosen.withUnfused() : pairsEligible(g, chosen) ? chosen.withPairs() : chosen;
  if (!ks.pairPanels) {
    runSgemm(g, ks, threads);
    return;
  }
  pairProducts.fetch_add(1, std::memory_order_relaxed);
  // Columns read inside images without padding run on the images as they are.
  if (!g.bColumns || readsInside(g.bColumns->geometry)) {
    runSgemm(g, ks, threads);
    return;
  }
  // Otherwise from each plane's read window written out, padding included.
  const ImplicitColumns& src = *g.bColumns;
  const int64_t batch = (g.transB ? g.k : g.n) / (src.geometry.outH * src.geometry.outW);
  const int64_t stride = windowImageStride(src.geometry);
  windowImages.resize(static_cast<size_t>(batch * stride));
  windowImagesCodes(src.codes, src.geometry, batch, src.imageStride, windowImages.data(), threads);
  ImplicitColumns windows{windowGeometry(src.geometry), stride, nullptr, windowImages.data()};
  GemmArgs p = g;
  p.bColumns = &windows;
  runSgemm(p, ks, threads);
}

}  // namespace octet
