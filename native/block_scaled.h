// Block-scaled operands (src/kernels/block_quant.ts) and the outer accumulation of a
// block-scaled GEMM (src/kernels/block_gemm.ts): the contracts are written there; these return
// the same bits.
#pragma once
#include <cstdint>

#include "codec.h"

namespace octet {

struct BlockQuantParams {
  int64_t rows, k;          // the operand's GEMM view, R x K
  bool kMajorInput;         // values[t * rows + r] (else values[r * k + t])
  int64_t blockRows, blockK;
  int scaleKind;            // 0 e8m0, 1 pow2, 2 fp32
  int margin;
  float maxFinite;
  int emax;
  CodecParams codec;
  uint32_t magnitudeMask;  // a code's bits without the sign
};

// codes: K x R one-byte codes; scales: [ceil(K / blockK)] x [ceil(R / blockRows)] divisors.
// counts: [NaN and Inf inputs, nonzero inputs (NaN excluded), nonzero inputs with a zero-magnitude code].
void blockQuantize(const float* values, uint8_t* codes, float* scales, const BlockQuantParams& p, int64_t counts[3], int threads);

// One K-block's partial sums into the outer sum: for i < m, j < n,
//   term = fl32(fl32(partial[i n + j] / sa[i / blockRowsA]) / sb[j / blockRowsB]);
//   acc[i n + j] = fl32(acc + term), then rounded to the outer format when lut is given (nearest,
//   codec parameters `outer`).
void blockScaleAdd(const float* partial, float* acc, int64_t m, int64_t n, const float* sa, int64_t blockRowsA, const float* sb,
                   int64_t blockRowsB, const CodecParams* outer, const float* lut, int threads);

}  // namespace octet
