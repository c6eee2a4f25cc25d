// The format codec in C++: the same contract as src/formats/codec.ts, bit for bit.
#include "codec.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "codec_core.h"
#include "cpu.h"
#include "elementwise.h"

#include "parallel.h"

namespace octet {
namespace {

using codec_core::encodeOne;

// Parameters are copied to a local first: stores through a byte pointer may alias anything, and
// would otherwise force a reload of every parameter per element and block vectorization.
template <int kRounding, typename Code>
void encodeRange(const uint32_t* __restrict in, Code* __restrict out, int64_t begin, int64_t end,
                 const CodecParams& params) {
  const CodecParams p = params;
  const uint32_t first = p.counterOffset + static_cast<uint32_t>(begin);
  const int32_t count = static_cast<int32_t>(end - begin);
  const uint32_t* src = in + begin;
  Code* dst = out + begin;
  for (int32_t i = 0; i < count; ++i) dst[i] = static_cast<Code>(encodeOne<kRounding>(src[i], p, first + i));
}

template <int kRounding>
void quantizeRange(const uint32_t* __restrict in, float* __restrict out, int64_t begin, int64_t end,
                   const CodecParams& params, const float* __restrict lut) {
  const CodecParams p = params;
  const uint32_t first = p.counterOffset + static_cast<uint32_t>(begin);
  const int32_t count = static_cast<int32_t>(end - begin);
  const uint32_t* src = in + begin;
  if (lut) {
    float* dst = out + begin;
    for (int32_t i = 0; i < count; ++i) dst[i] = lut[encodeOne<kRounding>(src[i], p, first + i)];
  } else {
    uint32_t* dst = reinterpret_cast<uint32_t*>(out) + begin;
    for (int32_t i = 0; i < count; ++i) dst[i] = encodeOne<kRounding>(src[i], p, first + i);
  }
}


// The vector scaled encodes' last e - i (< 16) elements: scaled into a small buffer, encoded by
// the scalar loop (element i + t drawing with counter p.counterOffset + i + t) and counted; then
// the three counts stored.
template <int kRounding, typename Code>
void encodeScaledTail(const float* in, float scale, Code* out, int64_t i, int64_t e, const CodecParams& p, uint32_t maxBits,
                      uint32_t magnitudeMask, int64_t overflow, int64_t nonzero, int64_t underflow, int64_t counts[3]) {
  // (Bit patterns in a uint32_t array: encodeRange reads uint32_t, and reading a float array
  // through that type would break the aliasing rules, which let the compiler move the reads
  // before the stores.)
  uint32_t tail[16];
  const int64_t rest = e - i;
  for (int64_t t = 0; t < rest; ++t) {
    const float v = in[i + t] * scale;
    std::memcpy(&tail[t], &v, 4);
    overflow += (tail[t] & 0x7fffffffu) > maxBits;
  }
  if (rest > 0) {
    CodecParams shifted = p;
    shifted.counterOffset = p.counterOffset + static_cast<uint32_t>(i);
    encodeRange<kRounding, Code>(tail, out + i, 0, rest, shifted);
    for (int64_t t = 0; t < rest; ++t) {
      uint32_t bits;
      std::memcpy(&bits, in + i + t, 4);
      const bool isNonzero = (bits & 0x7fffffffu) != 0;
      nonzero += isNonzero;
      underflow += isNonzero && (uint32_t(out[i + t]) & magnitudeMask) == 0;
    }
  }
  counts[0] = overflow;
  counts[1] = nonzero;
  counts[2] = underflow;
}

#ifdef OCTET_X86
#define OCTET_AVX2 __attribute__((target("avx2")))
using codec_core::encode16;
using codec_core::NormalRounding;
using codec_core::normalRounding;
using codec_core::roundNormal16;
constexpr uint32_t kGolden = 0x9e3779b9u;
template <typename Code>
OCTET_WIDE inline void store16(Code* dst, __m512i codes) {
  if constexpr (sizeof(Code) == 1) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(codes));
  } else if constexpr (sizeof(Code) == 2) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(codes));
  } else {
    _mm512_storeu_si512(dst, codes);
  }
}

