// The GEMM micro-kernels and their selection, internal to the native core: register-tiled
// tiles for AVX-512, AVX2+FMA and portable C++, chosen once per CPU and per call's shape.
#pragma once
#include <cstdint>

namespace octet {
namespace gemm_detail {

// Micro-kernel contract, for i < mr, j < nr (a partial tile at the edges of C):
// - alpha = 1 and beta = 1: acc = c[i*ldc + j], then acc = fma(a(i,p), b(p,j), acc) for p in
//   [0, kc) in order, and c = acc. So a product of k > kc runs as one chain of fused
//   multiply-adds in k order, whatever the blocking (the low-precision GEMM relies on it).
// - otherwise: acc = 0, the same chain, then c = alpha * acc + beta * c (c not read when
//   beta == 0).
using MicroKernel = void (*)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                             float alpha, float beta, int mr, int nr);

// A block-scaled tile (native/block_scaled.h): packed panels as for MicroKernel, over `count`
// runs of lengths[0..count) products one after another. For each run r and i < mr, j < nr:
// P = a chain of fused multiply-adds from +0 over the run's products in k order, then
//   c[i*ldc + j] = fl(c + term), term = reciprocal[r] ? fl(fl(P * rows[r*rowStride + i]) * cols[r*colStride + j])
//                                                    : fl(fl(P / rows[...]) / cols[...]),
// with c starting at +0 instead of C's value when `first`. The sums run in a tile buffer and C is
// read and written once per call (C's rows, a page apart, would share an L1 set).
struct RunsTile {
  bool first;
  const float* ap;
  const float* bp;
  float* c;
  int64_t ldc;
  int mr, nr;
  const int64_t* lengths;
  int64_t count;
  const float* rows;
  int64_t rowStride;
  const float* cols;
  int64_t colStride;
  const uint8_t* reciprocal;
};
using RunsKernel = void (*)(const RunsTile& tile);

struct KernelSpec {
  const char* name;
  int mr, nr;
  int64_t mc, kc, nc;  // cache blocking: A micro-panel MR x kc in L1, B block kc x nc in L2, A block mc x kc in L3
  MicroKernel micro;
  // Optional: the same kernel reading op(A) straight from row-major memory (row i at
  // a + i * lda, k contiguous), used when a packed A panel would be reused too little to pay
  // for its packing. Rows at or past mr repeat row mr-1 and are not stored.
  void (*direct)(int64_t kc, const float* a, int64_t lda, const float* bp, float* c, int64_t ldc, float alpha,
                 float beta, int mr, int nr);
  // Optional: direct, with A as one-byte codes decoded through a table.
  void (*directCoded)(int64_t kc, const uint8_t* a, int64_t lda, const float* lut, const float* bp, float* c,
                      int64_t ldc, float alpha, float beta, int mr, int nr);
  // The same three with each step acc = fl(acc + fl(a * b)), a multiply then an add, for
  // products that are not exact in float32 (a fused multiply-add would round once, not twice).
  struct Unfused {
    MicroKernel micro;
    void (*direct)(int64_t, const float*, int64_t, const float*, float*, int64_t, float, float, int, int);
    void (*directCoded)(int64_t, const uint8_t*, int64_t, const float*, const float*, float*, int64_t, float, float, int, int);
  } unfused{};
  // Optional: the micro-kernel on bfloat16 pairs (AVX512_BF16's VDPBF16PS), for operands whose
  // every value is exact in bfloat16. Its panels are those of `micro` converted by
  // packPairsInPlace: row q of a panel holds, per column, the 32-bit word (bf16(row 2q) << 16) |
  // bf16(row 2q + 1), the second half -0 (A) or +0 (B) past an odd kc. VDPBF16PS adds the high
  // half's product first, then the low half's, each as a fused multiply-add with round to nearest
  // even, so the chain is micro's in k order. It flushes denormal inputs and results to zero and
  // ignores MXCSR: the caller makes sure no product or sum is denormal (pairsEligible in gemm.cc).
  MicroKernel pairs = nullptr;
  bool pairPanels = false;
  // The block-scaled tile on this shape (every family has one), and optionally the same on
  // bfloat16-pair panels (converted as `pairs`' are, K block by K block).
  RunsKernel runs = nullptr;
  RunsKernel runsPairs = nullptr;  // micro is `pairs`: the panels are to be converted after packing

  // This spec with the bfloat16-pair kernel (which reads packed panels only).
  KernelSpec withPairs() const {
    KernelSpec ks = *this;
    ks.micro = pairs;
    ks.direct = nullptr;
    ks.directCoded = nullptr;
    ks.pairPanels = true;
    return ks;
  }

  // This spec with the unfused kernels in place of the fused ones.
  KernelSpec withUnfused() const {
    KernelSpec ks = *this;
    ks.micro = unfused.micro;
    ks.direct = unfused.direct;
    ks.directCoded = unfused.directCoded;
    return ks;
  }
};

// Whether the bfloat16-pair kernels run here: the CPU has AVX512_BF16 and, unless
// OCTET_BF16_PAIRS=on|off says otherwise, VDPBF16PS (two multiply-adds per lane) retires at least
// 0.65 times as many instructions per second as VDPFMADD (measured once, at first use: AMD's Zen 4
// and Zen 5 run both at the same rate, Intel's Sapphire Rapids the pairs at a quarter). Results
// are the same bits either way; only the speed differs.
bool bf16PairsEnabled();

// The tile shape for an m x n result on this CPU.
const KernelSpec& selectKernel(int64_t m, int64_t n);

// Name of the kernel family in use ("avx512", "avx2", "portable").
const char* familyName();

}  // namespace gemm_detail
}  // namespace octet
