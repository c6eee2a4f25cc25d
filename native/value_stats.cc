#include "value_stats.h"

#include <cstring>
#include <vector>

#include "parallel.h"

namespace octet {
namespace {

constexpr int64_t kBins = 1 << 15;
constexpr int64_t kBlock = 1 << 16;

}  // namespace

void valueHistogram(const float* x, int64_t n, uint32_t* bins, int64_t* counts, int threads) {
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(x);
  const int team = n < (1 << 18) ? 1 : threads;
  std::vector<std::vector<uint32_t>> local(team, std::vector<uint32_t>(kBins, 0));
  std::vector<int64_t> zeros(team, 0), nonfinite(team, 0);
  std::vector<uint32_t> top(team, 0);
  // Branch-free: ReLU outputs are about half zeros, and a branch on each value's kind would be
  // mispredicted half the time. Zeros land in bin 0 and are taken out of it after; NaN and Inf
  // are exactly the bins of exponent field 255, and are never the largest finite pattern.
  parallelFor(team, team, [&](int64_t t) {
    const int64_t begin = n * t / team, end = n * (t + 1) / team;
    uint32_t* b = local[t].data();
    int64_t z = 0;
    uint32_t m = 0;
    for (int64_t i = begin; i < end; ++i) {
      const uint32_t p = bits[i] & 0x7fffffffu;
      ++b[p >> 16];
      z += p == 0;
      const uint32_t finite = p < 0x7f800000u ? p : 0;
      m = finite > m ? finite : m;
    }
    b[0] -= static_cast<uint32_t>(z);
    int64_t nf = 0;
    for (int64_t k = 0x7f80; k < kBins; ++k) {
      nf += b[k];
      b[k] = 0;
    }
    zeros[t] = z;
    nonfinite[t] = nf;
    top[t] = m;
  });
  std::memset(bins, 0, kBins * sizeof(uint32_t));
  counts[0] = counts[1] = counts[2] = 0;
  for (int t = 0; t < team; ++t) {
    for (int64_t k = 0; k < kBins; ++k) bins[k] += local[t][k];
    counts[0] += zeros[t];
    counts[1] += nonfinite[t];
    counts[2] = top[t] > counts[2] ? top[t] : counts[2];
  }
}

int64_t collectBins(const float* x, int64_t n, const int32_t* slot, const uint32_t* offsets, int64_t slots, uint32_t* out) {
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(x);
  std::vector<uint32_t> fill(offsets, offsets + slots);
  int64_t written = 0;
  // Wanted bins are finite (a threshold or quantile lies in one), so only the rare value in a
  // wanted bin takes the branch; zeros share bin 0 and are told apart there.
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t p = bits[i] & 0x7fffffffu;
    const int32_t k = slot[p >> 16];
    if (__builtin_expect(k >= 0, 0)) {
      if (p != 0 && p < 0x7f800000u && fill[k] < offsets[k + 1]) {
        out[fill[k]++] = p;
        ++written;
      }
    }
  }
  return written;
}

void errorEnergy(const float* value, const float* ref, const float* middle, int64_t n, double* sums, int threads) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks * 4, 0.0);
  parallelFor(blocks, blocks > 1 ? threads : 1, [&](int64_t blk) {
    const int64_t begin = blk * kBlock, end = begin + kBlock < n ? begin + kBlock : n;
    double s = 0, total = 0, first = 0, second = 0;
    if (middle) {
      for (int64_t i = begin; i < end; ++i) {
        const double r = ref[i], v = value[i], m = middle[i];
        s += r * r;
        total += (v - r) * (v - r);
        first += (m - r) * (m - r);
        second += (v - m) * (v - m);
      }
    } else {
      for (int64_t i = begin; i < end; ++i) {
        const double r = ref[i], d = double(value[i]) - r;
        s += r * r;
        total += d * d;
      }
      first = total;
    }
    double* p = &partial[blk * 4];
    p[0] = s;
    p[1] = total;
    p[2] = first;
    p[3] = second;
  });
  sums[0] = sums[1] = sums[2] = sums[3] = 0;
  for (int64_t b = 0; b < blocks; ++b)
    for (int k = 0; k < 4; ++k) sums[k] += partial[b * 4 + k];
}

}  // namespace octet