// The stochastic stream of a codec call on 16 lanes: its key, and lane l's Weyl step
// (counter + l) * golden + key for the element at `counter`, formed with one addition.
struct DrawStream {
  __m512i key, laneWeyl;
  OCTET_WIDE explicit DrawStream(const CodecParams& p)
      : key(_mm512_set1_epi32(static_cast<int>(p.key))),
        laneWeyl(_mm512_add_epi32(_mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                     _mm512_set1_epi32(static_cast<int>(kGolden))),
                                  key)) {}
  OCTET_WIDE __m512i weylAt(uint32_t counter) const {
    return _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(counter * kGolden)), laneWeyl);
  }
};

// F's code of rounded float32 bits in F's normal range (or zero): the exponent rebased from
// float32's bias to F's, the mantissa shifted down, the sign moved to F's sign bit.
OCTET_WIDE inline __m512i codeOfNormal(__m512i u, __m512i rounded, const NormalRounding& r, __m512i rebias, __m512i signMask) {
  const __m512i magnitude = _mm512_and_si512(rounded, r.absMask);
  const __mmask16 nonzero = _mm512_test_epi32_mask(magnitude, magnitude);
  const __m512i code = _mm512_maskz_sub_epi32(nonzero, _mm512_srlv_epi32(magnitude, r.drop), rebias);
  return _mm512_add_epi32(code, _mm512_and_si512(_mm512_srai_epi32(u, 31), signMask));
}

// The vector encode of one call: 16 elements at a time by the normal-range rounding when every
// lane allows it (when 23 - m > 0), else by the full rounding of encode16.
template <int kRounding>
struct WideEncoder {
  const CodecParams p;  // a local copy: stores through byte pointers may alias a reference's target
  const DrawStream stream;
  const bool normalPath;
  const NormalRounding r;
  const __m512i rebias, signMask;

  OCTET_WIDE explicit WideEncoder(const CodecParams& params)
      : p(params),
        stream(p),
        normalPath(p.mantissaBits < 23),
        r(normalRounding(p)),
        rebias(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(127 - p.bias) << p.mantissaBits))),
        signMask(_mm512_set1_epi32(static_cast<int>(p.signMask))) {}

  // Codes of the 16 float32 bit patterns u of elements i .. i + 15.
  OCTET_WIDE __m512i codes(__m512i u, int64_t i) const {
    const __m512i weyl = stream.weylAt(p.counterOffset + static_cast<uint32_t>(i));
    __mmask16 ok = 0;
    const __m512i rounded = normalPath ? roundNormal16<kRounding>(u, r, stream.key, weyl, ok) : u;
    return ok == 0xffff ? codeOfNormal(u, rounded, r, rebias, signMask) : encode16<kRounding>(u, p, stream.key, weyl);
  }
};

template <int kRounding, typename Code>
OCTET_WIDE void encodeWide(const uint32_t* in, Code* out, int64_t b, int64_t e, const CodecParams& params) {
  const WideEncoder<kRounding> encoder(params);
  int64_t i = b;
  for (; i + 16 <= e; i += 16) store16(out + i, encoder.codes(_mm512_loadu_si512(in + i), i));
  encodeRange<kRounding, Code>(in, out, i, e, encoder.p);
}

