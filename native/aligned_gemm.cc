#include "aligned_gemm.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu.h"
#include "parallel.h"
#include "scratch.h"

namespace octet {
namespace {

constexpr int kNone = -100000;  // "no exponent yet": below every real one

inline int bitLength(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }

// v * 2^s truncated toward zero (s may be negative).
inline int64_t shiftTrunc(int64_t v, int s) {
  if (s >= 0) return v * (int64_t(1) << (s < 62 ? s : 62));
  const int r = -s;
  if (r >= 63) return 0;
  const int64_t magnitude = (v < 0 ? -v : v) >> r;
  return v < 0 ? -magnitude : magnitude;
}

// Whether every finite nonzero value's exponent field lies within +-limit.
bool exponentsWithin(const AlignedTables& t, int limit) {
  for (int c = 0; c < 256; ++c)
    if (!t.bad[c] && t.sig[c] != 0 && (t.exp[c] < -limit || t.exp[c] > limit)) return false;
  return true;
}

// The runs of K: block_scaled.h's when the product is block-scaled, else one run of all of K.
struct Runs {
  std::vector<int64_t> whole;
  const int64_t* ends;
  int64_t count;
  const RunScales& scales;
};

Runs runsOf(const AlignedGemmArgs& g, int threads) {
  static thread_local RunScales scales;  // kept between calls: no fresh pages every time
  Runs r{{}, nullptr, 0, scales};
  if (g.scaled) {
    r.ends = g.blocks.ends;
    r.count = g.blocks.runs;
    runScales(g.blocks, g.m, g.n, threads, scales);
  } else {
    r.whole.assign(1, g.k);
    r.ends = r.whole.data();
    r.count = 1;
  }
  return r;
}

// c after run `run` of element (i, j) whose total is p: the total itself, or the block-scaled sum
// c + (p / sa) / sb (with exact reciprocals where the run's divisors are powers of two).
inline float addRun(const AlignedGemmArgs& g, const Runs& r, int64_t run, int64_t i, int64_t j, float c, float p) {
  if (!g.scaled) return p;
  float a = r.scales.rows[run * g.m + i], b = r.scales.cols[run * g.n + j];
  if (g.colScaleFirst) std::swap(a, b);
  return r.scales.reciprocal[run] ? c + (p * a) * b : c + (p / a) / b;
}

// The total of products [k0, k1) of one element (intervals counted from k0), in scalar code: the
// contract as the TypeScript reference runs it.
float runScalar(const AlignedGemmArgs& g, const uint8_t* arow, int64_t j, int64_t k0, int64_t k1) {
  const AlignedTables& ta = g.ta;
  const AlignedTables& tb = g.tb;
  const int64_t interval = g.interval > 0 ? g.interval : std::max<int64_t>(k1 - k0, 1);
  const int shiftBase = -ta.mantissaBits - tb.mantissaBits + g.keep;
  float total = 0.0f;
  for (int64_t start = k0; start < k1; start += interval) {
    const int64_t end = std::min(k1, start + interval);
    int64_t accInt = 0;
    int accExp = 0;
    for (int64_t g0 = start; g0 < end; g0 += g.group) {
      const int64_t g1 = std::min(end, g0 + g.group);
      int x = accInt ? bitLength(static_cast<uint64_t>(accInt < 0 ? -accInt : accInt)) - 1 + accExp : kNone;
      for (int64_t t = g0; t < g1; ++t) {
        const uint8_t ca = arow[t], cb = g.b[t * g.n + j];
        if (ta.sig[ca] != 0 && tb.sig[cb] != 0) x = std::max(x, ta.exp[ca] + tb.exp[cb]);
      }
      if (x == kNone) continue;
      int64_t sum = shiftTrunc(accInt, accExp - x + g.keep);
      for (int64_t t = g0; t < g1; ++t) {
        const uint8_t ca = arow[t], cb = g.b[t * g.n + j];
        const int64_t p = int64_t(ta.sig[ca]) * tb.sig[cb];
        if (p) sum += shiftTrunc(p, ta.exp[ca] + tb.exp[cb] - x + shiftBase);
      }
      uint64_t magnitude = static_cast<uint64_t>(sum < 0 ? -sum : sum);
      const int drop = bitLength(magnitude) - g.significant;
      if (drop > 0) magnitude = (magnitude >> drop) << drop;
      accInt = sum < 0 ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
      accExp = x - g.keep;
    }
    total = total + static_cast<float>(std::ldexp(static_cast<double>(accInt), accExp));
  }
  return total;
}

#ifdef OCTET_X86
// v * 2^s truncated toward zero, 16 lanes (int32; |v| < 2^24 and left shifts keep it below 2^31).
__attribute__((target("avx512f"), always_inline)) inline __m512i shiftTrunc16(__m512i v, __m512i s) {
  const __mmask16 left = _mm512_cmpge_epi32_mask(s, _mm512_setzero_si512());
  const __m512i up = _mm512_sllv_epi32(v, s);
  const __m512i down = _mm512_srlv_epi32(_mm512_abs_epi32(v), _mm512_sub_epi32(_mm512_setzero_si512(), s));
  const __mmask16 negative = _mm512_cmplt_epi32_mask(v, _mm512_setzero_si512());
  const __m512i signedDown = _mm512_mask_sub_epi32(down, negative, _mm512_setzero_si512(), down);
  return _mm512_mask_blend_epi32(left, signedDown, up);
}

// Bit length of |v| for |v| < 2^24 (exact as a float: the exponent field gives it).
__attribute__((target("avx512f"), always_inline)) inline __m512i bitLength16(__m512i magnitude) {
  const __m512i bits = _mm512_castps_si512(_mm512_cvtepi32_ps(magnitude));
  const __m512i length = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126));
  return _mm512_maskz_mov_epi32(_mm512_test_epi32_mask(magnitude, magnitude), length);
}

// The totals of products [k0, k1) of row i, columns [j0, j0 + 16), in int32 lanes. sigB/expB: B's
// codes decoded to int8, k x n plus 16 bytes of padding, so a row's last 16 lanes read past its
// end: those lanes are independent of the others and never used.
__attribute__((target("avx512f"))) void runTile16(const AlignedGemmArgs& g, const uint8_t* arow, const int8_t* sigB, const int8_t* expB, int64_t j0,
                                                  int64_t k0, int64_t k1, float* totals) {
  const AlignedTables& ta = g.ta;
  const int64_t interval = g.interval > 0 ? g.interval : std::max<int64_t>(k1 - k0, 1);
  const __m512i keep = _mm512_set1_epi32(g.keep);
  const __m512i shiftBase = _mm512_set1_epi32(-ta.mantissaBits - g.tb.mantissaBits + g.keep);
  const __m512i none = _mm512_set1_epi32(kNone);
  const __m512i significant = _mm512_set1_epi32(g.significant);
  __m512 total = _mm512_setzero_ps();
  for (int64_t start = k0; start < k1; start += interval) {
    const int64_t end = std::min(k1, start + interval);
    __m512i accInt = _mm512_setzero_si512(), accExp = _mm512_setzero_si512();
    for (int64_t g0 = start; g0 < end; g0 += g.group) {
      const int64_t g1 = std::min(end, g0 + g.group);
      const __m512i accAbs = _mm512_abs_epi32(accInt);
      __m512i x = _mm512_mask_blend_epi32(_mm512_test_epi32_mask(accInt, accInt), none,
                                          _mm512_add_epi32(_mm512_sub_epi32(bitLength16(accAbs), _mm512_set1_epi32(1)), accExp));
      for (int64_t t = g0; t < g1; ++t) {
        if (ta.sig[arow[t]] == 0) continue;
        const __m512i sb = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sigB + t * g.n + j0)));
        const __m512i eb = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(expB + t * g.n + j0)));
        x = _mm512_mask_max_epi32(x, _mm512_test_epi32_mask(sb, sb), x, _mm512_add_epi32(eb, _mm512_set1_epi32(ta.exp[arow[t]])));
      }
      const __mmask16 active = _mm512_cmpgt_epi32_mask(x, none);
      if (!active) continue;
      __m512i sum = shiftTrunc16(accInt, _mm512_add_epi32(_mm512_sub_epi32(accExp, x), keep));
      for (int64_t t = g0; t < g1; ++t) {
        const int sa = ta.sig[arow[t]];
        if (sa == 0) continue;
        const __m512i sb = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sigB + t * g.n + j0)));
        const __m512i eb = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(expB + t * g.n + j0)));
        const __m512i p = _mm512_mullo_epi32(sb, _mm512_set1_epi32(sa));
        const __m512i s = _mm512_add_epi32(_mm512_sub_epi32(_mm512_add_epi32(eb, _mm512_set1_epi32(ta.exp[arow[t]])), x), shiftBase);
        sum = _mm512_add_epi32(sum, shiftTrunc16(p, s));
      }
      __m512i magnitude = _mm512_abs_epi32(sum);
      const __m512i drop = _mm512_max_epi32(_mm512_sub_epi32(bitLength16(magnitude), significant), _mm512_setzero_si512());
      magnitude = _mm512_sllv_epi32(_mm512_srlv_epi32(magnitude, drop), drop);
      const __m512i truncated = _mm512_mask_sub_epi32(magnitude, _mm512_cmplt_epi32_mask(sum, _mm512_setzero_si512()), _mm512_setzero_si512(), magnitude);
      accInt = _mm512_mask_mov_epi32(accInt, active, truncated);
      accExp = _mm512_mask_mov_epi32(accExp, active, _mm512_sub_epi32(x, keep));
    }
    // acc = accInt * 2^accExp, exact as a float (at most `significant` bits), then one float add.
    const __m512 value = _mm512_scalef_ps(_mm512_cvtepi32_ps(accInt), _mm512_cvtepi32_ps(accExp));
    total = _mm512_add_ps(total, value);
  }
  _mm512_storeu_ps(totals, total);
}

// runTile16 on AVX2 for 8 columns [j0, j0 + 8): the same integer steps per lane (lane masks as
// vectors, blends for the masked moves), and acc * 2^accExp as two exact power-of-two
// multiplications, the second rounded once as VSCALEFPS rounds (with exponent fields within +-60,
// the caller's condition, accExp stays within +-150 and |acc| < 2^24, so the first, by
// 2^floor(accExp / 2), neither overflows nor underflows).
__attribute__((target("avx2"), always_inline)) inline __m256i shiftTrunc8(__m256i v, __m256i s) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i left = _mm256_cmpgt_epi32(s, _mm256_set1_epi32(-1));
  const __m256i up = _mm256_sllv_epi32(v, s);
  const __m256i down = _mm256_srlv_epi32(_mm256_abs_epi32(v), _mm256_sub_epi32(zero, s));
  const __m256i signedDown = _mm256_blendv_epi8(down, _mm256_sub_epi32(zero, down), _mm256_cmpgt_epi32(zero, v));
  return _mm256_blendv_epi8(signedDown, up, left);
}

__attribute__((target("avx2"), always_inline)) inline __m256i bitLength8(__m256i magnitude) {
  const __m256i bits = _mm256_castps_si256(_mm256_cvtepi32_ps(magnitude));
  const __m256i length = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126));
  return _mm256_andnot_si256(_mm256_cmpeq_epi32(magnitude, _mm256_setzero_si256()), length);
}

// 8 int8 values widened to int32 lanes.
__attribute__((target("avx2"), always_inline)) inline __m256i load8(const int8_t* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// 2^e for integer lanes e in [-126, 127], as floats.
__attribute__((target("avx2"), always_inline)) inline __m256 powerOfTwo8(__m256i e) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
}

