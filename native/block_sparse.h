// Block-sparse products (src/kernels/block_sparse.ts has the contract): a weight matrix in block
// compressed sparse rows (BSR) times a dense row-major matrix.
#pragma once
#include <cstdint>

namespace octet {

// C (m x n, row-major, ldc) = W (m x k, BSR) times X (k x n, row-major, ldx). W's blocks are
// br x bc; block row q holds blocks rowPtr[q] .. rowPtr[q+1], block b at block column colIdx[b]
// (increasing within a row), values[b * br * bc ...] row-major (entries past m or k are zero and
// never read for k). For each element: acc = +0, then for every stored k of its block row in
// increasing order, acc = fma(w, x, acc) (fused) or fl(acc + fl(w * x)); C = acc. Threads split
// block rows and column ranges, never k.
struct BsrGemmArgs {
  const int32_t* rowPtr;
  const int32_t* colIdx;
  const float* values;
  int64_t m, k, n, br, bc;
  const float* x;
  int64_t ldx;
  float* c;
  int64_t ldc;
  bool fused;
};
void bsrGemm(const BsrGemmArgs& args, int threads);

}  // namespace octet