// The scaled encode of a GEMM operand in one pass, 16 lanes at a time: v = fl32(x * scale) is
// encoded as encodeWide would encode it, and counted: overflow (|v| > maxBits as magnitudes'
// bits, NaN included), nonzero inputs, and nonzero inputs whose code has no magnitude bits.
// Element i draws with counter p.counterOffset + i.
template <int kRounding, typename Code>
OCTET_WIDE void encodeScaledWide(const float* in, float scale, Code* out, int64_t b, int64_t e, const CodecParams& params,
                                 uint32_t maxBits, uint32_t magnitudeMask, int64_t counts[3]) {
  const WideEncoder<kRounding> encoder(params);
  const CodecParams& p = encoder.p;
  const __m512 s = _mm512_set1_ps(scale);
  const __m512i absMask = _mm512_set1_epi32(0x7fffffff);
  const __m512i maxV = _mm512_set1_epi32(static_cast<int>(maxBits));
  const __m512i magnitude = _mm512_set1_epi32(static_cast<int>(magnitudeMask));
  int64_t overflow = 0, nonzero = 0, underflow = 0;
  int64_t i = b;
  for (; i + 16 <= e; i += 16) {
    const __m512i x = _mm512_loadu_si512(in + i);
    const __m512i u = _mm512_castps_si512(_mm512_mul_ps(_mm512_castsi512_ps(x), s));
    overflow += __builtin_popcount(_mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absMask), maxV));
    const __m512i codes = encoder.codes(u, i);
    store16(out + i, codes);
    const __mmask16 nz = _mm512_test_epi32_mask(x, absMask);
    nonzero += __builtin_popcount(nz);
    underflow += __builtin_popcount(nz & _mm512_testn_epi32_mask(codes, magnitude));
  }
  encodeScaledTail<kRounding, Code>(in, scale, out, i, e, p, maxBits, magnitudeMask, overflow, nonzero, underflow, counts);
}

template <int kRounding>
OCTET_WIDE void quantizeWide(const uint32_t* in, float* out, int64_t b, int64_t e, const CodecParams& params,
                             const float* lut) {
  const CodecParams p = params;
  const DrawStream stream(p);
  const __m512i key = stream.key;
  const bool normalPath = p.mantissaBits < 23;
  const NormalRounding r = normalRounding(p);
  int64_t i = b;
  for (; i + 16 <= e; i += 16) {
    const __m512i weyl = stream.weylAt(p.counterOffset + static_cast<uint32_t>(i));
    const __m512i u = _mm512_loadu_si512(in + i);
    __mmask16 ok = 0;
    const __m512i rounded = normalPath ? roundNormal16<kRounding>(u, r, key, weyl, ok) : u;
    if (ok == 0xffff) {
      // In F's normal range the rounded float32 is the value itself (zeros keep their sign).
      _mm512_storeu_si512(out + i, rounded);
      continue;
    }
    const __m512i codes = encode16<kRounding>(u, p, key, weyl);
    if (lut) {
      _mm512_storeu_ps(out + i, _mm512_i32gather_ps(codes, lut, 4));
    } else {
      _mm512_storeu_si512(out + i, codes);
    }
  }
  quantizeRange<kRounding>(in, out, i, e, p, lut);
}

// ---- AVX2 (CPUs without AVX-512): the same encoder on 8 lanes ----
using codec_core::encode8;
using codec_core::NormalRounding8;
using codec_core::normalRounding8;
using codec_core::roundNormal8;

// 8 codes (each below 2^16) stored as Code.
template <typename Code>
OCTET_AVX2_INLINE void store8(Code* dst, __m256i codes) {
  if constexpr (sizeof(Code) == 4) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), codes);
  } else {
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(codes), _mm256_extracti128_si256(codes, 1));
    if constexpr (sizeof(Code) == 2) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), words);
    } else {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_packus_epi16(words, words));
    }
  }
}

struct Encoder8Base {
  const CodecParams p;  // a local copy: stores through byte pointers may alias a reference's target
  const __m256i key, laneWeyl;
  const bool normalPath;
  const NormalRounding8 r;
  const __m256i rebias, signMask;