__attribute__((target("avx2"))) void runTile8Avx2(const AlignedGemmArgs& g, const uint8_t* arow, const int8_t* sigB, const int8_t* expB, int64_t j0,
                                                  int64_t k0, int64_t k1, float* totals) {
  const AlignedTables& ta = g.ta;
  const int64_t interval = g.interval > 0 ? g.interval : std::max<int64_t>(k1 - k0, 1);
  const __m256i zero = _mm256_setzero_si256();
  const __m256i keep = _mm256_set1_epi32(g.keep);
  const __m256i shiftBase = _mm256_set1_epi32(-ta.mantissaBits - g.tb.mantissaBits + g.keep);
  const __m256i none = _mm256_set1_epi32(kNone);
  const __m256i significant = _mm256_set1_epi32(g.significant);
  __m256 total = _mm256_setzero_ps();
  for (int64_t start = k0; start < k1; start += interval) {
    const int64_t end = std::min(k1, start + interval);
    __m256i accInt = zero, accExp = zero;
    for (int64_t g0 = start; g0 < end; g0 += g.group) {
      const int64_t g1 = std::min(end, g0 + g.group);
      const __m256i accAbs = _mm256_abs_epi32(accInt);
      __m256i x = _mm256_blendv_epi8(_mm256_add_epi32(_mm256_sub_epi32(bitLength8(accAbs), _mm256_set1_epi32(1)), accExp), none,
                                     _mm256_cmpeq_epi32(accInt, zero));
      for (int64_t t = g0; t < g1; ++t) {
        if (ta.sig[arow[t]] == 0) continue;
        const __m256i sb = load8(sigB + t * g.n + j0), eb = load8(expB + t * g.n + j0);
        const __m256i candidate = _mm256_max_epi32(x, _mm256_add_epi32(eb, _mm256_set1_epi32(ta.exp[arow[t]])));
        x = _mm256_blendv_epi8(candidate, x, _mm256_cmpeq_epi32(sb, zero));
      }
      const __m256i active = _mm256_cmpgt_epi32(x, none);
      if (_mm256_movemask_epi8(active) == 0) continue;
      __m256i sum = shiftTrunc8(accInt, _mm256_add_epi32(_mm256_sub_epi32(accExp, x), keep));
      for (int64_t t = g0; t < g1; ++t) {
        const int sa = ta.sig[arow[t]];
        if (sa == 0) continue;
        const __m256i sb = load8(sigB + t * g.n + j0), eb = load8(expB + t * g.n + j0);
        const __m256i p = _mm256_mullo_epi32(sb, _mm256_set1_epi32(sa));
        const __m256i shift = _mm256_add_epi32(_mm256_sub_epi32(_mm256_add_epi32(eb, _mm256_set1_epi32(ta.exp[arow[t]])), x), shiftBase);
        sum = _mm256_add_epi32(sum, shiftTrunc8(p, shift));
      }
      __m256i magnitude = _mm256_abs_epi32(sum);
      const __m256i drop = _mm256_max_epi32(_mm256_sub_epi32(bitLength8(magnitude), significant), zero);
      magnitude = _mm256_sllv_epi32(_mm256_srlv_epi32(magnitude, drop), drop);
      const __m256i truncated = _mm256_blendv_epi8(magnitude, _mm256_sub_epi32(zero, magnitude), _mm256_cmpgt_epi32(zero, sum));
      accInt = _mm256_blendv_epi8(accInt, truncated, active);
      accExp = _mm256_blendv_epi8(accExp, _mm256_sub_epi32(x, keep), active);
    }
    const __m256i half = _mm256_srai_epi32(accExp, 1);
    const __m256 value = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(accInt), powerOfTwo8(half)), powerOfTwo8(_mm256_sub_epi32(accExp, half)));
    total = _mm256_add_ps(total, value);
  }
  _mm256_storeu_ps(totals, total);
}

// The index where a run of whole 32-code blocks without any listed code ends (-1: one was found).
__attribute__((target("avx2"))) int64_t anyListedAvx2(const uint8_t* codes, int64_t count, const uint8_t* list, int listed) {
  int64_t t = 0;
  for (; t + 32 <= count; t += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + t));
    __m256i hit = _mm256_setzero_si256();
    for (int c = 0; c < listed; ++c) hit = _mm256_or_si256(hit, _mm256_cmpeq_epi8(v, _mm256_set1_epi8(static_cast<char>(list[c]))));
    if (!_mm256_testz_si256(hit, hit)) return -1;
  }
  return t;
}

// The index where a run of whole 64-code blocks without any listed code ends (-1: one was found).
__attribute__((target("avx512f,avx512bw"))) int64_t anyListedAvx512(const uint8_t* codes, int64_t count, const uint8_t* list, int listed) {
  int64_t t = 0;
  for (; t + 64 <= count; t += 64) {
    const __m512i v = _mm512_loadu_si512(codes + t);
    __mmask64 hit = 0;
    for (int c = 0; c < listed; ++c) hit |= _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(static_cast<char>(list[c])));
    if (hit) return -1;
  }
  return t;
}

// The float kernel. Every quantity of the contract is a float32 computed exactly:
// - X (the group's largest exponent sum, the accumulator's floor(log2 |acc|) included) in int8
//   lanes with saturating adds, from per-code exponent fields (zero codes at -128: their sums stay
//   below every real one, which exponent fields within +-30 keep above -98; X at least -100 so that
//   a group of zeros gets finite constants);
// - the group's sum of products truncated toward zero at q = 2^(X - keep), with two accumulators
//   offset by M = +-1.5 * 2^23 * q, so their unit in the last place is q: fused multiply-adds
//   rounded toward zero add each product already truncated (the positive one takes the products
//   that are >= 0 and rounds them down, the negative one takes those < 0 and rounds them up). B is
//   stored split by sign (its values >= 0 and its values < 0 in two vectors, zeros elsewhere); a
//   negative A value swaps the pair (a blend). The offsets stay exact while the group's sum is
//   below 2^22 q, which (4 group + 2) 2^keep <= 2^22 guarantees (products are below 2^(X + 2));
// - the group's sum is the sum of the two accumulators (their offsets cancel), truncated toward
//   zero to `significant` bits by clearing the float's lower significand bits.
namespace fast {

constexpr int kZeroExp = -128;
constexpr int kFloorExp = -100;
constexpr int kLanes = 16;

// Per code: the value (0 for zeros, NaN and Inf: their rows and columns are NaN anyway) and whether
// it is negative (a mask: it swaps B's sign vectors); the exponent field (kZeroExp for zero values),
// alone and in the four bytes of an int32 (A's broadcasts).
struct Code {
  float value;
  uint16_t negative;
};

struct Tables {
  Code code[256];
  int32_t exp4[256];
  int8_t exp[256];
  // The exponent of the value's lowest set bit (kNeverLow for zeros): a product has bits below
  // 2^e exactly when the two codes' sum is below e.
  int8_t low[256];
  // The one-sum tiles' header bytes of a B code (onesum::pack): its exponent, its low exponent if
  // negative, if positive (kNeverLow otherwise), built once per product here, not per panel.
  int32_t header[256];
};

constexpr int kNeverLow = 127;

Tables tablesOf(const AlignedTables& t) {
  Tables out;
  for (int c = 0; c < 256; ++c) {
    const bool zero = t.bad[c] || t.sig[c] == 0;
    const float v = zero ? 0.0f : std::ldexp(static_cast<float>(t.sig[c]), t.exp[c] - t.mantissaBits);
    const int8_t e = static_cast<int8_t>(zero ? kZeroExp : t.exp[c]);
    out.code[c] = Code{v, static_cast<uint16_t>(v < 0.0f ? 0xffff : 0)};
    out.exp4[c] = static_cast<int32_t>(0x01010101u * static_cast<uint8_t>(e));
    out.exp[c] = e;
    const int magnitude = t.sig[c] < 0 ? -t.sig[c] : t.sig[c];
    out.low[c] = static_cast<int8_t>(zero ? kNeverLow : t.exp[c] - t.mantissaBits + __builtin_ctz(static_cast<unsigned>(magnitude)));
    const uint8_t low = static_cast<uint8_t>(out.low[c]), never = static_cast<uint8_t>(kNeverLow);
    out.header[c] = static_cast<int32_t>(static_cast<uint8_t>(e) | uint32_t(v < 0.0f ? low : never) << 8 | uint32_t(v > 0.0f ? low : never) << 16);
  }
  return out;
}

// The bit of a code that is set exactly on its negative values (zeros either way), -1 if none is.
int signBit(const Tables& t) {
  for (int p = 8; p >= 0; --p) {
    bool fits = true;
    for (int c = 0; c < 256 && fits; ++c)
      if (t.code[c].value != 0.0f) fits = (t.code[c].value < 0.0f) == (p < 8 && ((c >> p) & 1));
    if (fits) return p;
  }
  return -1;
}

bool exponentsInRange(const AlignedTables& t) { return exponentsWithin(t, 30); }

// The parameters the offsets keep exact (see above), on either kernel's CPU.
bool exact(const AlignedGemmArgs& g) {
  return (static_cast<int64_t>(4 * g.group + 2) << g.keep) <= (int64_t(1) << 22) && g.significant <= 24 && exponentsInRange(g.ta) && exponentsInRange(g.tb);
}

bool applies(const AlignedGemmArgs& g) { return cpuHasAvx512() && cpuHasAvx512Bw() && exact(g); }

bool appliesAvx2(const AlignedGemmArgs& g, const Tables& ta) { return cpuHasAvx2() && __builtin_cpu_supports("fma") && exact(g) && signBit(ta) >= 0; }

// The groups of the accumulation in K order, each with what ends or starts with it.
enum : uint8_t { kIntervalStart = 1, kIntervalEnd = 2, kRunEnd = 4 };
struct Group {
  int64_t g0, g1, run;
  uint8_t flags;
};

std::vector<Group> groupsOf(const AlignedGemmArgs& g, const Runs& runs) {
  std::vector<Group> out;
  for (int64_t run = 0; run < runs.count; ++run) {
    const int64_t k0 = run ? runs.ends[run - 1] : 0, k1 = runs.ends[run];
    const int64_t interval = g.interval > 0 ? g.interval : std::max<int64_t>(k1 - k0, 1);
    if (k0 == k1) out.push_back(Group{k0, k1, run, static_cast<uint8_t>(kRunEnd)});
    for (int64_t start = k0; start < k1; start += interval) {
      const int64_t end = std::min(k1, start + interval);
      for (int64_t g0 = start; g0 < end; g0 += g.group) {
        const int64_t g1 = std::min(end, g0 + g.group);
        uint8_t flags = g0 == start ? kIntervalStart : 0;
        if (g1 == end) flags |= kIntervalEnd;
        if (g1 == k1) flags |= kRunEnd;
        out.push_back(Group{g0, g1, run, flags});
      }
    }
  }
  return out;
}

// B packed in panels of 16 C columns (C <= 4); per product t: 64 int8 exponent fields (lanes past
// the panel's columns at kZeroExp), then per 16 columns their values >= 0 and their values < 0
// (zeros elsewhere).
// (The AVX2 kernel's panels: C <= 4 vectors of L = 8 columns, a header of H = 32 bytes, the
// exponent fields in its first 8 C.)
template <int C, int L = kLanes, int H = 64>
constexpr int64_t stride() { return H + C * L * 8; }

template <int C, int L = kLanes, int H = 64>
void packPanel(const AlignedGemmArgs& g, const Tables& tb, int64_t j0, int64_t t0, int64_t t1, uint8_t* out) {
  const int64_t width = std::min<int64_t>(C * L, g.n - j0);
  for (int64_t t = t0; t < t1; ++t) {
    uint8_t* row = out + (t - t0) * stride<C, L, H>();
    const uint8_t* codes = g.b + t * g.n + j0;
    int8_t* e = reinterpret_cast<int8_t*>(row);
    float* values = reinterpret_cast<float*>(row + H);
    std::memset(row, static_cast<uint8_t>(static_cast<int8_t>(kZeroExp)), H);
    std::memset(values, 0, C * L * 8);
    for (int64_t l = 0; l < width; ++l) {
      const uint8_t code = codes[l];
      const float v = tb.code[code].value;
      e[l] = tb.exp[code];
      values[(l / L) * 2 * L + (v < 0.0f ? L : 0) + l % L] = v;
    }
  }
}

constexpr int kTruncate = _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC;

// The offset accumulator's magnitude for quantum 2^qexp: 1.5 * 2^(qexp + 23), as bits.
__attribute__((target("avx512f"), always_inline)) inline __m512i magicBits(__m512i qexp) {
  return _mm512_or_si512(_mm512_slli_epi32(_mm512_add_epi32(qexp, _mm512_set1_epi32(150)), 23), _mm512_set1_epi32(0x00400000));
}

// A tile's state between groups: per row and 16 columns, the interval's accumulator (read and
// written every group: the accumulators of an item's tiles are kept together, beside the group's
// slice of B in L1), and the run's total and the output (the block-scaled sum, or the total).
template <int R, int C, int L = kLanes>
struct Accumulators {
  float acc[R][C][L];
};
template <int R, int C, int L = kLanes>
struct Sums {
  float total[R][C][L], out[R][C][L];
};

// What ends with the group, after an AVX-512 tile's groups (at nearest even, the instructions'
// default): the interval's accumulator added into the run's total; at a run's end, the total
// (block-scaled) into the output.
template <int R, int C>
__attribute__((target("avx512f"), always_inline)) inline void closeGroup(const AlignedGemmArgs& g, const Runs& runs, const Group& group, int64_t i0, int64_t j0,
                                                                         const __m512 (&acc)[R][C], Sums<R, C>& state) {
  if (group.flags & kIntervalEnd)
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < C; ++q) _mm512_storeu_ps(state.total[r][q], _mm512_add_ps(_mm512_loadu_ps(state.total[r][q]), acc[r][q]));
  if (group.flags & kRunEnd) {
    const int64_t run = group.run;
    for (int r = 0; r < R; ++r) {
      const int64_t i = std::min(i0 + r, g.m - 1);  // rows past m: any divisor, never stored
      for (int q = 0; q < C; ++q) {
        const __m512 total = _mm512_loadu_ps(state.total[r][q]);
        if (!g.scaled) {
          _mm512_storeu_ps(state.out[r][q], total);
        } else {
          const int64_t j = j0 + q * kLanes;
          const __mmask16 lanes = j >= g.n ? 0 : g.n - j >= kLanes ? 0xffff : static_cast<__mmask16>((1u << (g.n - j)) - 1u);
          const __m512 col = _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), lanes, runs.scales.cols.data() + run * g.n + j);
          const __m512 row = _mm512_set1_ps(runs.scales.rows[run * g.m + i]);
          const __m512 d = g.colScaleFirst ? col : row, b = g.colScaleFirst ? row : col;  // d first
          const __m512 out = _mm512_loadu_ps(state.out[r][q]);
          _mm512_storeu_ps(state.out[r][q], runs.scales.reciprocal[run] ? _mm512_add_ps(out, _mm512_mul_ps(_mm512_mul_ps(total, d), b))
                                                                        : _mm512_add_ps(out, _mm512_div_ps(_mm512_div_ps(total, d), b)));
        }
        _mm512_storeu_ps(state.total[r][q], _mm512_setzero_ps());
      }
    }
  }
}

