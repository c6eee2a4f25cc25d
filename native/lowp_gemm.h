// Low-precision GEMM with an emulated accumulator: C = op(A) op(B) where every product is added
// to a running sum that is rounded to a format F after each addition (optionally in chunks).
// The contract is written in src/kernels/lowp_gemm.ts; this kernel returns exactly its bits.
#pragma once
#include <cstdint>
#include <vector>

#include "codec.h"
#include "gemm.h"

namespace octet {

struct LowpGemmArgs {
  bool transA, transB;
  int64_t m, n, k;
  const float* a;  // decoded op(A) as stored: m x k, or k x m when transA
  const float* b;  // decoded op(B) as stored: k x n, or n x k when transB
  // Optional one-byte codes instead of a (or b), decoded through their tables while packing.
  const uint8_t* aCodes = nullptr;
  const float* aLut = nullptr;
  bool aIsE5M2 = false;  // A's codes are E5M2: rows decode 16 at a time (see sources.h)
  const uint8_t* bCodes = nullptr;
  const float* bLut = nullptr;
  bool bIsE5M2 = false;  // B's codes are E5M2: rows decode 16 at a time (see sources.h)
  // Optional: op(B) is the transpose of a convolution's column matrix read from its images
  // (native/gemm.h; codes through bLut, as E5M2 when bIsE5M2, or floats): n = the columns' rows
  // (channels * KH * KW), k = batch * OH * OW. Only with transB; b and bCodes are then unused.
  const ImplicitColumns* bColumns = nullptr;
  float* c;        // m x n
  CodecParams acc;     // accumulator format and rounding; key = seedKey(seed)
  const float* lut;    // value of every code of the accumulator format; null: fp32, no rounding
  int64_t chunk;       // 0: none
  // Optional chunk ends instead of a fixed length: chunk c is [chunkEnds[c - 1], chunkEnds[c])
  // (from 0), non-decreasing, the last k; an empty chunk adds nothing. Nearest rounding only.
  const int32_t* chunkEnds = nullptr;
  int64_t chunkCount = 0;
  // Set by lowpGemm from either form: the ends of the nonempty chunks (strictly increasing, the
  // last k), `ends` of them; null without chunks.
  const int64_t* ends = nullptr;
  int64_t endCount = 0;
  bool exactProducts;  // products are exact in float32, so fused multiply-adds are allowed
  // Every product is a multiple of the accumulator's smallest subnormal (the operands' smallest
  // quanta multiply to one) and of 2^-126, so sums below F's normal range are exact, need no
  // rounding, and are normal float32 values.
  bool productsOnSubnormalGrid;
};

void lowpGemm(const LowpGemmArgs& args, int threads);

// For kernels that compute the same contract another way (native/direct_conv.h):
// the largest magnitude of n operand values (floats, or codes through lut; E5M2 codes by their
// low bits), NaN if one is NaN;
float lowpOperandAmax(const float* values, const uint8_t* codes, const float* lut, bool e5m2, int64_t n, int threads);
// whether no sum of a product with args g (op(A) = a or aCodes, m x k, not transposed; ends set;
// productsOnSubnormalGrid) and an op(B) whose largest magnitude is amaxB can leave the fast
// nearest rounding's range (F's normal range): lowpGemm's own proof;
bool lowpRangeProven(const LowpGemmArgs& g, float amaxB, int threads);
// the same proof from a bound on every row's sum of product magnitudes (NaN: no proof), for
// products whose op(A) is not stored row-major (only k, ends, acc and productsOnSubnormalGrid
// are read);
bool lowpRangeProvenBy(const LowpGemmArgs& g, double bound);
// the ends of the nonempty chunks of args (chunkEnds, or chunk; empty without chunks).
std::vector<int64_t> lowpChunkEnds(const LowpGemmArgs& args);

}  // namespace octet
