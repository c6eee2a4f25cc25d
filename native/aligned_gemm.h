// GEMM under an aligned fixed-point accumulator (src/kernels/hopper_gemm.ts states the model and
// holds its TypeScript reference): products of one-byte codes in groups, truncated toward zero
// `keep` bits below the group's largest exponent sum (the accumulator included), the group's sum
// truncated to `significant` bits, a fresh accumulator every `interval` products whose value is
// added into a float32 total. Returns the totals (no scales); NaN where an operand is NaN or Inf.
// As a block-scaled product (`scaled`, block_scaled.h's runs and divisors): each run's total P
// (intervals counted from the run's start) goes into c as c = fl32(c + fl32(fl32(P / sa) / sb)),
// c starting at 0 (src/kernels/block_gemm.ts states this contract).
#pragma once
#include <cstdint>

#include "block_scaled.h"

namespace octet {

struct AlignedTables {
  int8_t sig[256];  // signed significand (implicit bit included), 0 for zeros
  int8_t exp[256];  // unbiased exponent field (subnormals at the format's emin)
  uint8_t bad[256]; // NaN or Inf
  int mantissaBits;
};

struct AlignedGemmArgs {
  int64_t m, n, k;
  const uint8_t* a;  // m x k codes, row-major (k x m with aKMajor)
  const uint8_t* b;  // k x n codes, row-major
  float* c;          // m x n
  AlignedTables ta, tb;
  int group, keep, significant;
  int64_t interval;  // 0: one accumulator for all of k
  bool aKMajor = false;
  bool scaled = false;
  // A run's column divisor applies before its row divisor: set on the swapped product
  // C^T = B^T A^T, so that A's divisor still comes first (the contract's (P / sa) / sb).
  bool colScaleFirst = false;
  BlockRuns blocks{};
};

void alignedGemm(const AlignedGemmArgs& args, int threads);

}  // namespace octet