// Groups [first, last) of the R x 16 C tile at rows [i0, i0 + R) (A's codes of row r at
// a + rowOffset[r] + t * kStride), panel columns [j0, j0 + 16 C) (product t of the panel at
// panel + (t - tBase) * stride).
template <int R, int C>
__attribute__((target("avx512f,avx512bw"))) void tile(const AlignedGemmArgs& g, const Runs& runs, const Tables& ta, const Group* first, const Group* last,
                                                     const uint8_t* a, const int64_t (&rowOffset)[R], int64_t kStride, const uint8_t* panel, int64_t tBase,
                                                     int64_t i0, int64_t j0, Accumulators<R, C>& hot, Sums<R, C>& state) {
  constexpr int64_t S = stride<C>();
  const __m512 zero = _mm512_setzero_ps();
  const __m512i keep = _mm512_set1_epi32(g.keep);
  const __m512i floorExp = _mm512_set1_epi32(kFloorExp);
  const __m512i sign = _mm512_set1_epi32(static_cast<int32_t>(0x80000000u));
  const __m512i keepBits = _mm512_set1_epi32(static_cast<int32_t>(~((1u << (24 - g.significant)) - 1u)));
  const Code* codes = ta.code;
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < C; ++q) acc[r][q] = _mm512_loadu_ps(hot.acc[r][q]);
  for (const Group* group = first; group != last; ++group) {
    const int64_t g0 = group->g0, g1 = group->g1;
    const bool fresh = group->flags & kIntervalStart;  // the accumulator is 0: nothing of it to add
    if (fresh)
      for (int r = 0; r < R; ++r)
        for (int q = 0; q < C; ++q) acc[r][q] = zero;
    if (g1 > g0) {
      // X: floor(log2 |acc|) (getexp(0) = -inf converts to INT_MIN, saturating to -128), then
      // every exponent sum of the group.
      __m512i x[R];
      for (int r = 0; r < R; ++r) {
        x[r] = _mm512_set1_epi8(static_cast<char>(kZeroExp));
        for (int q = 0; q < C && !fresh; ++q) {
          const __m128i e = _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(_mm512_getexp_ps(acc[r][q])));
          x[r] = _mm512_inserti32x4(x[r], e, q);
        }
      }
      for (int64_t t = g0; t < g1; ++t) {
        const uint8_t* at = a + t * kStride;
        const __m512i eb = _mm512_load_si512(panel + (t - tBase) * S);
        for (int r = 0; r < R; ++r) x[r] = _mm512_max_epi8(x[r], _mm512_adds_epi8(eb, _mm512_set1_epi32(ta.exp4[at[rowOffset[r]]])));
      }
      // The offset accumulators, the accumulator's own value truncated into one of them.
      __m512 pos[R][C], neg[R][C];
      for (int r = 0; r < R; ++r) {
        for (int q = 0; q < C; ++q) {
          const __m512i x32 = _mm512_max_epi32(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(x[r], q)), floorExp);
          const __m512i m = magicBits(_mm512_sub_epi32(x32, keep));
          const __m512 mp = _mm512_castsi512_ps(m), mn = _mm512_castsi512_ps(_mm512_or_si512(m, sign));
          if (fresh) {
            pos[r][q] = mp;
            neg[r][q] = mn;
          } else {
            const __mmask16 negative = _mm512_cmp_ps_mask(acc[r][q], zero, _CMP_LT_OQ);
            pos[r][q] = _mm512_mask_add_round_ps(mp, static_cast<__mmask16>(~negative), mp, acc[r][q], kTruncate);
            neg[r][q] = _mm512_mask_add_round_ps(mn, negative, mn, acc[r][q], kTruncate);
          }
        }
      }
      for (int64_t t = g0; t < g1; ++t) {
        const float* bt = reinterpret_cast<const float*>(panel + (t - tBase) * S + 64);
        const uint8_t* at = a + t * kStride;
        __m512 bPositive[C], bNegative[C];
        for (int q = 0; q < C; ++q) {
          bPositive[q] = _mm512_load_ps(bt + q * 2 * kLanes);
          bNegative[q] = _mm512_load_ps(bt + q * 2 * kLanes + kLanes);
        }
        for (int r = 0; r < R; ++r) {
          const Code& code = codes[at[rowOffset[r]]];
          const __m512 av = _mm512_set1_ps(code.value);
          const __mmask16 swap = code.negative;
          for (int q = 0; q < C; ++q) {
            pos[r][q] = _mm512_fmadd_round_ps(av, _mm512_mask_blend_ps(swap, bPositive[q], bNegative[q]), pos[r][q], kTruncate);
            neg[r][q] = _mm512_fmadd_round_ps(av, _mm512_mask_blend_ps(swap, bNegative[q], bPositive[q]), neg[r][q], kTruncate);
          }
        }
      }
      // The group's exact sum (M+ + M- = 0, and the sum is a multiple of q below 2^22 q: the float
      // addition is exact), truncated toward zero to `significant` bits by clearing the float's
      // lower significand bits: the new accumulator.
      for (int r = 0; r < R; ++r)
        for (int q = 0; q < C; ++q) acc[r][q] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_add_ps(pos[r][q], neg[r][q])), keepBits));
    }
    closeGroup<R, C>(g, runs, *group, i0, j0, acc, state);
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < C; ++q) _mm512_storeu_ps(hot.acc[r][q], acc[r][q]);
}

// The float kernel on AVX2 (8 lanes). AVX2 has no per-instruction rounding: the offset
// accumulators' additions and fused multiply-adds run with MXCSR set to round toward zero (the
// driver sets it around accumulate(), a function the compiler cannot look into, so nothing is
// moved across the switch), and the float32 additions of the contract (an interval's result into
// the run's total, a run's scaled total into the output) run in finish(), with MXCSR back at round
// to nearest even. X in int8 lanes of 16 columns (one 128-bit vector per row), then widened to
// int32 with floor(log2 |acc|) from the accumulator's exponent field (it is 0 or a normal float:
// a multiple of 2^(X - keep) >= 2^-119). B's panels: per product, 16 exponent fields, 16 bytes of
// padding, then per 8 columns their values >= 0 and their values < 0; a negative A value reads
// the pair the other way round (an offset of 8 floats), so the loads fold into the multiply-adds.
namespace avx2 {

constexpr int kLanes8 = 8;
constexpr int kHeader = 32;

// Per A code, in arrays of their own (an index scaled by 4 in the load itself): its value and its
// exponent field in the four bytes of an int32. Which of B's two vectors a product adds to the
// accumulator >= 0 (0 for values >= 0, the one 32 bytes on for values < 0) comes from the code's
// sign bit, `signShift` (8 where no value is negative: the shift leaves 0).
struct Codes8 {
  float value[256];
  int32_t exp4[256];
  int signShift;
};

inline Codes8 codesOf(const Tables& t) {
  Codes8 out;
  for (int c = 0; c < 256; ++c) {
    out.value[c] = t.code[c].value;
    out.exp4[c] = t.exp4[c];
  }
  out.signShift = signBit(t);
  return out;
}

// packPanel<C, 8, 32> for a panel of 8 C columns all inside B (C = 2 or 4): each product's values
// by gathers, split by sign with a max and a min (a -0 comes out +0 in both, where packPanel keeps
// it in the first: its products add nothing to the offset accumulators either way).
template <int C>
__attribute__((target("avx2"))) void packFull(const AlignedGemmArgs& g, const Tables& tb, int64_t j0, int64_t t0, int64_t t1, uint8_t* out) {
  static_assert(C == 2 || C == 4, "the header holds 32 exponent fields");
  constexpr int64_t S = stride<C, kLanes8, kHeader>();
  static_assert(sizeof(Code) == 8, "the gathers step over Code entries by 8 bytes");
  const float* values = &tb.code[0].value;
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t t = t0; t < t1; ++t) {
    uint8_t* row = out + (t - t0) * S;
    const uint8_t* codes = g.b + t * g.n + j0;
    int8_t* e = reinterpret_cast<int8_t*>(row);
    for (int l = 0; l < 8 * C; ++l) e[l] = tb.exp[codes[l]];
    if (8 * C < kHeader) std::memset(row + 8 * C, static_cast<uint8_t>(static_cast<int8_t>(kZeroExp)), kHeader - 8 * C);
    float* v = reinterpret_cast<float*>(row + kHeader);
    for (int q = 0; q < C; ++q) {
      const __m256i index = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8 * q)));
      const __m256 x = _mm256_i32gather_ps(values, index, 8);
      _mm256_store_ps(v + 16 * q, _mm256_max_ps(x, zero));
      _mm256_store_ps(v + 16 * q + 8, _mm256_min_ps(x, zero));
    }
  }
}

