// GEMM under an aligned fixed-point accumulator (src/kernels/hopper_gemm.ts states the model and
// holds its TypeScript reference): products of one-byte codes in groups, truncated toward zero
// `keep` bits below the group's largest exponent sum (the accumulator included), the group's sum
// truncated to `significant` bits, a fresh accumulator every `interval` products whose value is
// added into a float32 total. Returns the totals (no scales); NaN where an operand is NaN or Inf.
#pragma once
#include <cstdint>

namespace octet {

struct AlignedTables {
  int8_t sig[256];  // signed significand (implicit bit included), 0 for zeros
  int8_t exp[256];  // unbiased exponent field (subnormals at the format's emin)
  uint8_t bad[256]; // NaN or Inf
  int mantissaBits;
};

struct AlignedGemmArgs {
  int64_t m, n, k;
  const uint8_t* a;  // m x k codes, row-major
  const uint8_t* b;  // k x n codes, row-major
  float* c;          // m x n
  AlignedTables ta, tb;
  int group, keep, significant;
  int64_t interval;  // 0: one accumulator for all of k
};

void alignedGemm(const AlignedGemmArgs& args, int threads);

}  // namespace octet
