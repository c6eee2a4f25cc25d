// Format codec: float32 <-> codes of any format record, with nearest-even, stochastic and
// toward-zero rounding. The contract is written in src/formats/codec.ts; this is its fast path
// and must return the same bits. Parameters arrive precomputed from TypeScript.
#pragma once
#include <cstdint>

namespace octet {

constexpr int kNearest = 0;
constexpr int kStochastic = 1;
constexpr int kTowardZero = 2;

struct CodecParams {
  int32_t mantissaBits;
  int32_t emin;
  int32_t bias;
  uint32_t signMask;
  int32_t maxBiasedExponent;
  int32_t maxMantissaAtTop;
  uint32_t nanCode;
  uint32_t infResult;       // code for ±Inf inputs, before the sign
  uint32_t finiteOverflow;  // code for a finite overflow, before the sign
  uint32_t subnormalsKept;  // 1 keeps subnormal results, 0 flushes them to a signed zero
  uint32_t signedZero;      // 1: a zero result keeps the input's sign; 0: no -0 (fnuz formats)
  uint32_t signedNaN;       // 1: a NaN input's sign goes onto nanCode; 0: nanCode as it is
  int32_t rounding;
  uint32_t key;            // stochastic stream key, from seedKey(seed)
  uint32_t counterOffset;  // counter of element 0
};

// out: 1, 2 or 4 bytes per code.
void encode(const float* in, void* out, int outBytes, int64_t n, const CodecParams& p, int threads);
// lut: value of every code (formats of at most 16 bits); null for 32-bit formats (bits copied).
void quantize(const float* in, float* out, int64_t n, const CodecParams& p, const float* lut, int threads);
void decode(const void* in, int inBytes, float* out, int64_t n, const float* lut, int threads);

// Quantizing a GEMM operand in one pass: codes of fl32(in[i] * scale), with counts of scaled
// values beyond maxFinite (or NaN), of nonzero inputs, and of nonzero inputs whose code has zero
// magnitude bits (magnitudeMask). counts: [overflow, nonzero, underflow].
void encodeScaled(const float* in, float scale, void* out, int outBytes, int64_t n, const CodecParams& p, float maxFinite,
                  uint32_t magnitudeMask, int64_t counts[3], int threads);

}  // namespace octet