// A group's exponent bytes for 32 columns, or for 16 (a vector type as a template argument would
// lose its alignment attribute: GCC warns).
template <bool Wide>
struct ExponentBytes {
  using type = __m128i;
};
template <>
struct ExponentBytes<true> {
  using type = __m256i;
};

// Shared by the AVX2 tiles. A group's exponent bytes (16 columns a 128-bit vector, 32 a 256-bit
// one) raised by product t: the saturating sum of B's exponents in its panel's header and A's
// exponent (four bytes of an int32), where larger.
__attribute__((target("avx2"), always_inline)) inline __m128i withProduct(__m128i x, const uint8_t* header, const int32_t* ea) {
  return _mm_max_epi8(x, _mm_adds_epi8(_mm_load_si128(reinterpret_cast<const __m128i*>(header)), _mm_castps_si128(_mm_broadcast_ss(reinterpret_cast<const float*>(ea)))));
}
__attribute__((target("avx2"), always_inline)) inline __m256i withProduct(__m256i x, const uint8_t* header, const int32_t* ea) {
  return _mm256_max_epi8(x, _mm256_adds_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(header)),
                                             _mm256_castps_si256(_mm256_broadcast_ss(reinterpret_cast<const float*>(ea)))));
}

// Columns 8q..8q+7 of the exponent bytes, as int32.
__attribute__((target("avx2"), always_inline)) inline __m256i columnsOf(__m128i x, int q) {
  return _mm256_cvtepi8_epi32(q % 2 == 0 ? x : _mm_srli_si128(x, 8));
}
__attribute__((target("avx2"), always_inline)) inline __m256i columnsOf(__m256i x, int q) {
  return columnsOf(q / 2 == 0 ? _mm256_castsi256_si128(x) : _mm256_extracti128_si256(x, 1), q);
}

// A group's quantum exponent, X - keep: X the largest of its exponent sums x32, floor(log2 |acc|) of
// the accumulator carried in (unless the interval starts with the group; -127 for a zero
// accumulator, below every real exponent sum) and kFloorExp.
__attribute__((target("avx2"), always_inline)) inline __m256i quantumOf(__m256i x32, __m256 acc, bool fresh, int keep) {
  if (!fresh) {
    const __m256i bits = _mm256_castps_si256(acc);
    x32 = _mm256_max_epi32(x32, _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xff)), _mm256_set1_epi32(127)));
  }
  return _mm256_sub_epi32(_mm256_max_epi32(x32, _mm256_set1_epi32(kFloorExp)), _mm256_set1_epi32(keep));
}

// The offset accumulator's magnitude for quantum 2^e: 1.5 * 2^(e + 23), as bits.
__attribute__((target("avx2"), always_inline)) inline __m256i offsetOf(__m256i quantum) {
  return _mm256_or_si256(_mm256_slli_epi32(_mm256_add_epi32(quantum, _mm256_set1_epi32(150)), 23), _mm256_set1_epi32(0x00400000));
}

// Groups [first, last) of one interval (the last may end it) of the R x 8C tile, the accumulators
// in registers from the first group to the last.
template <int R, int C>
__attribute__((target("avx2,fma"), noipa)) void accumulate(const AlignedGemmArgs& g, const Codes8& ta, const Group* first, const Group* last,
                                                           const uint8_t* a, const int64_t (&rowOffset)[R], int64_t kStride, int64_t aT0,
                                                           const uint8_t* panel, int64_t tBase, Accumulators<R, C, kLanes8>& hot) {
  constexpr int64_t S = stride<C, kLanes8, kHeader>();
  const __m256i sign = _mm256_set1_epi32(static_cast<int32_t>(0x80000000u));
  const __m256i keepBits = _mm256_set1_epi32(static_cast<int32_t>(~((1u << (24 - g.significant)) - 1u)));
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = a + rowOffset[r];
  const int signShift = ta.signShift;
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < C; ++q) acc[r][q] = _mm256_loadu_ps(hot.acc[r][q]);
  // A group's largest exponent sum per row and column (bytes: 16 columns a 128-bit vector, 32
  // columns a 256-bit one), product by product.
  using Bytes = typename ExponentBytes<(C > 2)>::type;
  auto lowest = [](Bytes (&x)[R]) __attribute__((always_inline, target("avx2,fma"))) {
    for (int r = 0; r < R; ++r) {
      if constexpr (C > 2) x[r] = _mm256_set1_epi8(static_cast<char>(kZeroExp));
      else x[r] = _mm_set1_epi8(static_cast<char>(kZeroExp));
    }
  };
  auto exponents = [&](Bytes (&x)[R], int64_t t) __attribute__((always_inline, target("avx2,fma"))) {
    const uint8_t* header = panel + (t - tBase) * S;
    for (int r = 0; r < R; ++r) x[r] = withProduct(x[r], header, &ta.exp4[rows[r][(t - aT0) * kStride]]);
  };
  // Where the registers allow (one row of 32 columns), the next group's exponent pass runs inside
  // this group's multiply-adds when both groups have the same length (the loads of both overlap).
  constexpr bool kOverlap = 2 * R * C + R + 3 <= 16;
  Bytes x[R], next[R];
  bool ready = false;  // x holds the group's exponents already
  for (const Group* group = first; group != last; ++group) {
    const int64_t g0 = group->g0, g1 = group->g1;
    const bool fresh = group->flags & kIntervalStart;
    if (fresh)
      for (int r = 0; r < R; ++r)
        for (int q = 0; q < C; ++q) acc[r][q] = _mm256_setzero_ps();
    if (g1 <= g0) {
      ready = false;
      continue;
    }
    if (!ready) {
      lowest(x);
      for (int64_t t = g0; t < g1; ++t) exponents(x, t);
    }
    __m256 pos[R][C], neg[R][C];
    for (int r = 0; r < R; ++r) {
      for (int q = 0; q < C; ++q) {
        const __m256i m = offsetOf(quantumOf(columnsOf(x[r], q), acc[r][q], fresh, g.keep));
        const __m256 mp = _mm256_castsi256_ps(m), mn = _mm256_castsi256_ps(_mm256_or_si256(m, sign));
        if (fresh) {
          pos[r][q] = mp;
          neg[r][q] = mn;
        } else {
          // The accumulator truncated into the offset accumulator of its sign (a blend on its sign bit).
          pos[r][q] = _mm256_blendv_ps(_mm256_add_ps(mp, acc[r][q]), mp, acc[r][q]);
          neg[r][q] = _mm256_blendv_ps(mn, _mm256_add_ps(mn, acc[r][q]), acc[r][q]);
        }
      }
    }
    auto products = [&](int64_t t) __attribute__((always_inline, target("avx2,fma"))) {
      const uint8_t* bt = panel + (t - tBase) * S + kHeader;
      for (int r = 0; r < R; ++r) {
        const uint8_t code = rows[r][(t - aT0) * kStride];
        const __m256 av = _mm256_broadcast_ss(&ta.value[code]);
        const int64_t swap = ((code >> signShift) & 1) << 5;  // no load: B's address waits on the code alone
        const float* toPositive = reinterpret_cast<const float*>(bt + swap);
        const float* toNegative = reinterpret_cast<const float*>(bt + (swap ^ 32));
        for (int q = 0; q < C; ++q) {
          pos[r][q] = _mm256_fmadd_ps(av, _mm256_load_ps(toPositive + q * 2 * kLanes8), pos[r][q]);
          neg[r][q] = _mm256_fmadd_ps(av, _mm256_load_ps(toNegative + q * 2 * kLanes8), neg[r][q]);
        }
      }
    };
    ready = kOverlap && group + 1 != last && group[1].g1 - group[1].g0 == g1 - g0;
    if (ready) {
      lowest(next);
      const int64_t shift = g1 - g0;
      for (int64_t t = g0; t < g1; ++t) {
        products(t);
        exponents(next, t + shift);
      }
      for (int r = 0; r < R; ++r) x[r] = next[r];
    } else {
      for (int64_t t = g0; t < g1; ++t) products(t);
    }
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < C; ++q) acc[r][q] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(_mm256_add_ps(pos[r][q], neg[r][q])), keepBits));
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < C; ++q) _mm256_storeu_ps(hot.acc[r][q], acc[r][q]);
}

// What ends with the group, rounded to nearest even: the interval's accumulator added into the
// run's total; at a run's end, the total (block-scaled) into the output.
template <int R, int C>
__attribute__((target("avx2"), noipa)) void finish(const AlignedGemmArgs& g, const Runs& runs, const Group& group, int64_t i0, int64_t j0,
                                                   const Accumulators<R, C, kLanes8>& hot, Sums<R, C, kLanes8>& state) {
  if (group.flags & kIntervalEnd)
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < C; ++q) _mm256_storeu_ps(state.total[r][q], _mm256_add_ps(_mm256_loadu_ps(state.total[r][q]), _mm256_loadu_ps(hot.acc[r][q])));
  if (!(group.flags & kRunEnd)) return;
  const int64_t run = group.run;
  for (int r = 0; r < R; ++r) {
    const int64_t i = std::min(i0 + r, g.m - 1);  // rows past m: any divisor, never stored
    for (int q = 0; q < C; ++q) {
      const __m256 total = _mm256_loadu_ps(state.total[r][q]);
      if (!g.scaled) {
        _mm256_storeu_ps(state.out[r][q], total);
      } else {
        const int64_t j = j0 + q * kLanes8;
        const float* cols = runs.scales.cols.data() + run * g.n + j;
        __m256 col;
        if (j + kLanes8 <= g.n) {
          col = _mm256_loadu_ps(cols);
        } else {
          alignas(32) float bs[kLanes8];
          for (int l = 0; l < kLanes8; ++l) bs[l] = j + l < g.n ? cols[l] : 1.0f;
          col = _mm256_load_ps(bs);
        }
        const __m256 row = _mm256_set1_ps(runs.scales.rows[run * g.m + i]);
        const __m256 d = g.colScaleFirst ? col : row, b = g.colScaleFirst ? row : col;  // d first
        const __m256 out = _mm256_loadu_ps(state.out[r][q]);
        _mm256_storeu_ps(state.out[r][q], runs.scales.reciprocal[run] ? _mm256_add_ps(out, _mm256_mul_ps(_mm256_mul_ps(total, d), b))
                                                                      : _mm256_add_ps(out, _mm256_div_ps(_mm256_div_ps(total, d), b)));
      }
      _mm256_storeu_ps(state.total[r][q], _mm256_setzero_ps());
    }
  }
}

}  // namespace avx2

