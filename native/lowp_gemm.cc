#include "lowp_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "codec_core.h"
#include "cpu.h"
#include "im2col.h"
#include "lowp_gemm_order.h"
#include "lowp_gemm_tiles.h"
#include "parallel.h"
#include "scratch.h"
#include "sources.h"

namespace octet {
namespace {

using codec_core::encodeOne;
using lowp::kLanes;
using lowp::kRows;

inline uint32_t floatToBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Largest magnitude of a run of values; NaN sticks (so a NaN operand disables the fast path).
inline float runAmax(const float* v, int64_t n) {
  float worst = 0.0f;
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) {
    worst = std::max(worst, std::fabs(v[i]));
    nan |= v[i] != v[i];
  }
  return nan ? NAN : worst;
}

inline float maxWithNan(float a, float b) { return (a != a || b != b) ? NAN : std::max(a, b); }

// Rows [i0, i0 + rows) of op(A), decoded, into dst (row stride k). Without a transpose the rows
// are one contiguous run of rows * k elements, decoded in one go.
void loadRows(const LowpGemmArgs& g, int64_t i0, int64_t rows, float* dst) {
  const int64_t count = rows * g.k;
  if (!g.transA) {
    if (!g.aCodes) {
      std::memcpy(dst, g.a + i0 * g.k, static_cast<size_t>(count) * sizeof(float));
      return;
    }
    decodeCodes(g.aCodes + i0 * g.k, g.aLut, g.aIsE5M2, count, dst);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    float* row = dst + r * g.k;
    if (g.aCodes) {
      for (int64_t t = 0; t < g.k; ++t) row[t] = g.aLut[g.aCodes[t * g.m + i]];
    } else {
      for (int64_t t = 0; t < g.k; ++t) row[t] = g.a[t * g.m + i];
    }
  }
}

thread_local std::vector<uint8_t> stripCodes;
thread_local std::vector<float> stripValues;

// Column strip s of op(B) = col^T read from the images (g.bColumns): lane l of row t is
// col(j0 + l, t), a run along row j0 + l of the column matrix; runs of kBlock positions at a time,
// so the strip block being filled stays in cache.
void packStripColumns(const LowpGemmArgs& g, int64_t s, float* strip) {
  const ImplicitColumns& src = *g.bColumns;
  const int64_t j0 = s * kLanes, width = std::min<int64_t>(kLanes, g.n - j0);
  constexpr int64_t kBlock = 1024;
  stripCodes.resize(kBlock);
  stripValues.resize(kBlock);
  for (int64_t t0 = 0; t0 < g.k; t0 += kBlock) {
    const int64_t len = std::min(kBlock, g.k - t0);
    for (int64_t l = 0; l < kLanes; ++l) {
      float* values = stripValues.data();
      if (l >= width) {
        std::fill(values, values + len, 0.0f);
      } else if (src.codes) {
        columnRun(src.codes, src.geometry, src.imageStride, j0 + l, t0, len, stripCodes.data());
        decodeCodes(stripCodes.data(), g.bLut, g.bIsE5M2, len, values);
      } else {
        columnRun(src.x, src.geometry, src.imageStride, j0 + l, t0, len, values);
      }
      float* dst = strip + t0 * kLanes + l;
      for (int64_t t = 0; t < len; ++t) dst[t * kLanes] = values[t];
    }
  }
}

// Column strip s of op(B) into strip (k rows of 16, zero past n).
void packStrip(const LowpGemmArgs& g, int64_t s, float* strip) {
  if (g.bColumns) {
    packStripColumns(g, s, strip);
    return;
  }
  const int64_t j0 = s * kLanes, width = std::min<int64_t>(kLanes, g.n - j0);
#ifdef OCTET_X86
  if (g.bCodes && g.bIsE5M2 && !g.transB && haveHalfConversion()) {
    for (int64_t t = 0; t < g.k; ++t) {
      float* row = strip + t * kLanes;
      decodeE5m2(g.bCodes + t * g.n + j0, row, width);
      for (int64_t j = width; j < kLanes; ++j) row[j] = 0.0f;
    }
    return;
  }
#endif
  for (int64_t t = 0; t < g.k; ++t) {
    float* row = strip + t * kLanes;
    for (int64_t j = 0; j < width; ++j) {
      const int64_t at = g.transB ? (j0 + j) * g.k + t : t * g.n + j0 + j;
      row[j] = g.bCodes ? g.bLut[g.bCodes[at]] : g.b[at];
    }
    for (int64_t j = width; j < kLanes; ++j) row[j] = 0.0f;
  }
}

// Largest magnitude of an operand (NaN if it holds one); for codes, the largest value among the
// codes present (defined below).
float operandAmax(const float* values, const uint8_t* codes, const float* lut, bool e5m2, int64_t n, int threads);

// The largest magnitude in the images op(B)'s columns read (every value of the images' channels;
// padding adds only zeros): at least the columns' own, so bounds built on it stay rigorous.
float imagesAmax(const LowpGemmArgs& g, int threads) {
  const ImplicitColumns& src = *g.bColumns;
  const ConvGeometry& geo = src.geometry;
  const int64_t plane = geo.height * geo.width, batch = g.k / (geo.outH * geo.outW);
  float worst = 0.0f;
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t at = n * src.imageStride;
    worst = maxWithNan(worst, src.codes ? operandAmax(nullptr, src.codes + at, g.bLut, g.bIsE5M2, geo.channels * plane, threads)
                                        : operandAmax(src.x + at, nullptr, nullptr, false, geo.channels * plane, threads));
  }
  return worst;
}

