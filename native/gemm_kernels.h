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

  // This spec with the unfused kernels in place of the fused ones.
  KernelSpec withUnfused() const {
    KernelSpec ks = *this;
    ks.micro = unfused.micro;
    ks.direct = unfused.direct;
    ks.directCoded = unfused.directCoded;
    return ks;
  }
};

// The tile shape for an m x n result on this CPU.
const KernelSpec& selectKernel(int64_t m, int64_t n);

// Name of the kernel family in use ("avx512", "avx2", "portable").
const char* familyName();

}  // namespace gemm_detail
}  // namespace octet
