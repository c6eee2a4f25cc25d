// Single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, row-major.
//
// op(A) is m x k (A itself k x m when transA), op(B) is k x n (B itself n x k when transB).
// Blocked as in BLIS (Goto's algorithm): B is packed in k-by-NR panels, A in MR-by-k panels,
// and a register-tiled micro-kernel (AVX-512, AVX2+FMA, or portable C++) computes MR x NR
// tiles. The kernel is chosen once at run time from the CPU's features.
//
// Threads split rows and columns of C, never k, so every element of C is summed in the same
// order whatever the thread count. When beta == 0, C is not read (it may hold NaN).
#pragma once
#include <cstdint>

#include "im2col.h"

namespace octet {

// B as the column matrix of a batch of images (native/im2col.h), read from the images while
// packing instead of from a stored matrix: K = channels * KH * KW rows, batch * OH * OW columns.
// op(B) is that matrix (k = K, n = its columns), or with transB its transpose (n = K, k = its
// columns). The images are floats (x) or one-byte codes (codes, decoded through bLut, or as E5M2
// when bIsE5M2). Every element of C is the same chain of products as with the matrix stored.
struct ImplicitColumns {
  ConvGeometry geometry;
  int64_t imageStride;
  const float* x = nullptr;
  const uint8_t* codes = nullptr;
};

struct GemmArgs {
  bool transA, transB;
  int64_t m, n, k;
  float alpha;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float beta;
  float* c;
  int64_t ldc;
  // Optional one-byte codes instead of floats: op(A) elements are aLut[aCodes[...]] (likewise
  // B), decoded while packing. a (or b) is then unused.
  const uint8_t* aCodes = nullptr;
  const float* aLut = nullptr;
  const uint8_t* bCodes = nullptr;
  const float* bLut = nullptr;
  // B's codes are FP8 E5M2, whose code shifted left by 8 is the IEEE half of the same value, so
  // rows of B decode 16 at a time with a half-to-float conversion (bit-identical to the table).
  bool bIsE5M2 = false;
  // false: every step is acc = fl(acc + fl(a * b)), a multiply then an add (for products that are
  // not exact in float32); true: one fused multiply-add (equal to it when products are exact).
  bool fused = true;
  bool aIsE5M2 = false;  // likewise for A's codes (packed rows, and the kernel that reads A in place)
  // B read from images (b, bCodes and ldb unused); see ImplicitColumns.
  const ImplicitColumns* bColumns = nullptr;
  // C's columns in blocks of cPlane (one image's output plane each), block q at c + q *
  // cImageStride: element (i, j) at c + (j / cPlane) * cImageStride + i * ldc + j % cPlane, so a
  // convolution's result lands in NCHW directly. 0: plain row-major C. cPlane must be a multiple
  // of every tile width (32), so that no tile straddles two images.
  int64_t cPlane = 0;
  int64_t cImageStride = 0;
};

void sgemm(const GemmArgs& args, int threads);

// The block-scaled product with float32 partials (native/block_scaled.h) on the GEMM's packing
// and register tiles. K is cut into runs ending at ends[0..runs) (the last at k); for each run r
// and element (i, j): P = a chain of fused multiply-adds from +0 over the run's products in k
// order, then C = fl(C + term), term = fl(fl(P * rows[r*m + i]) * cols[r*n + j]) where
// reciprocal[r], else fl(fl(P / rows[r*m + i]) / cols[r*n + j]). C (row-major, ldc) starts at +0
// (it is written, not read).
// The operands are codes (aCodes / bCodes with their tables; args.fused, alpha = 1 and beta = 0
// are implied); no bColumns, no cPlane.
struct RunScaling {
  const int64_t* ends;
  int64_t runs;
  const float* rows;  // runs x m
  const float* cols;  // runs x n
  const uint8_t* reciprocal;
};
void sgemmRuns(const GemmArgs& args, const RunScaling& scaling, int threads);

// Name of the micro-kernel in use ("avx512", "avx2", "portable").
const char* gemmKernelName();

// Whether products of one-byte codes exact in bfloat16 run on the bfloat16-pair kernel
// (VDPBF16PS; the same bits as the float kernel, see gemm_kernels.h); OCTET_BF16_PAIRS=on|off.
bool gemmBf16Pairs();

// How many products have run on it in this process (for tests that must know they reached it).
int64_t gemmBf16PairProducts();
// Counts one product run on bfloat16 pairs by another kernel (the block-sparse one).
void noteBf16PairProduct();

// What the pair kernel needs of a set of values (a code table, count 256, or any floats): every
// finite value exact in bfloat16; the exponent of the grid every value lies on (the smallest
// power of two dividing them all), the largest finite magnitude, and the smallest (index & 0x7f)
// of a non-finite value (128 if none: for a table, the first code that reads one).
struct TableFacts {
  bool bf16Exact = true;
  int gridExponent = 1000;
  double maxFinite = 0.0;
  int firstNonFinite = 128;
};
TableFacts tableFacts(const float* values, int64_t count);
// tableFacts of many values (a stored weight), read from their bits, 16 at a time on AVX-512;
// firstNonFinite 0 when any value is Inf or NaN (128 if none).
TableFacts valueFacts(const float* values, int64_t count);
// Whether products of a's and b's values, chained k at a time from +0 on bfloat16 pairs
// (VDPBF16PS, which flushes denormals), give the float kernel's bits: both sets exact in bfloat16,
// their grids 2^ea, 2^eb with ea + eb >= -126 (no product or partial sum denormal), and k times the
// largest product finite. The caller checks that no Inf or NaN is read.
bool pairProductsExact(const TableFacts& a, const TableFacts& b, int64_t k);
// A run of kc floats (exact in bfloat16) as ceil(kc / 2) pair words, (bits(v[2q]) & 0xffff0000) |
// (bits(v[2q + 1]) >> 16), the last low half `pad` when kc is odd.
void pairWordsFromRun(const float* v, int64_t kc, uint32_t pad, uint32_t* out);
// Whether the codes an operand reads hold a value whose table entry is non-finite.
bool mayReadNonFinite(const uint8_t* codes, int64_t count, const TableFacts& f);

}  // namespace octet