// The AVX2 kernel on tiles of 1 row x 32 or 64 columns with one offset accumulator per 8 columns
// (not two: half the multiply-adds). Its offset M = 1.5 * 2^23 q is positive, so a multiply-add rounded
// toward zero floors every product to the quantum, where the contract truncates: a negative product
// with bits below q comes out q too low. Those are counted per column, in bytes, as the group runs:
// a product has bits below 2^e exactly when its codes' lowest-bit exponents sum below e, and it is
// negative exactly when B's sign differs from A's, so B's panel holds those exponents twice (of its
// columns < 0, read for A >= 0; of its columns > 0, for A < 0; kNeverLow elsewhere), and the
// group's sum is the accumulator less M plus the count times q: exact, as every term is a multiple
// of q below 2^24 q. The accumulator carried in from the group before is floored the same way and
// counted where it is negative with bits below q.
namespace onesum {

// Panels of W columns (32, or 64 where B is that wide; 64 on AVX-512 too): per product, W bytes of
// exponents, W low exponents for A >= 0, W for A < 0, then the W values.
template <int W>
constexpr int64_t headerBytes() { return 3 * W; }
template <int W>
constexpr int64_t strideOf() { return 7 * W; }
constexpr int kLowCap = 57;  // quanta capped here: above every real low sum (<= 56), below a zero's (>= 127 - 35)

// The two-accumulator kernel's tables, and each code's lowest-bit exponent in four bytes.
struct Codes : avx2::Codes8 {
  int32_t low4[256];
};

inline Codes codesOf(const Tables& t) {
  Codes out;
  static_cast<avx2::Codes8&>(out) = avx2::codesOf(t);
  for (int c = 0; c < 256; ++c) out.low4[c] = static_cast<int32_t>(0x01010101u * static_cast<uint8_t>(t.low[c]));
  return out;
}

// Whether the counts stay exact: every real low exponent within [-35, 28] (a sum in [-70, 56],
// below kLowCap; a zero's kNeverLow plus any of them at least 92, above it), and a column's count
// within a byte (at most one per product of the group and one for the carried accumulator; read as
// unsigned). (A's sign bit, as for the other AVX2 tiles: appliesAvx2.)
constexpr int kMaxGroup = 254;
inline bool applies(const AlignedGemmArgs& g, const Tables& ta, const Tables& tb) {
  if (g.group > kMaxGroup) return false;
  for (const Tables* t : {&ta, &tb})
    for (int c = 0; c < 256; ++c)
      if (t->low[c] != kNeverLow && (t->low[c] < -35 || t->low[c] > 28)) return false;
  return true;
}

// pack() for a panel of W columns all inside B: per product and 32 columns, the values by four
// gathers and the three header bytes of each code (exponent, low exponent where negative, where
// positive) by four more from a table of them, regrouped into three 32-byte rows by unpacks and
// one permute each.
template <int W>
__attribute__((target("avx2"))) void packFull(const AlignedGemmArgs& g, const Tables& tb, int64_t j0, int64_t t0, int64_t t1,
                                              uint8_t* out) {
  static_assert(sizeof(Code) == 8, "the gathers step over Code entries by 8 bytes");
  const float* values = &tb.code[0].value;
  // Within each 128-bit lane: the four codes' exponents, then their low exponents (negative
  // values), then (positive values), then zeros.
  const __m256i group = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t t = t0; t < t1; ++t) {
    uint8_t* row = out + (t - t0) * strideOf<W>();
    for (int h = 0; h < W / 32; ++h) {
      const uint8_t* codes = g.b + t * g.n + j0 + 32 * h;
      __m256i bytes[4];
      for (int q = 0; q < 4; ++q) {
        const __m256i index = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8 * q)));
        _mm256_store_ps(reinterpret_cast<float*>(row + headerBytes<W>()) + 32 * h + 8 * q, _mm256_i32gather_ps(values, index, 8));
        bytes[q] = _mm256_shuffle_epi8(_mm256_i32gather_epi32(tb.header, index, 4), group);
      }
      const __m256i low01 = _mm256_unpacklo_epi32(bytes[0], bytes[1]), low23 = _mm256_unpacklo_epi32(bytes[2], bytes[3]);
      const __m256i high01 = _mm256_unpackhi_epi32(bytes[0], bytes[1]), high23 = _mm256_unpackhi_epi32(bytes[2], bytes[3]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(row + 32 * h), _mm256_permutevar8x32_epi32(_mm256_unpacklo_epi64(low01, low23), order));
      _mm256_store_si256(reinterpret_cast<__m256i*>(row + W + 32 * h), _mm256_permutevar8x32_epi32(_mm256_unpackhi_epi64(low01, low23), order));
      _mm256_store_si256(reinterpret_cast<__m256i*>(row + 2 * W + 32 * h), _mm256_permutevar8x32_epi32(_mm256_unpacklo_epi64(high01, high23), order));
    }
  }
}

// The panel's layout in scalar code, from the same header bytes (a panel with fewer than W of B's
// columns: the rest as zeros, kZeroExp and kNeverLow).
template <int W>
void pack(const AlignedGemmArgs& g, const Tables& tb, int64_t j0, int64_t t0, int64_t t1, uint8_t* out) {
  const int64_t width = std::min<int64_t>(W, g.n - j0);
  const int32_t outside = static_cast<int32_t>(static_cast<uint8_t>(kZeroExp) | uint32_t(static_cast<uint8_t>(kNeverLow)) * 0x10100u);
  for (int64_t t = t0; t < t1; ++t) {
    uint8_t* row = out + (t - t0) * strideOf<W>();
    const uint8_t* codes = g.b + t * g.n + j0;
    float* v = reinterpret_cast<float*>(row + headerBytes<W>());
    for (int64_t l = 0; l < W; ++l) {
      const uint32_t bytes = static_cast<uint32_t>(l < width ? tb.header[codes[l]] : outside);
      for (int b = 0; b < 3; ++b) row[W * b + l] = static_cast<uint8_t>(bytes >> (8 * b));
      v[l] = l < width ? tb.code[codes[l]].value : 0.0f;
    }
  }
}

// Four vectors of 8 int32 (each within int8) as 32 bytes in column order.
__attribute__((target("avx2"), always_inline)) inline __m256i bytesOf(const __m256i (&v)[4]) {
  const __m256i words = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
  return _mm256_permutevar8x32_epi32(words, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Groups [first, last) of one interval (the last may end it) of the 1 x W tile, the accumulators
// in registers from the first group to the last. Bytes of 32 columns a vector (H of them). With
// W = 32 the next group's exponent pass runs inside this group's products when both have the same
// length; with W = 64 the registers do not allow it.
template <int W>
__attribute__((target("avx2,fma"), noipa)) void accumulate(const AlignedGemmArgs& g, const Codes& ta, const Group* first, const Group* last,
                                                           const uint8_t* a, int64_t rowOffset, int64_t kStrideA, int64_t aT0,
                                                           const uint8_t* panel, int64_t tBase, Accumulators<1, W / 8, avx2::kLanes8>& hot) {
  constexpr int C = W / 8, H = W / 32;
  constexpr int64_t S = strideOf<W>();
  constexpr bool kOverlap = H == 1;
  const __m256i lowCap = _mm256_set1_epi32(kLowCap);
  const __m256i keepBits = _mm256_set1_epi32(static_cast<int32_t>(~((1u << (24 - g.significant)) - 1u)));
  const uint8_t* row = a + rowOffset;
  const int signShift = ta.signShift;
  __m256 acc[C];
  for (int q = 0; q < C; ++q) acc[q] = _mm256_loadu_ps(hot.acc[0][q]);
  auto exponents = [&](__m256i (&x)[H], int64_t t) __attribute__((always_inline, target("avx2,fma"))) {
    const uint8_t* header = panel + (t - tBase) * S;
    const int32_t* ea = &ta.exp4[row[(t - aT0) * kStrideA]];
    for (int h = 0; h < H; ++h) x[h] = avx2::withProduct(x[h], header + 32 * h, ea);
  };
  auto lowest = [](__m256i (&x)[H]) __attribute__((always_inline, target("avx2,fma"))) {
    for (int h = 0; h < H; ++h) x[h] = _mm256_set1_epi8(static_cast<char>(kZeroExp));
  };
  __m256i x[H], next[H];
  lowest(x);
  bool ready = false;
  for (const Group* group = first; group != last; ++group) {
    const int64_t g0 = group->g0, g1 = group->g1;
    const bool fresh = group->flags & kIntervalStart;
    if (fresh)
      for (int q = 0; q < C; ++q) acc[q] = _mm256_setzero_ps();
    if (g1 <= g0) {
      ready = false;
      continue;
    }
    if (!ready) {
      lowest(x);
      for (int64_t t = g0; t < g1; ++t) exponents(x, t);
    }
    __m256 sum[C], offset[C];
    __m256i quantum[C], capped[C], carried[C];
    for (int q = 0; q < C; ++q) {
      quantum[q] = avx2::quantumOf(avx2::columnsOf(x[q / 4], q % 4), acc[q], fresh, g.keep);
      capped[q] = _mm256_min_epi32(quantum[q], lowCap);
      offset[q] = _mm256_castsi256_ps(avx2::offsetOf(quantum[q]));
      if (fresh) {
        sum[q] = offset[q];
        carried[q] = _mm256_setzero_si256();
      } else {
        // The accumulator floored into the offset; counted where it is negative with bits below q.
        sum[q] = _mm256_add_ps(offset[q], acc[q]);
        const __m256 lost = _mm256_cmp_ps(_mm256_sub_ps(sum[q], offset[q]), acc[q], _CMP_NEQ_OQ);
        carried[q] = _mm256_and_si256(_mm256_castps_si256(lost), _mm256_srai_epi32(_mm256_castps_si256(acc[q]), 31));
      }
    }
    __m256i lowLimit[H], hits[H];
    for (int h = 0; h < H; ++h) {
      lowLimit[h] = bytesOf(*reinterpret_cast<const __m256i(*)[4]>(&capped[4 * h]));
      hits[h] = _mm256_sub_epi8(_mm256_setzero_si256(), bytesOf(*reinterpret_cast<const __m256i(*)[4]>(&carried[4 * h])));
    }
    auto products = [&](int64_t t) __attribute__((always_inline, target("avx2,fma"))) {
      const uint8_t* bt = panel + (t - tBase) * S;
      const uint8_t code = row[(t - aT0) * kStrideA];
      const __m256 av = _mm256_broadcast_ss(&ta.value[code]);
      // The low exponents of the columns whose products are negative.
      const uint8_t* lows = bt + W + ((code >> signShift) & 1) * W;
      const __m256i lowA = _mm256_castps_si256(_mm256_broadcast_ss(reinterpret_cast<const float*>(&ta.low4[code])));
      for (int h = 0; h < H; ++h) {
        const __m256i low = _mm256_adds_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(lows + 32 * h)), lowA);
        hits[h] = _mm256_sub_epi8(hits[h], _mm256_cmpgt_epi8(lowLimit[h], low));
      }
      const float* values = reinterpret_cast<const float*>(bt + headerBytes<W>());
      for (int q = 0; q < C; ++q) sum[q] = _mm256_fmadd_ps(av, _mm256_load_ps(values + 8 * q), sum[q]);
    };
    ready = kOverlap && group + 1 != last && group[1].g1 - group[1].g0 == g1 - g0;
    if (ready) {
      lowest(next);
      const int64_t shift = g1 - g0;
      for (int64_t t = g0; t < g1; ++t) {
        products(t);
        exponents(next, t + shift);
      }
      for (int h = 0; h < H; ++h) x[h] = next[h];
    } else {
      for (int64_t t = g0; t < g1; ++t) products(t);
    }
    // The group's exact sum: the floored total, plus q for each negative product cut below q.
    for (int q = 0; q < C; ++q) {
      const __m256i bytes = hits[q / 4];
      const __m128i half = q % 4 < 2 ? _mm256_castsi256_si128(bytes) : _mm256_extracti128_si256(bytes, 1);
      const __m256 count = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q % 2 == 0 ? half : _mm_srli_si128(half, 8)));  // 0 to 255
      const __m256 step = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(quantum[q], _mm256_set1_epi32(127)), 23));
      const __m256 exact = _mm256_add_ps(_mm256_sub_ps(sum[q], offset[q]), _mm256_mul_ps(count, step));
      acc[q] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(exact), keepBits));
    }
  }
  for (int q = 0; q < C; ++q) _mm256_storeu_ps(hot.acc[0][q], acc[q]);
}

}  // namespace onesum