  OCTET_AVX2 explicit Encoder8Base(const CodecParams& params)
      : p(params),
        key(_mm256_set1_epi32(static_cast<int>(p.key))),
        laneWeyl(_mm256_add_epi32(_mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(kGolden))), key)),
        normalPath(p.mantissaBits < 23),
        r(normalRounding8(p)),
        rebias(_mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(127 - p.bias) << p.mantissaBits))),
        signMask(_mm256_set1_epi32(static_cast<int>(p.signMask))) {}
  // Lane l's Weyl step for element i + l: (counterOffset + i + l) * golden + key.
  OCTET_AVX2_INLINE __m256i weylAt(int64_t i) const {
    return _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>((p.counterOffset + static_cast<uint32_t>(i)) * kGolden)), laneWeyl);
  }
};

// WideEncoder on 8 lanes: the normal-range rounding when every lane allows it, else encode8.
template <int kRounding>
struct Encoder8 : Encoder8Base {
  using Encoder8Base::Encoder8Base;
  // Codes of the 8 float32 bit patterns u of elements i .. i + 7.
  OCTET_AVX2_INLINE __m256i codes(__m256i u, int64_t i) const {
    const __m256i weyl = weylAt(i);
    if (normalPath) {
      __m256i ok;
      const __m256i rounded = roundNormal8<kRounding>(u, r, key, weyl, ok);
      if (_mm256_movemask_ps(_mm256_castsi256_ps(ok)) == 0xff) {
        // codeOfNormal on 8 lanes: exponent rebased, mantissa shifted down, sign moved.
        const __m256i magnitude = _mm256_and_si256(rounded, r.absMask);
        const __m256i zero = _mm256_cmpeq_epi32(magnitude, _mm256_setzero_si256());
        const __m256i code = _mm256_andnot_si256(zero, _mm256_sub_epi32(_mm256_srlv_epi32(magnitude, r.drop), rebias));
        return _mm256_add_epi32(code, _mm256_and_si256(_mm256_srai_epi32(u, 31), signMask));
      }
    }
    return encode8<kRounding>(u, p, key, weyl);
  }
};

template <int kRounding, typename Code>
OCTET_AVX2 void encodeAvx2(const uint32_t* in, Code* out, int64_t b, int64_t e, const CodecParams& params) {
  const Encoder8<kRounding> encoder(params);
  int64_t i = b;
  for (; i + 8 <= e; i += 8) store8(out + i, encoder.codes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i)), i));
  encodeRange<kRounding, Code>(in, out, i, e, encoder.p);
}

template <int kRounding>
OCTET_AVX2 void quantizeAvx2(const uint32_t* in, float* out, int64_t b, int64_t e, const CodecParams& params, const float* lut) {
  const Encoder8<kRounding> encoder(params);
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    const __m256i weyl = encoder.weylAt(i);
    __m256i ok = _mm256_setzero_si256();
    const __m256i rounded = encoder.normalPath ? roundNormal8<kRounding>(u, encoder.r, encoder.key, weyl, ok) : u;
    if (_mm256_movemask_ps(_mm256_castsi256_ps(ok)) == 0xff) {
      // In F's normal range the rounded float32 is the value itself (zeros keep their sign).
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), rounded);
      continue;
    }
    const __m256i codes = encode8<kRounding>(u, encoder.p, encoder.key, weyl);
    if (lut) {
      _mm256_storeu_ps(out + i, _mm256_i32gather_ps(lut, codes, 4));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), codes);
    }
  }
  quantizeRange<kRounding>(in, out, i, e, encoder.p, lut);
}

