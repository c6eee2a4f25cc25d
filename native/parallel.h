// Fork-join parallelism over independent work items. OpenMP when the build has it (both cores,
// thread count set per call); otherwise the items run in order on the calling thread.
#pragma once
#include <cstdint>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace octet {

// Number of threads kernels use unless a call says otherwise; set from JavaScript.
int defaultThreads();
void setDefaultThreads(int threads);
int hardwareThreads();

// Run body(i) for i in [0, count) on up to `threads` threads. Items must be independent.
template <typename Body>
void parallelFor(int64_t count, int threads, Body body) {
#ifdef _OPENMP
  if (threads > 1 && count > 1) {
    int used = static_cast<int>(count < threads ? count : threads);
#pragma omp parallel for num_threads(used) schedule(static)
    for (int64_t i = 0; i < count; ++i) body(i);
    return;
  }
#endif
  (void)threads;
  for (int64_t i = 0; i < count; ++i) body(i);
}

}  // namespace octet
