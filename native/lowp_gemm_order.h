// The order of additions of the emulated-accumulation GEMM's contract (src/kernels/lowp_gemm.ts),
// written once for every tile: without chunks, product t goes into the total as addition t; with
// chunks, each run's products go into a partial sum that starts from zero, then the partial into
// the total as addition k + run.
//
// Only a template: the vector tiles include this after their `#pragma GCC target`, so that it
// is compiled for their instruction set and their steps inline into it (a header of inline
// functions included that way would put their vector builds where other files link the baseline
// ones).
#pragma once
#include <cstdint>

#include "lowp_gemm.h"

namespace octet {
namespace lowp {

// Sums: what holds a tile's sums (a float, an array of vectors). clear(sums) zeroes them;
// accumulate(sums, t0, t1) adds products t0 .. t1-1; fold(total, partial, run) adds a run's
// partial sums into the total (addition k + run).
template <class Sums, class Clear, class Accumulate, class Fold>
__attribute__((always_inline)) inline void sumInContractOrder(const LowpGemmArgs& g, Sums& total, Clear clear, Accumulate accumulate, Fold fold) {
  clear(total);
  if (!g.ends) {
    accumulate(total, 0, g.k);
    return;
  }
  for (int64_t run = 0; run < g.endCount; ++run) {
    Sums partial;
    clear(partial);
    accumulate(partial, run == 0 ? 0 : g.ends[run - 1], g.ends[run]);
    fold(total, partial, run);
  }
}

}  // namespace lowp
}  // namespace octet