// encodeScaledWide on 8 lanes: scale, encode and count in one pass.
template <int kRounding, typename Code>
OCTET_AVX2 void encodeScaledAvx2(const float* in, float scale, Code* out, int64_t b, int64_t e, const CodecParams& params,
                                 uint32_t maxBits, uint32_t magnitudeMask, int64_t counts[3]) {
  const Encoder8<kRounding> encoder(params);
  const CodecParams& p = encoder.p;
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i absMask = _mm256_set1_epi32(0x7fffffff);
  const __m256i maxV = _mm256_set1_epi32(static_cast<int>(maxBits));
  const __m256i magnitude = _mm256_set1_epi32(static_cast<int>(magnitudeMask));
  const __m256i zero = _mm256_setzero_si256();
  int64_t overflow = 0, nonzero = 0, underflow = 0;
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    const __m256i u = _mm256_castps_si256(_mm256_mul_ps(_mm256_castsi256_ps(x), s));
    overflow += __builtin_popcount(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_and_si256(u, absMask), maxV))));
    const __m256i codes = encoder.codes(u, i);
    store8(out + i, codes);
    const __m256i nz = _mm256_xor_si256(_mm256_cmpeq_epi32(_mm256_and_si256(x, absMask), zero), _mm256_set1_epi32(-1));
    nonzero += __builtin_popcount(_mm256_movemask_ps(_mm256_castsi256_ps(nz)));
    const __m256i noMagnitude = _mm256_cmpeq_epi32(_mm256_and_si256(codes, magnitude), zero);
    underflow += __builtin_popcount(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_and_si256(nz, noMagnitude))));
  }
  encodeScaledTail<kRounding, Code>(in, scale, out, i, e, p, maxBits, magnitudeMask, overflow, nonzero, underflow, counts);
}
#else
#define OCTET_AVX2
template <int kRounding, typename Code>
void encodeAvx2(const uint32_t* in, Code* out, int64_t b, int64_t e, const CodecParams& p) {
  encodeRange<kRounding, Code>(in, out, b, e, p);
}
template <int kRounding>
void quantizeAvx2(const uint32_t* in, float* out, int64_t b, int64_t e, const CodecParams& p, const float* lut) {
  quantizeRange<kRounding>(in, out, b, e, p, lut);
}
template <int kRounding, typename Code>
void encodeScaledAvx2(const float*, float, Code*, int64_t, int64_t, const CodecParams&, uint32_t, uint32_t, int64_t[3]) {}
template <int kRounding, typename Code>
void encodeScaledWide(const float*, float, Code*, int64_t, int64_t, const CodecParams&, uint32_t, uint32_t, int64_t[3]) {}
template <int kRounding, typename Code>
void encodeWide(const uint32_t* in, Code* out, int64_t b, int64_t e, const CodecParams& p) {
  encodeRange<kRounding, Code>(in, out, b, e, p);
}
template <int kRounding>
void quantizeWide(const uint32_t* in, float* out, int64_t b, int64_t e, const CodecParams& p, const float* lut) {
  quantizeRange<kRounding>(in, out, b, e, p, lut);
}
#endif

enum class Isa { kWide, kAvx2, kPortable };

Isa isa() {
  static const Isa chosen = [] {
#ifdef OCTET_X86
    __builtin_cpu_init();
    const char* forced = std::getenv("OCTET_CODEC_KERNEL");
    const std::string want = forced ? forced : "";
    if ((want.empty() || want == "avx512") && __builtin_cpu_supports("avx512f")) return Isa::kWide;
    if (want == "portable") return Isa::kPortable;
    if (__builtin_cpu_supports("avx2")) return Isa::kAvx2;
#endif
    return Isa::kPortable;
  }();
  return chosen;
}

template <int kRounding, typename Code>
void encodeDispatch(const uint32_t* in, Code* out, int64_t b, int64_t e, const CodecParams& p) {
  switch (isa()) {
    case Isa::kWide: encodeWide<kRounding, Code>(in, out, b, e, p); break;
    case Isa::kAvx2: encodeAvx2<kRounding, Code>(in, out, b, e, p); break;
    default: encodeRange<kRounding, Code>(in, out, b, e, p);
  }
}

template <int kRounding>
void quantizeDispatch(const uint32_t* in, float* out, int64_t b, int64_t e, const CodecParams& p, const float* lut) {
  switch (isa()) {
    case Isa::kWide: quantizeWide<kRounding>(in, out, b, e, p, lut); break;
    case Isa::kAvx2: quantizeAvx2<kRounding>(in, out, b, e, p, lut); break;
    default: quantizeRange<kRounding>(in, out, b, e, p, lut);
  }
}

