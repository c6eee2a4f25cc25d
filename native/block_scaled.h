// Block-scaled operands (src/kernels/block_quant.ts) and the outer accumulation of a
// block-scaled GEMM (src/kernels/block_gemm.ts): the contracts are written there; these return
// the same bits.
#pragma once
#include <cstdint>
#include <vector>

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

// The whole block-scaled GEMM for float32 partials and a float32 outer sum, in one pass over C:
// a (K x m) and b (K x n) hold the element codes, decoded through their tables (unscaled values); runs end at ends[0..runs);
// the divisors of A's K-block kb and row block rb are scalesA[kb * rowBlocksA + rb] (likewise B).
// For each run: P = a chain of fused multiply-adds over its products (products exact), then
// c = fl32(c + fl32(fl32(P / sa) / sb)), with multiplications by exact reciprocals when every
// divisor is a power of two (the same rounding). c is written (not read).
// The runs of a block-scaled product and its operands' divisors.
struct BlockRuns {
  const int64_t* ends;  // run ends, increasing, the last K
  int64_t runs;
  const float* scalesA;
  int64_t blockKA, blockRowsA;
  const float* scalesB;
  int64_t blockKB, blockRowsB;
};

struct BlockGemmFp32Args {
  const uint8_t* a;  // K x m codes, values aLut[code]
  const float* aLut;
  const uint8_t* b;  // K x n codes, values bLut[code]
  const float* bLut;
  float* c;
  int64_t m, n, k;
  BlockRuns blocks;
};
void blockGemmFp32(const BlockGemmFp32Args& args, int threads);

// Every run's row and column divisors, expanded (rows[run * m + i], cols[run * n + j]), or their
// reciprocals where all of that run's are powers of two (reciprocal[run]): a run's partial P goes
// into c as c + (P * rows) * cols then, the same bits as c + (P / sa) / sb.
struct RunScales {
  std::vector<float> rows, cols;
  std::vector<uint8_t> reciprocal;
};
void runScales(const BlockRuns& blocks, int64_t m, int64_t n, int threads, RunScales& out);

}  // namespace octet