// `e5m2`: the codes are FP8 E5M2, a sign-magnitude byte whose low 7 bits order the magnitudes
// (Inf and NaN above every finite value), so the largest magnitude is the value of the largest
// low-7-bit code.
// The largest sum of magnitudes over a row of op(A), rounded up a little (it is summed in double);
// NaN when A holds a NaN. Times amaxB it bounds every sum of products of that row, far more
// tightly than k * amaxA * amaxB when most of A's values are well below its largest.
double maxRowAbsSum(const LowpGemmArgs& g, int threads) {
  std::vector<double> sums(static_cast<size_t>(g.m), 0.0);
  auto magnitude = [&](int64_t at) -> double { return std::fabs(static_cast<double>(g.aCodes ? g.aLut[g.aCodes[at]] : g.a[at])); };
  if (!g.transA) {
    parallelFor(g.m, g.m * g.k < (1 << 16) ? 1 : threads, [&](int64_t i) {
      double s = 0.0;
      for (int64_t t = 0; t < g.k; ++t) s += magnitude(i * g.k + t);
      sums[static_cast<size_t>(i)] = s;
    });
  } else {
    for (int64_t t = 0; t < g.k; ++t) for (int64_t i = 0; i < g.m; ++i) sums[static_cast<size_t>(i)] += magnitude(t * g.m + i);
  }
  double worst = 0.0;
  for (double v : sums) {
    if (v != v) return NAN;
    worst = std::max(worst, v);
  }
  return worst * (1.0 + std::ldexp(1.0, -30));
}

float operandAmax(const float* values, const uint8_t* codes, const float* lut, bool e5m2, int64_t n, int threads) {
  const int64_t chunk = 1 << 16;
#ifdef OCTET_X86
  if (codes && e5m2 && cpuHasAvx2()) {
    const int64_t chunks = (n + chunk - 1) / chunk;
    std::vector<uint8_t> part(static_cast<size_t>(chunks));
    parallelFor(chunks, n < chunk ? 1 : threads, [&](int64_t c) {
      part[c] = maxLowBits(codes + c * chunk, std::min<int64_t>(chunk, n - c * chunk));
    });
    uint8_t worst = 0;
    for (uint8_t v : part) worst = std::max(worst, v);
    return std::fabs(lut[worst]);
  }
#endif
  const int64_t chunks = (n + chunk - 1) / chunk;
  std::vector<float> part(static_cast<size_t>(chunks));
  parallelFor(chunks, n < chunk ? 1 : threads, [&](int64_t c) {
    const int64_t begin = c * chunk, count = std::min<int64_t>(chunk, n - begin);
    if (!codes) {
      part[c] = runAmax(values + begin, count);
      return;
    }
    bool present[256] = {false};
    for (int64_t i = 0; i < count; ++i) present[codes[begin + i]] = true;
    float worst = 0.0f;
    for (int v = 0; v < 256; ++v) {
      if (present[v]) worst = maxWithNan(worst, std::fabs(lut[v]));
    }
    part[c] = worst;
  });
  float worst = 0.0f;
  for (float v : part) worst = maxWithNan(worst, v);
  return worst;
}