// The one-sum method on AVX-512: tiles of 1 row x 64 columns (the exponent pass and the counts
// take 64 bytes a vector, four accumulators of 16 columns), every rounding toward zero by the
// instructions themselves (no MXCSR switch), and the group's closing in the tile as the
// two-accumulator tile has it. Panels as onesum's for W = 64: per product 64 exponents, 64 low
// exponents of B's values < 0, 64 of B's values > 0, then 64 values (448 bytes).
namespace onesum512 {

constexpr int W = 64;
constexpr int64_t kHeader = onesum::headerBytes<W>();
constexpr int64_t kStride = onesum::strideOf<W>();

// pack<64>() for a panel all inside B: per 16 columns, the values by one gather and the three
// header bytes by another from their table, narrowed to bytes.
__attribute__((target("avx512f,avx512bw"))) void packFull(const AlignedGemmArgs& g, const Tables& tb, int64_t j0, int64_t t0,
                                                         int64_t t1, uint8_t* out) {
  static_assert(sizeof(Code) == 8, "the gathers step over Code entries by 8 bytes");
  const float* values = &tb.code[0].value;
  for (int64_t t = t0; t < t1; ++t) {
    uint8_t* row = out + (t - t0) * kStride;
    const uint8_t* codes = g.b + t * g.n + j0;
    for (int q = 0; q < 4; ++q) {
      const __m512i index = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + 16 * q)));
      _mm512_store_ps(reinterpret_cast<float*>(row + kHeader) + 16 * q, _mm512_i32gather_ps(index, values, 8));
      const __m512i bytes = _mm512_i32gather_epi32(index, tb.header, 4);
      for (int b = 0; b < 3; ++b)
        _mm_store_si128(reinterpret_cast<__m128i*>(row + W * b + 16 * q), _mm512_cvtepi32_epi8(_mm512_srli_epi32(bytes, 8 * b)));
    }
  }
}

// Groups [first, last) of the tile at row i0 (A's codes at a + rowOffset + (t - aT0) * kStrideA),
// panel columns [j0, j0 + 64).
__attribute__((target("avx512f,avx512bw"))) void tile(const AlignedGemmArgs& g, const Runs& runs, const onesum::Codes& ta, const Group* first, const Group* last,
                                                     const uint8_t* a, int64_t rowOffset, int64_t kStrideA, int64_t aT0, const uint8_t* panel, int64_t tBase,
                                                     int64_t i0, int64_t j0, Accumulators<1, 4>& hot, Sums<1, 4>& state) {
  constexpr int C = 4;
  const __m512i keep = _mm512_set1_epi32(g.keep);
  const __m512i floorExp = _mm512_set1_epi32(kFloorExp);
  const __m512i lowCap = _mm512_set1_epi32(onesum::kLowCap);
  const __m512i keepBits = _mm512_set1_epi32(static_cast<int32_t>(~((1u << (24 - g.significant)) - 1u)));
  const __m512i one = _mm512_set1_epi8(1);
  const uint8_t* row = a + rowOffset;
  const int signShift = ta.signShift;
  __m512 acc[1][C];
  for (int q = 0; q < C; ++q) acc[0][q] = _mm512_loadu_ps(hot.acc[0][q]);
  auto exponents = [&](__m512i& x, int64_t t) __attribute__((always_inline, target("avx512f,avx512bw"))) {
    const __m512i eb = _mm512_load_si512(panel + (t - tBase) * kStride);
    x = _mm512_max_epi8(x, _mm512_adds_epi8(eb, _mm512_set1_epi32(ta.exp4[row[(t - aT0) * kStrideA]])));
  };
  __m512i x = _mm512_set1_epi8(static_cast<char>(kZeroExp)), next;
  bool ready = false;  // x holds the group's exponents already
  for (const Group* group = first; group != last; ++group) {
    const int64_t g0 = group->g0, g1 = group->g1;
    const bool fresh = group->flags & kIntervalStart;
    if (fresh)
      for (int q = 0; q < C; ++q) acc[0][q] = _mm512_setzero_ps();
    if (g1 <= g0) {
      ready = false;
    } else {
      if (!ready) {
        x = _mm512_set1_epi8(static_cast<char>(kZeroExp));
        for (int64_t t = g0; t < g1; ++t) exponents(x, t);
      }
      // Per 16 columns: the quantum's exponent (X - keep, X with floor(log2 |acc|) from the
      // accumulator's exponent field: 0 or a normal float), the offset, the accumulator floored into it.
      __m512 sum[C], offset[C];
      __m512i quantum[C];
      __m512i lowLimit = _mm512_setzero_si512();
      uint64_t carried = 0;
      for (int q = 0; q < C; ++q) {
        __m512i x32 = _mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(x, q));
        const __m512i bits = _mm512_castps_si512(acc[0][q]);
        if (!fresh) x32 = _mm512_max_epi32(x32, _mm512_sub_epi32(_mm512_and_si512(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(0xff)), _mm512_set1_epi32(127)));
        quantum[q] = _mm512_sub_epi32(_mm512_max_epi32(x32, floorExp), keep);
        lowLimit = _mm512_inserti32x4(lowLimit, _mm512_cvtepi32_epi8(_mm512_min_epi32(quantum[q], lowCap)), q);
        offset[q] = _mm512_castsi512_ps(magicBits(quantum[q]));
        if (fresh) {
          sum[q] = offset[q];
        } else {
          // Counted where the accumulator is negative with bits below the quantum.
          sum[q] = _mm512_add_round_ps(offset[q], acc[0][q], kTruncate);
          const __mmask16 lost = _mm512_cmp_ps_mask(_mm512_sub_ps(sum[q], offset[q]), acc[0][q], _CMP_NEQ_OQ) &
                                 _mm512_cmplt_epi32_mask(bits, _mm512_setzero_si512());
          carried |= static_cast<uint64_t>(lost) << (16 * q);
        }
      }
      __m512i hits = _mm512_maskz_mov_epi8(carried, one);
      auto products = [&](int64_t t) __attribute__((always_inline, target("avx512f,avx512bw"))) {
        const uint8_t* bt = panel + (t - tBase) * kStride;
        const uint8_t code = row[(t - aT0) * kStrideA];
        const __m512 av = _mm512_set1_ps(ta.value[code]);
        // The low exponents of the columns whose products are negative.
        const __m512i lowB = _mm512_load_si512(bt + W + (((code >> signShift) & 1) << 6));
        const __m512i low = _mm512_adds_epi8(lowB, _mm512_set1_epi32(ta.low4[code]));
        hits = _mm512_mask_add_epi8(hits, _mm512_cmpgt_epi8_mask(lowLimit, low), hits, one);
        const float* values = reinterpret_cast<const float*>(bt + kHeader);
        for (int q = 0; q < C; ++q) sum[q] = _mm512_fmadd_round_ps(av, _mm512_load_ps(values + 16 * q), sum[q], kTruncate);
      };
      ready = group + 1 != last && group[1].g1 - group[1].g0 == g1 - g0;
      if (ready) {
        next = _mm512_set1_epi8(static_cast<char>(kZeroExp));
        const int64_t shift = g1 - g0;
        for (int64_t t = g0; t < g1; ++t) {
          products(t);
          exponents(next, t + shift);
        }
        x = next;
      } else {
        for (int64_t t = g0; t < g1; ++t) products(t);
      }
      // The group's exact sum: the floored total, plus q for each negative product cut below q.
      for (int q = 0; q < C; ++q) {
        const __m512 count = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(hits, q)));
        const __m512 step = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(quantum[q], _mm512_set1_epi32(127)), 23));
        const __m512 exact = _mm512_add_ps(_mm512_sub_ps(sum[q], offset[q]), _mm512_mul_ps(count, step));
        acc[0][q] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(exact), keepBits));
      }
    }
    closeGroup<1, C>(g, runs, *group, i0, j0, acc, state);
  }
  for (int q = 0; q < C; ++q) _mm512_storeu_ps(hot.acc[0][q], acc[0][q]);
}

}  // namespace onesum512

// The two kernels as the driver sees them: lanes, panel layout, and what one group of a row
// block does (the AVX-512 tile does all of it, under its instructions' own rounding).
template <int R_, int C_>
struct Wide {
  static constexpr int R = R_, C = C_, L = kLanes, H = 64;
  static constexpr int64_t kStride = stride<C, L, H>();
  static constexpr bool kSplit = false;  // no finish pass: the tile adds totals itself
  static constexpr int64_t kSpanBytes = 0;  // one group at a time
  static constexpr bool kGather = false;    // A read where it lies
  using ATable = Tables;
  static ATable table(const Tables& t) { return t; }
  static void pack(const AlignedGemmArgs& g, const Tables& tb, int64_t j0, int64_t t0, int64_t t1, uint8_t* out) { packPanel<C, L, H>(g, tb, j0, t0, t1, out); }
  static void groups(const AlignedGemmArgs& g, const Runs& runs, const ATable& ta, const Group* first, const Group* last, const uint8_t* a,
                     const int64_t (&rowOffset)[R], int64_t kStride, int64_t, const uint8_t* panel, int64_t tBase, int64_t i0, int64_t j0,
                     Accumulators<R, C, L>& hot, Sums<R, C, L>& state) {
    tile<R, C>(g, runs, ta, first, last, a, rowOffset, kStride, panel, tBase, i0, j0, hot, state);
  }
  static void finish(const AlignedGemmArgs&, const Runs&, const Group&, int64_t, int64_t, const Accumulators<R, C, L>&, Sums<R, C, L>&) {}
};
template <int R_, int C_>
struct Narrow {
  static constexpr int R = R_, C = C_, L = avx2::kLanes8, H = avx2::kHeader;
  static constexpr int64_t kStride = stride<C, L, H>();
  static constexpr bool kSplit = true;  // accumulate() under round toward zero, finish() at nearest even
  // The groups of one interval together while their slice of B stays within L1.
  static constexpr int64_t kSpanBytes = 20 << 10;
  // A's codes of an item's rows gathered product by product (64 or 66 bytes apart), where in place rows
  // lie k or m bytes apart (on this kernel's tests of 2026-12-07 no faster or slower by itself).
  static constexpr bool kGather = true;
  using ATable = avx2::Codes8;
  static ATable table(const Tables& t) { return avx2::codesOf(t); }
  static void pack(const AlignedGemmArgs& g, const Tables& tb, int64_t j0, int64_t t0, int64_t t1, uint8_t* out) {
    if constexpr (C >= 2) {
      if (g.n - j0 >= C * L) return avx2::packFull<C>(g, tb, j0, t0, t1, out);
    }
    packPanel<C, L, H>(g, tb, j0, t0, t1, out);
  }
  static void groups(const AlignedGemmArgs& g, const Runs&, const ATable& ta, const Group* first, const Group* last, const uint8_t* a,
                     const int64_t (&rowOffset)[R], int64_t kStride, int64_t aT0, const uint8_t* panel, int64_t tBase, int64_t, int64_t,
                     Accumulators<R, C, L>& hot, Sums<R, C, L>&) {
    avx2::accumulate<R, C>(g, ta, first, last, a, rowOffset, kStride, aT0, panel, tBase, hot);
  }
  static void finish(const AlignedGemmArgs& g, const Runs& runs, const Group& group, int64_t i0, int64_t j0, const Accumulators<R, C, L>& hot,
                     Sums<R, C, L>& state) {
    avx2::finish<R, C>(g, runs, group, i0, j0, hot, state);
  }
};

