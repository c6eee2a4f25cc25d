// The distribution of |x| over a float32 tensor and a product's error energies, for the numerics
// lab (src/kernels/value_stats.ts has the TypeScript references, which these equal exactly).
#pragma once
#include <cstdint>

namespace octet {

// bins[(pattern of |x|) >> 16] counts the nonzero finite values (32768 bins); counts[0] = zeros,
// counts[1] = NaN and Inf, counts[2] = the largest finite |x|'s pattern (0 when there is none).
void valueHistogram(const float* x, int64_t n, uint32_t* bins, int64_t* counts, int threads);

// Patterns of |x| of the nonzero finite values whose bin has slot[bin] >= 0, written to
// out[offsets[slot] .. offsets[slot + 1]) in the order of x (the caller sizes each slot's run from
// the bins; a value beyond its run is not written). Returns the values written.
int64_t collectBins(const float* x, int64_t n, const int32_t* slot, const uint32_t* offsets, int64_t slots, uint32_t* out);

// In double: sums[0] = sum ref^2, sums[1] = sum (value - ref)^2, and with middle (else null)
// sums[2] = sum (middle - ref)^2, sums[3] = sum (value - middle)^2. Summed in blocks of 65536
// elements, each block in order and the blocks in order, so the result does not depend on the
// thread count.
void errorEnergy(const float* value, const float* ref, const float* middle, int64_t n, double* sums, int threads);

}  // namespace octet