// One element of C from the contract, in scalar code: the path of CPUs without AVX-512, and of
// AVX2's tiles that leave the fast range.
template <int kRounding>
float cellScalar(const LowpGemmArgs& g, const float* arow, const float* strip, int lane, uint32_t i, uint32_t j) {
  CodecParams p = g.acc;
  p.key = lowp::cellKey(g.acc.key, i, j);
  auto add = [&](float acc, float term, uint32_t t) {
    const float sum = acc + term;
    return g.lut ? g.lut[encodeOne<kRounding>(floatToBits(sum), p, t)] : sum;
  };
  float acc;
  lowp::sumInContractOrder(
      g, acc, [](float& sum) { sum = 0.0f; },
      [&](float& sum, int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) sum = add(sum, arow[t] * strip[t * kLanes + lane], static_cast<uint32_t>(t));
      },
      [&](float& total, float partial, int64_t run) { total = add(total, partial, static_cast<uint32_t>(g.k + run)); });
  return acc;
}

template <int kRounding>
void tileScalar(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s) {
  const int64_t rows = std::min<int64_t>(kRows, g.m - i0);
  const int64_t j0 = s * kLanes, width = std::min<int64_t>(kLanes, g.n - j0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t l = 0; l < width; ++l) {
      g.c[(i0 + r) * g.n + j0 + l] = cellScalar<kRounding>(g, rows0 + r * g.k, strip, static_cast<int>(l),
                                                           static_cast<uint32_t>(i0 + r), static_cast<uint32_t>(j0 + l));
    }
  }
}

void scalarTile(const LowpGemmArgs& g, const float* strip, const float* rows0, int64_t i0, int64_t s) {
  if (g.acc.rounding == kStochastic) tileScalar<kStochastic>(g, strip, rows0, i0, s);
  else tileScalar<kNearest>(g, strip, rows0, i0, s);
}

// Whether no value of the GEMM can leave the fast rounding's range, so its tiles may skip the
// checks: every product on the accumulator's subnormal grid (nothing rounds below the normal
// range), and no sum able to overflow. No sum can overflow when k products of the largest
// magnitudes, grown by a relative half unit per rounding, stay below F's largest value; and the
// splitting multiplies by 2^(23 - m), so sums must stay below 2^(127 - (23 - m)) as well.
// The factor by which rounding can grow a sum of g's products past the sum of their magnitudes,
// and the largest magnitude the fast range allows.
void growthAndLimit(const LowpGemmArgs& g, bool stochastic, double& factor, double& limit) {
  const double maxFinite = std::ldexp(1.0 + g.acc.maxMantissaAtTop / std::ldexp(1.0, g.acc.mantissaBits), g.acc.maxBiasedExponent - g.acc.bias);
  // Each rounding grows a magnitude by at most half a unit (nearest) or one unit (stochastic): a
  // factor (1 + u) per rounding a value goes through. Without chunks a sum goes through k
  // roundings; with chunks of L, a chunk's partial sum through at most L and the running total
  // through one per chunk, so every value stays below (1 + u)^(L + ceil(k / L)) times the sum of
  // the products' magnitudes.
  const double growth = std::ldexp(1.0, -(g.acc.mantissaBits + (stochastic ? 0 : 1)));
  int64_t longest = 0;
  for (int64_t c = 0; c < g.endCount; ++c) longest = std::max(longest, g.ends[c] - (c ? g.ends[c - 1] : 0));
  const int64_t roundings = g.ends ? longest + g.endCount : g.k;
  factor = std::exp(static_cast<double>(roundings + 1) * growth);
  limit = std::min(maxFinite, std::ldexp(1.0, 127 - (23 - g.acc.mantissaBits)));
}