// The 1 x W AVX2 tile with one accumulator per 8 columns (onesum above).
template <int W>
struct OneSum {
  static constexpr int R = 1, C = W / 8, L = avx2::kLanes8;
  static constexpr int64_t kStride = onesum::strideOf<W>();
  static constexpr bool kSplit = true;
  static constexpr int64_t kSpanBytes = 20 << 10;
  static constexpr bool kGather = true;
  using ATable = onesum::Codes;
  static ATable table(const Tables& t) { return onesum::codesOf(t); }
  static void pack(const AlignedGemmArgs& g, const Tables& tb, int64_t j0, int64_t t0, int64_t t1, uint8_t* out) {
    if (g.n - j0 < W) onesum::pack<W>(g, tb, j0, t0, t1, out);
    else onesum::packFull<W>(g, tb, j0, t0, t1, out);
  }
  static void groups(const AlignedGemmArgs& g, const Runs&, const ATable& ta, const Group* first, const Group* last, const uint8_t* a,
                     const int64_t (&rowOffset)[R], int64_t kStride, int64_t aT0, const uint8_t* panel, int64_t tBase, int64_t, int64_t,
                     Accumulators<R, C, L>& hot, Sums<R, C, L>&) {
    onesum::accumulate<W>(g, ta, first, last, a, rowOffset[0], kStride, aT0, panel, tBase, hot);
  }
  static void finish(const AlignedGemmArgs& g, const Runs& runs, const Group& group, int64_t i0, int64_t j0, const Accumulators<R, C, L>& hot,
                     Sums<R, C, L>& state) {
    avx2::finish<R, C>(g, runs, group, i0, j0, hot, state);
  }
};

// The 1 x 64 AVX-512 tile with one accumulator per 16 columns (onesum512 above).
struct OneSum512 {
  static constexpr int R = 1, C = 4, L = kLanes;
  static constexpr int64_t kStride = onesum512::kStride;
  static constexpr bool kSplit = false;  // the tile closes its groups itself
  // Two groups of 32 products (28 KB of B) together: the second's exponent pass overlaps the first's products.
  static constexpr int64_t kSpanBytes = 32 << 10;
  static constexpr bool kGather = true;
  using ATable = onesum::Codes;
  static ATable table(const Tables& t) { return onesum::codesOf(t); }
  static void pack(const AlignedGemmArgs& g, const Tables& tb, int64_t j0, int64_t t0, int64_t t1, uint8_t* out) {
    if (g.n - j0 < onesum512::W) onesum::pack<onesum512::W>(g, tb, j0, t0, t1, out);
    else onesum512::packFull(g, tb, j0, t0, t1, out);
  }
  static void groups(const AlignedGemmArgs& g, const Runs& runs, const ATable& ta, const Group* first, const Group* last, const uint8_t* a,
                     const int64_t (&rowOffset)[R], int64_t kStride, int64_t aT0, const uint8_t* panel, int64_t tBase, int64_t i0, int64_t j0,
                     Accumulators<R, C, L>& hot, Sums<R, C, L>& state) {
    onesum512::tile(g, runs, ta, first, last, a, rowOffset[0], kStride, aT0, panel, tBase, i0, j0, hot, state);
  }
  static void finish(const AlignedGemmArgs&, const Runs&, const Group&, int64_t, int64_t, const Accumulators<R, C, L>&, Sums<R, C, L>&) {}
};

// Work is cut so that packed B stays small (a packed product takes 9 bytes where its code took 1):
// panels a few at a time, and where one panel's K alone is too long, K in chunks of whole groups,
// the tiles' state kept between chunks. Within, items of up to 64 rows by a share of the panels:
// for each panel, group by group, every row block of the item passes over the group's slice of
// the panel while it is in L1.
constexpr int64_t kPackBytes = int64_t(8) << 20;
constexpr int64_t kRowsPerItem = 64;

// The packing budget: kPackBytes, or OCTET_ALIGNED_PACK_BYTES (tests cut the work small with it).
int64_t packBudget() {
  const char* v = std::getenv("OCTET_ALIGNED_PACK_BYTES");
  const long long bytes = v ? std::atoll(v) : 0;
  return bytes > 0 ? bytes : kPackBytes;
}

template <class Kernel>
void gemm(const AlignedGemmArgs& g, const Tables& tablesA, const Tables& tb, const Runs& runs, const std::vector<uint8_t>& rowBad,
          const std::vector<uint8_t>& colBad, bool anyBad, int threads) {
  const typename Kernel::ATable ta = Kernel::table(tablesA);
  constexpr int R = Kernel::R, C = Kernel::C, L = Kernel::L;
  using Acc = Accumulators<R, C, L>;
  using State = Sums<R, C, L>;
  constexpr int64_t width = C * L, S = Kernel::kStride;
  const int64_t panels = (g.n + width - 1) / width;
  const std::vector<Group> groups = groupsOf(g, runs);
  const int64_t rowStride = g.aKMajor ? 1 : g.k, kStride = g.aKMajor ? g.m : 1;
  // Row blocks are counted per item (R need not divide kRowsPerItem: an item's last block may
  // reach past its rows, into the next item's, whose results it never stores).
  constexpr int64_t blocksPerItem = (kRowsPerItem + R - 1) / R;
  const int64_t rowItems = (g.m + kRowsPerItem - 1) / kRowsPerItem, blocksTotal = rowItems * blocksPerItem;
  const int64_t budget = packBudget();
  const int64_t subset = std::max<int64_t>(1, std::min<int64_t>(panels, budget / std::max<int64_t>(1, g.k * S)));
  // Kept between calls (as the other kernels' scratch): no fresh pages to fault in every time.
  static thread_local AlignedFloats storage;
  for (int64_t ps = 0; ps < panels; ps += subset) {
    const int64_t np = std::min(subset, panels - ps);
    // Chunks of whole groups: [cuts[c], cuts[c + 1]).
    std::vector<size_t> cuts{0};
    for (size_t q = 0, first = 0; q < groups.size(); ++q) {
      if ((groups[q].g1 - groups[first].g0) * np * S >= budget || q + 1 == groups.size()) {
        cuts.push_back(q + 1);
        first = q + 1;
      }
    }
    if (cuts.size() == 1) cuts.push_back(0);  // no groups (K = 0, no runs): one empty chunk
    const bool chunked = cuts.size() > 2;
    std::vector<Acc> accAll;
    std::vector<State> sumAll;
    if (chunked) {
      accAll.assign(static_cast<size_t>(blocksTotal * np), Acc{});
      sumAll.assign(static_cast<size_t>(blocksTotal * np), State{});
    }
    const int64_t panelItems = std::min(np, std::max<int64_t>(1, (4 * threads + rowItems - 1) / rowItems));
    const int64_t panelsPerItem = (np + panelItems - 1) / panelItems;
    for (size_t cut = 0; cut + 1 < cuts.size(); ++cut) {
      const Group* first = groups.data() + cuts[cut];
      const Group* last = groups.data() + cuts[cut + 1];
      const int64_t t0 = first < last ? first->g0 : 0, t1 = first < last ? (last - 1)->g1 : 0;
      const int64_t panelBytes = (t1 - t0) * S;
      uint8_t* packed = reinterpret_cast<uint8_t*>(storage.get(static_cast<size_t>((np * panelBytes + 3) / 4 + 16)));
      parallelFor(np, np * (t1 - t0) < 4096 ? 1 : threads,
                  [&](int64_t p) { Kernel::pack(g, tb, (ps + p) * width, t0, t1, packed + p * panelBytes); });
      const bool lastCut = cut + 2 == cuts.size();
      // Where the kernel reads A: in place, or gathered once per cut for every item over the same
      // rows (row item by row item, product by product; rows past m as row m - 1).
      constexpr int64_t pad = blocksPerItem * R;
      const int64_t itemBytes = (t1 - t0) * pad;
      static thread_local std::vector<uint8_t> gatheredStorage;  // this thread's: the workers get its address
      uint8_t* gathered = nullptr;
      if (Kernel::kGather) {
        gatheredStorage.resize(static_cast<size_t>(rowItems * itemBytes));
        gathered = gatheredStorage.data();
        parallelFor(rowItems, rowItems * itemBytes < (1 << 16) ? 1 : threads, [&](int64_t rowItem) {
          const int64_t row0 = rowItem * kRowsPerItem;
          uint8_t* out = gathered + rowItem * itemBytes;
          if (g.aKMajor) {
            // A product's codes of the item's rows lie together: one copy, row m - 1 repeated past m.
            const int64_t inside = std::min(pad, g.m - row0);
            for (int64_t t = t0; t < t1; ++t) {
              const uint8_t* src = g.a + t * g.m;
              uint8_t* dst = out + (t - t0) * pad;
              std::memcpy(dst, src + row0, static_cast<size_t>(inside));
              if (inside < pad) std::memset(dst + inside, src[g.m - 1], static_cast<size_t>(pad - inside));
            }
          } else {
            for (int64_t ii = 0; ii < pad; ++ii) {
              const uint8_t* row = g.a + std::min(row0 + ii, g.m - 1) * g.k;
              for (int64_t t = t0; t < t1; ++t) out[(t - t0) * pad + ii] = row[t];
            }
          }
        });
      }
      parallelFor(rowItems * panelItems, g.m * g.n * g.k < (1 << 16) ? 1 : threads, [&](int64_t item) {
        const int64_t row0 = (item / panelItems) * kRowsPerItem, row1 = std::min(g.m, row0 + kRowsPerItem);
        const int64_t p0 = (item % panelItems) * panelsPerItem, p1 = std::min(np, p0 + panelsPerItem);
        if (p0 >= p1) return;
        const int64_t blocks = (row1 - row0 + R - 1) / R;
        const uint8_t* aItem = Kernel::kGather ? gathered + (row0 / kRowsPerItem) * itemBytes : g.a;
        const int64_t aStride = Kernel::kGather ? pad : kStride, aT0 = Kernel::kGather ? t0 : 0;
        thread_local std::vector<Acc> localAcc;
        thread_local std::vector<State> localSums;
        if (!chunked) {
          localAcc.resize(static_cast<size_t>(blocks));
          localSums.resize(static_cast<size_t>(blocks));
        }
        // The AVX2 kernel's rounding modes: toward zero while groups accumulate, nearest even (the
        // caller's mode with its rounding field cleared) while totals are added; the caller's
        // mode back when the item ends (nothing between is float arithmetic but the kernels').
        const unsigned saved = Kernel::kSplit ? _mm_getcsr() : 0;
        const unsigned nearest = saved & ~static_cast<unsigned>(_MM_ROUND_MASK), towardZero = nearest | _MM_ROUND_TOWARD_ZERO;
        if (Kernel::kSplit) _mm_setcsr(towardZero);
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t j0 = (ps + p) * width, columns = std::min(width, g.n - j0);
          Acc* acc = chunked ? accAll.data() + p * blocksTotal + (row0 / kRowsPerItem) * blocksPerItem : localAcc.data();
          State* sums = chunked ? sumAll.data() + p * blocksTotal + (row0 / kRowsPerItem) * blocksPerItem : localSums.data();
          if (!chunked) {
            std::memset(static_cast<void*>(acc), 0, sizeof(Acc) * blocks);
            std::memset(static_cast<void*>(sums), 0, sizeof(State) * blocks);
          }
          for (const Group* span = first; span != last;) {
            // A span of groups: up to one that ends an interval or a run, within kSpanBytes of B.
            const Group* end = span + 1;
            while (end != last && !(end[-1].flags & (kIntervalEnd | kRunEnd)) && (end->g1 - span->g0) * S <= Kernel::kSpanBytes) ++end;
            for (int64_t block = 0; block < blocks; ++block) {
              const int64_t i0 = row0 + block * R;
              // Rows past m read row m - 1 again (their results are never stored).
              int64_t rowOffset[R];
              for (int r = 0; r < R; ++r) rowOffset[r] = Kernel::kGather ? i0 + r - row0 : std::min(i0 + r, g.m - 1) * rowStride;
              Kernel::groups(g, runs, ta, span, end, aItem, rowOffset, aStride, aT0, packed + p * panelBytes, t0, i0, j0, acc[block], sums[block]);
            }
            const Group& closing = end[-1];
            if (Kernel::kSplit && (closing.flags & (kIntervalEnd | kRunEnd))) {
              _mm_setcsr(nearest);
              for (int64_t block = 0; block < blocks; ++block) Kernel::finish(g, runs, closing, row0 + block * R, j0, acc[block], sums[block]);
              _mm_setcsr(towardZero);
            }
            span = end;
          }
          if (!lastCut) continue;
          for (int64_t block = 0; block < blocks; ++block) {
            const int64_t i0 = row0 + block * R;
            const State& s = sums[block];
            for (int r = 0; r < R && i0 + r < row1; ++r) {
              float* out = g.c + (i0 + r) * g.n + j0;
              for (int q = 0; q < C && q * L < columns; ++q) std::memcpy(out + q * L, s.out[r][q], sizeof(float) * std::min<int64_t>(L, columns - q * L));
              if (anyBad)
                for (int64_t j = 0; j < columns; ++j)
                  if (rowBad[i0 + r] || colBad[j0 + j]) out[j] = std::numeric_limits<float>::quiet_NaN();
            }
          }
        }
        if (Kernel::kSplit) _mm_setcsr(saved);
      });
    }
  }
}

}  // namespace fast
#endif