constexpr int64_t kChunk = 1 << 15;

template <typename Fn>
void chunked(int64_t n, int threads, Fn fn) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  parallelFor(chunks, threads, [&](int64_t c) { fn(c * kChunk, c + 1 == chunks ? n : (c + 1) * kChunk); });
}

template <typename Code>
void encodeTyped(const float* in, Code* out, int64_t n, const CodecParams& p, int threads) {
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(in);
  chunked(n, threads, [&](int64_t b, int64_t e) {
    switch (p.rounding) {
      case kNearest: encodeDispatch<kNearest, Code>(bits, out, b, e, p); break;
      case kStochastic: encodeDispatch<kStochastic, Code>(bits, out, b, e, p); break;
      default: encodeDispatch<kTowardZero, Code>(bits, out, b, e, p);
    }
  });
}

// Without AVX-512, the block's scaled copy and overflow count come from scaleCountOverflow
// (native/elementwise.cc), and its nonzero / underflow counts (a nonzero input whose code has no
// magnitude bits) from this plain loop, built for the baseline and for AVX2. Blocks hold at most
// kChunk elements, so 32-bit counters (which vectorize) cannot overflow.
template <typename Code>
inline void countBlock(const uint32_t* in, const Code* codes, int64_t n, uint32_t mask, int64_t& nonzero, int64_t& underflow) {
  uint32_t nz = 0, uf = 0;
  const int32_t count = static_cast<int32_t>(n);
  for (int32_t i = 0; i < count; ++i) {
    const uint32_t isNonzero = (in[i] & 0x7fffffffu) != 0 ? 1u : 0u;
    nz += isNonzero;
    uf += isNonzero & ((uint32_t(codes[i]) & mask) == 0 ? 1u : 0u);
  }
  nonzero = nz;
  underflow = uf;
}
template <typename Code>
OCTET_TARGET_AVX2 void countBlockAvx2(const uint32_t* in, const Code* codes, int64_t n, uint32_t mask, int64_t& nonzero, int64_t& underflow) {
  countBlock(in, codes, n, mask, nonzero, underflow);
}

template <typename Code>
void encodeScaledTyped(const float* in, float scale, Code* out, int64_t n, const CodecParams& p, float maxFinite, uint32_t mask,
                       int64_t counts[3], int threads) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<int64_t> perChunk(3 * chunks, 0);
  uint32_t maxBits;
  std::memcpy(&maxBits, &maxFinite, 4);
  maxBits &= 0x7fffffffu;
  const bool wide = isa() == Isa::kWide, avx2 = cpuHasAvx2();
  parallelFor(chunks, threads, [&](int64_t c) {
    const int64_t b = c * kChunk, e = c + 1 == chunks ? n : (c + 1) * kChunk;
    int64_t* chunkCounts = &perChunk[3 * c];
    if (wide) {
      switch (p.rounding) {
        case kNearest: encodeScaledWide<kNearest, Code>(in, scale, out, b, e, p, maxBits, mask, chunkCounts); break;
        case kStochastic: encodeScaledWide<kStochastic, Code>(in, scale, out, b, e, p, maxBits, mask, chunkCounts); break;
        default: encodeScaledWide<kTowardZero, Code>(in, scale, out, b, e, p, maxBits, mask, chunkCounts);
      }
      return;
    }
    if (isa() == Isa::kAvx2) {
      switch (p.rounding) {
        case kNearest: encodeScaledAvx2<kNearest, Code>(in, scale, out, b, e, p, maxBits, mask, chunkCounts); break;
        case kStochastic: encodeScaledAvx2<kStochastic, Code>(in, scale, out, b, e, p, maxBits, mask, chunkCounts); break;
        default: encodeScaledAvx2<kTowardZero, Code>(in, scale, out, b, e, p, maxBits, mask, chunkCounts);
      }
      return;
    }
    thread_local std::vector<float> scaled;
    scaled.resize(kChunk);
    chunkCounts[0] = scaleCountOverflow(in + b, scale, scaled.data(), e - b, maxFinite, 1);
    // The block's codes, with the stream counter of element i still counterOffset + i.
    CodecParams shifted = p;
    shifted.counterOffset = p.counterOffset + static_cast<uint32_t>(b);
    const uint32_t* bits = reinterpret_cast<const uint32_t*>(scaled.data());
    switch (p.rounding) {
      case kNearest: encodeDispatch<kNearest, Code>(bits, out + b, 0, e - b, shifted); break;
      case kStochastic: encodeDispatch<kStochastic, Code>(bits, out + b, 0, e - b, shifted); break;
      default: encodeDispatch<kTowardZero, Code>(bits, out + b, 0, e - b, shifted);
    }
    const uint32_t* inBits = reinterpret_cast<const uint32_t*>(in + b);
    if (avx2) countBlockAvx2(inBits, out + b, e - b, mask, chunkCounts[1], chunkCounts[2]);
    else countBlock(inBits, out + b, e - b, mask, chunkCounts[1], chunkCounts[2]);
  });
  counts[0] = counts[1] = counts[2] = 0;
  for (int64_t c = 0; c < chunks; ++c) for (int k = 0; k < 3; ++k) counts[k] += perChunk[3 * c + k];
}

}  // namespace

