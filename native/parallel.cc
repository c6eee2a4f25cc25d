#include "parallel.h"

#include <thread>

namespace octet {

int hardwareThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

static int gDefaultThreads = 0;

int defaultThreads() { return gDefaultThreads > 0 ? gDefaultThreads : hardwareThreads(); }

void setDefaultThreads(int threads) { gDefaultThreads = threads; }

}  // namespace octet