bool rangeProvenGiven(const LowpGemmArgs& g, float amaxB, bool stochastic, int threads) {
  if (!g.productsOnSubnormalGrid) return false;
  const float amaxA = operandAmax(g.a, g.aCodes, g.aLut, g.aIsE5M2, g.m * g.k, threads);
  double factor, limit;
  growthAndLimit(g, stochastic, factor, limit);
  if (static_cast<double>(g.k) * amaxA * amaxB * factor < limit) return true;
  // k * amaxA * amaxB is pessimistic for real tensors (most values far below the largest); when it
  // fails, the rows' actual sums of magnitudes may still pass (one pass over A).
  return amaxB == amaxB && maxRowAbsSum(g, threads) * amaxB * factor < limit;
}

bool fastRangeProven(const LowpGemmArgs& g, bool stochastic, int threads) {
  if (!g.productsOnSubnormalGrid) return false;
  const float amaxB = g.bColumns ? imagesAmax(g, threads) : operandAmax(g.b, g.bCodes, g.bLut, g.bIsE5M2, g.k * g.n, threads);
  return rangeProvenGiven(g, amaxB, stochastic, threads);
}

// The calling thread's decoded op(A) or packed op(B), and packed strips beside a decoded op(A):
// kept from call to call (every element is written before it is read). Fresh per call they cost
// a zeroing memset and a page fault per 4 KiB: about 8% of an e6m9 ResNet-18 training step, whose
// GEMMs allocate some 250 MB of them, up to 16 MB at a time.
thread_local AlignedFloats callerOperand, callerStrips;

}  // namespace

float lowpOperandAmax(const float* values, const uint8_t* codes, const float* lut, bool e5m2, int64_t n, int threads) {
  return operandAmax(values, codes, lut, e5m2, n, threads);
}

bool lowpRangeProven(const LowpGemmArgs& g, float amaxB, int threads) { return rangeProvenGiven(g, amaxB, false, threads); }

bool lowpRangeProvenBy(const LowpGemmArgs& g, double bound) {
  if (!g.productsOnSubnormalGrid) return false;
  double factor, limit;
  growthAndLimit(g, false, factor, limit);
  return bound * factor < limit;
}

std::vector<int64_t> lowpChunkEnds(const LowpGemmArgs& args) {
  std::vector<int64_t> ends;
  if (args.chunkEnds) {
    for (int64_t c = 0; c < args.chunkCount; ++c) {
      if (args.chunkEnds[c] > (ends.empty() ? 0 : ends.back())) ends.push_back(args.chunkEnds[c]);
    }
  } else if (args.chunk > 0) {
    for (int64_t e = args.chunk; e < args.k + args.chunk; e += args.chunk) ends.push_back(std::min(e, args.k));
  }
  return ends;
}