// Whether any of `count` codes is NaN or Inf by the table (64 codes at a time where the format has
// at most 16 such codes: compared with each).
bool anyBad(const uint8_t* codes, int64_t count, const uint8_t (&bad)[256]) {
  uint8_t list[256];
  int listed = 0;
  for (int c = 0; c < 256; ++c)
    if (bad[c]) list[listed++] = static_cast<uint8_t>(c);
  if (listed == 0) return false;
  int64_t t = 0;
#ifdef OCTET_X86
  if (listed <= 16 && cpuHasAvx512Bw()) t = anyListedAvx512(codes, count, list, listed);
  else if (listed <= 16 && cpuHasAvx2()) t = anyListedAvx2(codes, count, list, listed);
  if (t < 0) return true;
#endif
  for (; t < count; ++t)
    if (bad[codes[t]]) return true;
  return false;
}

}  // namespace

// Below this many rows of A, packing B (9 bytes a code, each used once per row) costs more than
// a swapped product's transposition of C; from it on, neither matters.
constexpr int64_t kSwapRows = 256;

void alignedGemm(const AlignedGemmArgs& g, int threads) {
  if (g.m == 0 || g.n == 0) return;
  // Where B has more columns than A has rows, and A few rows (a convolution's forward with the
  // weights as A: 16-64 rows against thousands of pixels), the product runs swapped,
  // C^T = B^T A^T: the kernels pack their B side 9 bytes a code for every row of A to pass over,
  // so the narrower operand goes there. Every product and sum is the same (products commute, K's
  // order and groups are unchanged); a run's divisors apply in the contract's order (A's first:
  // colScaleFirst).
  if (g.n > g.m && g.m < kSwapRows && !g.colScaleFirst) {
    AlignedGemmArgs s = g;
    s.m = g.n;
    s.n = g.m;
    s.a = g.b;  // B, K x n row-major, is B^T K-major
    s.aKMajor = true;
    static thread_local std::vector<uint8_t> aT;
    if (g.aKMajor) {
      s.b = g.a;  // A, K x m, is A^T row-major
    } else {
      aT.resize(static_cast<size_t>(g.m * g.k));
      for (int64_t i = 0; i < g.m; ++i)  // m < n bytes by k: small beside the product
        for (int64_t t = 0; t < g.k; ++t) aT[t * g.m + i] = g.a[i * g.k + t];
      s.b = aT.data();
    }
    s.ta = g.tb;
    s.tb = g.ta;
    s.colScaleFirst = true;
    if (g.scaled) {
      s.blocks.scalesA = g.blocks.scalesB;
      s.blocks.blockKA = g.blocks.blockKB;
      s.blocks.blockRowsA = g.blocks.blockRowsB;
      s.blocks.scalesB = g.blocks.scalesA;
      s.blocks.blockKB = g.blocks.blockKA;
      s.blocks.blockRowsB = g.blocks.blockRowsA;
    }
    static thread_local std::vector<float> cT;  // kept between calls: no fresh pages every time
    cT.resize(static_cast<size_t>(g.m * g.n));
    s.c = cT.data();
    alignedGemm(s, threads);
    // Back into C 16 columns at a time: their 16 rows of C^T (m < 256 floats each) stay in L1
    // while each row of C gets a cache line.
    const float* swapped = cT.data();  // this thread's: the workers get its address
    parallelFor((g.n + 15) / 16, g.m * g.n < (1 << 16) ? 1 : threads, [&](int64_t block) {
      const int64_t j0 = block * 16, j1 = std::min(g.n, j0 + 16);
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t j = j0; j < j1; ++j) g.c[i * g.n + j] = swapped[j * g.m + i];
    });
    return;
  }
  // Rows and columns with a NaN or Inf code come out NaN (looked for row by row only where there is one).
  std::vector<uint8_t> rowBad(static_cast<size_t>(g.m), 0), colBad(static_cast<size_t>(g.n), 0);
  const bool badInB = anyBad(g.b, g.k * g.n, g.tb.bad), badInA = anyBad(g.a, g.m * g.k, g.ta.bad);
  if (badInB)
    for (int64_t t = 0; t < g.k; ++t)
      for (int64_t j = 0; j < g.n; ++j) colBad[j] |= g.tb.bad[g.b[t * g.n + j]];
  if (badInA) {
    if (g.aKMajor) {
      for (int64_t t = 0; t < g.k; ++t)
        for (int64_t i = 0; i < g.m; ++i) rowBad[i] |= g.ta.bad[g.a[t * g.m + i]];
    } else {
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t t = 0; t < g.k; ++t) rowBad[i] |= g.ta.bad[g.a[i * g.k + t]];
    }
  }
  const Runs runs = runsOf(g, threads);
#ifdef OCTET_X86
  const bool anyNaN = badInA || badInB;  // some row or column comes out NaN
  const fast::Tables ta = fast::tablesOf(g.ta), tb = fast::tablesOf(g.tb);  // once, for every kernel below
  if (fast::applies(g)) {
    if (g.n <= 16) fast::gemm<fast::Wide<8, 1>>(g, ta, tb, runs, rowBad, colBad, anyNaN, threads);
    else if (g.n <= 32) fast::gemm<fast::Wide<4, 2>>(g, ta, tb, runs, rowBad, colBad, anyNaN, threads);
    // Wider: one row by 64 columns with one accumulator per 16 (onesum512) where its counts stay
    // exact and A's sign is one bit of its codes (as on AVX2; OCTET_ALIGNED_TWO_SUMS=1 runs the
    // two-accumulator tile in its place).
    else if (!std::getenv("OCTET_ALIGNED_TWO_SUMS") && fast::onesum::applies(g, ta, tb) && fast::signBit(ta) >= 0)
      fast::gemm<fast::OneSum512>(g, ta, tb, runs, rowBad, colBad, anyNaN, threads);
    else fast::gemm<fast::Wide<2, 4>>(g, ta, tb, runs, rowBad, colBad, anyNaN, threads);
    return;
  }
  if (fast::appliesAvx2(g, ta)) {
    // One row by 32 columns where B is that wide: the exponent pass takes 32 columns a vector and A's
    // code is looked up once per 8 multiply-adds (1.1-1.25x the 3 x 16 tile's speed, 2026-12-07),
    // and with one accumulator per 8 columns (onesum: 4 multiply-adds, 1.2x again) wherever the
    // formats' low exponents keep its counts exact (every FP8, FP6 and FP4 format Octet names;
    // OCTET_ALIGNED_TWO_SUMS=1 runs the two-accumulator tile in its place, as tests do); one row
    // by 64 columns where B has 64 or more (half the per-product lookups and exponent broadcasts
    // per column: 1.05-1.6x the 1 x 32 tile on the bench's shapes, one thread, 2026-12-07).
    if (g.n <= 8) fast::gemm<fast::Narrow<6, 1>>(g, ta, tb, runs, rowBad, colBad, anyNaN, threads);
    else if (g.n <= 16) fast::gemm<fast::Narrow<3, 2>>(g, ta, tb, runs, rowBad, colBad, anyNaN, threads);
    else if (!std::getenv("OCTET_ALIGNED_TWO_SUMS") && fast::onesum::applies(g, ta, tb))
      (g.n >= 64 ? fast::gemm<fast::OneSum<64>> : fast::gemm<fast::OneSum<32>>)(g, ta, tb, runs, rowBad, colBad, anyNaN, threads);
    else fast::gemm<fast::Narrow<1, 4>>(g, ta, tb, runs, rowBad, colBad, anyNaN, threads);
    return;
  }
#endif
  // The other parameters: A's rows as rows, then int32 lanes (groups of at most 256 products of
  // at most 8-bit codes keep |sum| < 2^24, which their bit lengths by float conversion need) or
  // scalar code.
  std::vector<uint8_t> transposed;
  const uint8_t* a = g.a;
  if (g.aKMajor) {
    transposed.resize(static_cast<size_t>(g.m * g.k));
    for (int64_t t = 0; t < g.k; ++t)
      for (int64_t i = 0; i < g.m; ++i) transposed[i * g.k + t] = g.a[t * g.m + i];
    a = transposed.data();
  }
#ifdef OCTET_X86
  const bool lanes = g.group <= 256 && g.keep <= 14 && g.significant <= 24;
  // (AVX2 scales by 2^floor(accExp / 2) and the rest: exponent fields within +-60 keep both in range.)
  const bool wide = lanes && cpuHasAvx512(), avx2 = lanes && !wide && cpuHasAvx2() && exponentsWithin(g.ta, 60) && exponentsWithin(g.tb, 60);
#else
  const bool wide = false, avx2 = false;
#endif
  std::vector<int8_t> sigB, expB;
  if (wide || avx2) {
    sigB.assign(static_cast<size_t>(g.k * g.n + 16), 0);
    expB.assign(static_cast<size_t>(g.k * g.n + 16), 0);
    parallelFor(g.k, g.k * g.n < 65536 ? 1 : threads, [&](int64_t t) {
      for (int64_t j = 0; j < g.n; ++j) {
        const uint8_t c = g.b[t * g.n + j];
        sigB[t * g.n + j] = g.tb.sig[c];
        expB[t * g.n + j] = g.tb.exp[c];
      }
    });
  }
  const int64_t blocks = (g.n + 15) / 16;
  parallelFor(g.m * blocks, g.m * g.n * g.k < (1 << 16) ? 1 : threads, [&](int64_t item) {
    const int64_t i = item / blocks, j0 = (item % blocks) * 16, j1 = std::min(g.n, j0 + 16);
    const uint8_t* arow = a + i * g.k;
    float* out = g.c + i * g.n;
    float c[16] = {0};
    for (int64_t run = 0; run < runs.count; ++run) {
      const int64_t k0 = run ? runs.ends[run - 1] : 0, k1 = runs.ends[run];
      float totals[16];
#ifdef OCTET_X86
      if (wide) {
        runTile16(g, arow, sigB.data(), expB.data(), j0, k0, k1, totals);
      } else if (avx2) {
        runTile8Avx2(g, arow, sigB.data(), expB.data(), j0, k0, k1, totals);
        if (j1 > j0 + 8) runTile8Avx2(g, arow, sigB.data(), expB.data(), j0 + 8, k0, k1, totals + 8);
      } else
#endif
        for (int64_t j = j0; j < j1; ++j) totals[j - j0] = runScalar(g, arow, j, k0, k1);
      for (int64_t j = j0; j < j1; ++j) c[j - j0] = addRun(g, runs, run, i, j, c[j - j0], totals[j - j0]);
    }
    for (int64_t j = j0; j < j1; ++j) out[j] = rowBad[i] || colBad[j] ? std::numeric_limits<float>::quiet_NaN() : c[j - j0];
  });
}

}  // namespace octet