void encodeScaled(const float* in, float scale, void* out, int outBytes, int64_t n, const CodecParams& p, float maxFinite,
                  uint32_t magnitudeMask, int64_t counts[3], int threads) {
  if (outBytes == 1) encodeScaledTyped(in, scale, static_cast<uint8_t*>(out), n, p, maxFinite, magnitudeMask, counts, threads);
  else if (outBytes == 2) encodeScaledTyped(in, scale, static_cast<uint16_t*>(out), n, p, maxFinite, magnitudeMask, counts, threads);
  else encodeScaledTyped(in, scale, static_cast<uint32_t*>(out), n, p, maxFinite, magnitudeMask, counts, threads);
}

void encode(const float* in, void* out, int outBytes, int64_t n, const CodecParams& p, int threads) {
  if (outBytes == 1) encodeTyped(in, static_cast<uint8_t*>(out), n, p, threads);
  else if (outBytes == 2) encodeTyped(in, static_cast<uint16_t*>(out), n, p, threads);
  else encodeTyped(in, static_cast<uint32_t*>(out), n, p, threads);
}

void quantize(const float* in, float* out, int64_t n, const CodecParams& p, const float* lut, int threads) {
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(in);
  chunked(n, threads, [&](int64_t b, int64_t e) {
    switch (p.rounding) {
      case kNearest: quantizeDispatch<kNearest>(bits, out, b, e, p, lut); break;
      case kStochastic: quantizeDispatch<kStochastic>(bits, out, b, e, p, lut); break;
      default: quantizeDispatch<kTowardZero>(bits, out, b, e, p, lut);
    }
  });
}

void decode(const void* in, int inBytes, float* out, int64_t n, const float* lut, int threads) {
  chunked(n, threads, [&](int64_t b, int64_t e) {
    if (inBytes == 1) {
      const uint8_t* c = static_cast<const uint8_t*>(in);
      for (int64_t i = b; i < e; ++i) out[i] = lut[c[i]];
    } else if (inBytes == 2) {
      const uint16_t* c = static_cast<const uint16_t*>(in);
      for (int64_t i = b; i < e; ++i) out[i] = lut[c[i]];
    } else {
      std::memcpy(out + b, static_cast<const uint32_t*>(in) + b, static_cast<size_t>(e - b) * 4);
    }
  });
}

}  // namespace octet