void lowpGemm(const LowpGemmArgs& args, int threads) {
  if (args.m <= 0 || args.n <= 0) return;
  if (args.k <= 0) {
    std::fill(args.c, args.c + args.m * args.n, 0.0f);
    return;
  }
  // The chunks as the ends of the nonempty ones (an empty chunk adds nothing).
  const std::vector<int64_t> ends = lowpChunkEnds(args);
  LowpGemmArgs g = args;
  g.ends = ends.empty() ? nullptr : ends.data();
  g.endCount = static_cast<int64_t>(ends.size());
  const int64_t rowBlocks = (g.m + kRows - 1) / kRows;
  const int64_t strips = (g.n + kLanes - 1) / kLanes;
  const int team = g.m * g.n * g.k < (1 << 16) ? 1 : threads;
  const bool stochastic = g.acc.rounding == kStochastic;
  // One tile: a fast path where it applies (16 lanes with AVX-512, 8 with AVX2; a tile where a
  // value left its range is recomputed exactly: on 16 lanes, or in scalar code after the 8-lane
  // path), else scalar code.
  std::function<void(const float*, const float*, int64_t, int64_t)> tile = [&](const float* strip, const float* rows0, int64_t i0, int64_t s) {
    scalarTile(g, strip, rows0, i0, s);
  };
#ifdef OCTET_X86
  const bool wide = lowp::avx512Tiles(), narrow = !wide && lowp::avx2Tiles();
  lowp::FastTile fastTile = nullptr;
  lowp::FastRange range{};
  // The fast paths need a normal float32 target with at least one dropped bit.
  if ((wide || narrow) && g.lut && g.acc.mantissaBits < 23 && g.acc.subnormalsKept && g.acc.signedZero && g.acc.signedNaN) {
    range = lowp::fastRangeOf(g.acc);
    const bool unchecked = fastRangeProven(g, stochastic, threads);
    fastTile = wide ? lowp::avx512FastTile(stochastic, g.exactProducts, unchecked) : lowp::avx2FastTile(stochastic, g.exactProducts, unchecked);
  }
  if (wide || fastTile) {
    tile = [&](const float* strip, const float* rows0, int64_t i0, int64_t s) {
      if (fastTile && fastTile(g, range, strip, rows0, i0, s)) return;
      if (wide) lowp::avx512ExactTile(g, strip, rows0, i0, s);
      else scalarTile(g, strip, rows0, i0, s);
    };
  }
#endif
  if (g.m * g.k * static_cast<int64_t>(sizeof(float)) > (1 << 21) && rowBlocks >= 2 * team &&
      strips * kLanes <= g.m) {
    // A large op(A), and a packed B no larger than A: pack every strip of B once, then each task
    // decodes a block of rows of A and runs it against every strip. (When B is the larger one, the
    // path below decodes A once instead: the memory held is the smaller of the two.)
    float* packed = callerOperand.get(static_cast<size_t>(strips * g.k * kLanes));
    parallelFor(strips, g.k * g.n < 65536 ? 1 : threads, [&](int64_t s) { packStrip(g, s, packed + s * g.k * kLanes); });
    parallelFor(rowBlocks, team, [&](int64_t b) {
      thread_local std::vector<float> rows;
      rows.resize(static_cast<size_t>(kRows * g.k));
      const int64_t i0 = b * kRows;
      loadRows(g, i0, std::min<int64_t>(kRows, g.m - i0), rows.data());
      for (int64_t s = 0; s < strips; ++s) tile(packed + s * g.k * kLanes, rows.data(), i0, s);
    });
  } else {
    // A small op(A): decode it once; with enough strips, each task packs one strip of B (it stays
    // in cache) and runs every row block against it, so B is read once.
    float* all = callerOperand.get(static_cast<size_t>(g.m * g.k));
    loadRows(g, 0, g.m, all);
    if (strips >= 2 * team || rowBlocks == 1) {
      parallelFor(strips, team, [&](int64_t s) {
        thread_local std::vector<float> strip;
        strip.resize(static_cast<size_t>(g.k * kLanes));
        packStrip(g, s, strip.data());
        for (int64_t b = 0; b < rowBlocks; ++b) tile(strip.data(), all + b * kRows * g.k, b * kRows, s);
      });
    } else {
      // Few strips: pack them once, and split the work over row blocks too.
      float* packed = callerStrips.get(static_cast<size_t>(strips * g.k * kLanes));
      for (int64_t s = 0; s < strips; ++s) packStrip(g, s, packed + s * g.k * kLanes);
      parallelFor(rowBlocks * strips, team, [&](int64_t task) {
        const int64_t i0 = (task / strips) * kRows, s = task % strips;
        tile(packed + s * g.k * kLanes, all + i0 * g.k, i0, s);
      });
    }
  }
}

}  // namespace octet
