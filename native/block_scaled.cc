#include "block_scaled.h"

#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <vector>

#include "codec_core.h"
#include "cpu.h"
#include "gemm.h"
#include "parallel.h"

namespace octet {
namespace {

constexpr int kMinScaleExponent = -100;
constexpr int kMaxScaleExponent = 100;

// floor(log2 |x|) of a finite nonzero float32, from its fields (subnormals included).
inline int floorLog2(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u &= 0x7fffffffu;
  const int field = static_cast<int>(u >> 23);
  if (field != 0) return field - 127;
  return 31 - __builtin_clz(u) - 149;
}

// The divisor of a block from its finite amax (block_quant.ts, blockScale).
float blockScale(float amax, const BlockQuantParams& p) {
  if (p.scaleKind == 0) {
    int e = amax > 0 ? floorLog2(amax) - p.emax : -127;
    e = e < -127 ? -127 : (e > 127 ? 127 : e);
    return std::ldexp(1.0f, -e);
  }
  if (!(amax > 0)) return 1.0f;
  if (p.scaleKind == 1) {
    const int ea = floorLog2(amax), ef = floorLog2(p.maxFinite);
    int t = ef - ea - p.margin - (std::ldexp(static_cast<double>(amax), -ea) > std::ldexp(static_cast<double>(p.maxFinite), -ef) ? 1 : 0);
    t = t < kMinScaleExponent ? kMinScaleExponent : (t > kMaxScaleExponent ? kMaxScaleExponent : t);
    return std::ldexp(1.0f, t);
  }
  float s = static_cast<float>(static_cast<double>(p.maxFinite) / (static_cast<double>(amax) * std::ldexp(1.0, p.margin)));
  const float lo = std::ldexp(1.0f, kMinScaleExponent), hi = std::ldexp(1.0f, kMaxScaleExponent);
  return s < lo ? lo : (s > hi ? hi : s);
}

inline uint32_t bitsOf(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}

struct Counts {
  int64_t nonFinite = 0, nonzero = 0, underflow = 0;
};

// A piece of the operand: K range [t0, t1) inside one K-block, rows [r0, r1) (whole block rows).
struct Piece {
  int64_t kb, t0, t1, r0, r1;
};

// The piece gathered k-major: slab[(t - t0) * n + r - r0].
void gather(const float* values, const BlockQuantParams& p, const Piece& q, float* slab) {
  const int64_t R = p.rows, K = p.k, n = q.r1 - q.r0, len = q.t1 - q.t0;
  if (p.kMajorInput) {
    for (int64_t t = 0; t < len; ++t) std::memcpy(slab + t * n, values + (q.t0 + t) * R + q.r0, static_cast<size_t>(n) * 4);
  } else {
    for (int64_t r = 0; r < n; ++r) {
      const float* v = values + (q.r0 + r) * K + q.t0;
      for (int64_t t = 0; t < len; ++t) slab[t * n + r] = v[t];
    }
  }
}

// Phase 1: the piece's per-row amax over its finite values (rowMax, n entries), NaN/Inf and
// zeros, read in place (rows of a k-major input run along r, of a row-major one along t).
Counts pieceMax(const float* values, const BlockQuantParams& p, const Piece& q, float* rowMax, int64_t& zeros) {
  const int64_t n = q.r1 - q.r0;
  std::fill(rowMax, rowMax + n, 0.0f);
  Counts counts;
  int64_t nonFinite = 0, zero = 0;
  if (p.kMajorInput) {
    for (int64_t t = q.t0; t < q.t1; ++t) {
      const float* v = values + t * p.rows + q.r0;
      for (int64_t r = 0; r < n; ++r) {
        const float a = std::fabs(v[r]);
        const bool finite = a <= 3.4028234663852886e38f;
        nonFinite += !finite;
        zero += a == 0.0f;
        const float f = finite ? a : 0.0f;
        rowMax[r] = f > rowMax[r] ? f : rowMax[r];
      }
    }
  } else {
    for (int64_t r = 0; r < n; ++r) {
      const float* v = values + (q.r0 + r) * p.k;
      float m = 0.0f;
      for (int64_t t = q.t0; t < q.t1; ++t) {
        const float a = std::fabs(v[t]);
        const bool finite = a <= 3.4028234663852886e38f;
        nonFinite += !finite;
        zero += a == 0.0f;
        const float f = finite ? a : 0.0f;
        m = f > m ? f : m;
      }
      rowMax[r] = m;
    }
  }
  counts.nonFinite = nonFinite;
  zeros = zero;
  return counts;
}

// Phase 2: the piece's elements scaled by their rows' divisors and encoded by the codec's own
// (vectorized) encoder, element counter t * R + r; returns NaN elements and codes without
// magnitude bits among the others (underflow = those less the zeros).
void pieceEncode(const float* values, uint8_t* codes, const BlockQuantParams& p, const Piece& q, const float* rowScale, int64_t& nan, int64_t& noMagnitude,
                 std::vector<float>* gathered = nullptr) {
  const int64_t R = p.rows, n = q.r1 - q.r0, len = q.t1 - q.t0;
  std::vector<float> own;
  if (!gathered) {
    own.resize(static_cast<size_t>(len * n));
    gather(values, p, q, own.data());
  }
  std::vector<float>& slab = gathered ? *gathered : own;
  nan = 0;
  for (int64_t t = 0; t < len; ++t) {
    float* v = slab.data() + t * n;
    int64_t count = 0;
    for (int64_t r = 0; r < n; ++r) {
      v[r] = v[r] * rowScale[r];
      count += v[r] != v[r];
    }
    nan += count;
  }
  CodecParams c = p.codec;
  if (n == R) {
    c.counterOffset = p.codec.counterOffset + static_cast<uint32_t>(q.t0 * R);
    encode(slab.data(), codes + q.t0 * R, 1, len * n, c, 1);
  } else {
    for (int64_t t = 0; t < len; ++t) {
      c.counterOffset = p.codec.counterOffset + static_cast<uint32_t>((q.t0 + t) * R + q.r0);
      encode(slab.data() + t * n, codes + (q.t0 + t) * R + q.r0, 1, n, c, 1);
    }
  }
  noMagnitude = 0;
  for (int64_t t = 0; t < len; ++t) {
    const uint8_t* out = codes + (q.t0 + t) * R + q.r0;
    const float* v = slab.data() + t * n;
    int64_t m = 0;
    for (int64_t r = 0; r < n; ++r) m += ((out[r] & p.magnitudeMask) == 0) & (v[r] == v[r]);
    noMagnitude += m;
  }
}

}  // namespace

void blockQuantize(const float* values, uint8_t* codes, float* scales, const BlockQuantParams& p, int64_t out[3], int threads) {
  out[0] = out[1] = out[2] = 0;
  if (p.rows == 0 || p.k == 0) return;
  const int64_t kBlocks = (p.k + p.blockK - 1) / p.blockK;
  const int64_t rowBlocks = (p.rows + p.blockRows - 1) / p.blockRows;
  // Pieces: K-blocks cut into spans of at most 1024 products, times chunks of whole block rows of
  // about 4096 rows, so that long blocks (a row-wise scale over all of K) spread over the threads.
  const int64_t chunkRows = p.blockRows >= 4096 ? p.blockRows : ((4096 + p.blockRows - 1) / p.blockRows) * p.blockRows;
  const int64_t rChunks = (p.rows + chunkRows - 1) / chunkRows;
  const int64_t span = p.blockK < 1024 ? p.blockK : 1024;
  const int64_t kSpans = (p.blockK + span - 1) / span;
  std::vector<Piece> pieces;
  for (int64_t kb = 0; kb < kBlocks; ++kb) {
    const int64_t k0 = kb * p.blockK, k1 = k0 + p.blockK < p.k ? k0 + p.blockK : p.k;
    for (int64_t s = 0; s < kSpans; ++s) {
      const int64_t t0 = k0 + s * span;
      if (t0 >= k1) break;
      for (int64_t rc = 0; rc < rChunks; ++rc) {
        const int64_t r0 = rc * chunkRows;
        pieces.push_back({kb, t0, t0 + span < k1 ? t0 + span : k1, r0, r0 + chunkRows < p.rows ? r0 + chunkRows : p.rows});
      }
    }
  }
  const int used = p.rows * p.k < 32768 ? 1 : threads;
  if (kSpans == 1) {
    // Every piece holds whole blocks: one pass each (gather, amax, scales, encode).
    std::vector<int64_t> nonFinite(pieces.size(), 0), elements(pieces.size(), 0), zeros(pieces.size(), 0), nan(pieces.size(), 0),
        noMagnitude(pieces.size(), 0);
    parallelFor(static_cast<int64_t>(pieces.size()), used, [&](int64_t i) {
      const Piece& q = pieces[i];
      const int64_t n = q.r1 - q.r0, len = q.t1 - q.t0;
      std::vector<float> slab(static_cast<size_t>(len * n)), rowMax(static_cast<size_t>(n), 0.0f), rowScale(static_cast<size_t>(n));
      gather(values, p, q, slab.data());
      int64_t bad = 0, zero = 0;
      for (int64_t t = 0; t < len; ++t) {
        const float* v = slab.data() + t * n;
        for (int64_t r = 0; r < n; ++r) {
          const float a = std::fabs(v[r]);
          const bool finite = a <= 3.4028234663852886e38f;
          bad += !finite;
          zero += a == 0.0f;
          const float f = finite ? a : 0.0f;
          rowMax[r] = f > rowMax[r] ? f : rowMax[r];
        }
      }
      for (int64_t b0 = q.r0; b0 < q.r1; b0 += p.blockRows) {
        const int64_t b1 = b0 + p.blockRows < q.r1 ? b0 + p.blockRows : q.r1;
        float amax = 0.0f;
        for (int64_t r = b0; r < b1; ++r) amax = rowMax[r - q.r0] > amax ? rowMax[r - q.r0] : amax;
        const float scale = blockScale(amax, p);
        scales[q.kb * rowBlocks + b0 / p.blockRows] = scale;
        for (int64_t r = b0; r < b1; ++r) rowScale[r - q.r0] = scale;
      }
      pieceEncode(values, codes, p, q, rowScale.data(), nan[i], noMagnitude[i], &slab);
      nonFinite[i] = bad;
      zeros[i] = zero;
      elements[i] = len * n;
    });
    for (size_t i = 0; i < pieces.size(); ++i) {
      out[0] += nonFinite[i];
      out[1] += elements[i] - zeros[i] - nan[i];
      out[2] += noMagnitude[i] - zeros[i];
    }
    return;
  }
  // Phase 1: each piece's row maxima.
  std::vector<std::vector<float>> maxima(pieces.size());
  std::vector<Counts> counts(pieces.size());
  std::vector<int64_t> zeros(pieces.size(), 0);
  parallelFor(static_cast<int64_t>(pieces.size()), used, [&](int64_t i) {
    const Piece& q = pieces[i];
    maxima[i].resize(static_cast<size_t>(q.r1 - q.r0));
    counts[i] = pieceMax(values, p, q, maxima[i].data(), zeros[i]);
  });
  // The block scales, from the pieces' maxima (max is exact in any order).
  std::vector<float> blockMax(static_cast<size_t>(kBlocks * rowBlocks), 0.0f);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece& q = pieces[i];
    for (int64_t r = q.r0; r < q.r1; ++r) {
      float& m = blockMax[q.kb * rowBlocks + r / p.blockRows];
      m = maxima[i][r - q.r0] > m ? maxima[i][r - q.r0] : m;
    }
  }
  for (int64_t b = 0; b < kBlocks * rowBlocks; ++b) scales[b] = blockScale(blockMax[b], p);
  // Phase 2: encode.
  std::vector<int64_t> nan(pieces.size(), 0), noMagnitude(pieces.size(), 0);
  parallelFor(static_cast<int64_t>(pieces.size()), used, [&](int64_t i) {
    const Piece& q = pieces[i];
    std::vector<float> rowScale(static_cast<size_t>(q.r1 - q.r0));
    for (int64_t r = q.r0; r < q.r1; ++r) rowScale[r - q.r0] = scales[q.kb * rowBlocks + r / p.blockRows];
    pieceEncode(values, codes, p, q, rowScale.data(), nan[i], noMagnitude[i]);
  });
  for (size_t i = 0; i < pieces.size(); ++i) {
    const int64_t elements = (pieces[i].t1 - pieces[i].t0) * (pieces[i].r1 - pieces[i].r0);
    out[0] += counts[i].nonFinite;
    out[1] += elements - zeros[i] - nan[i];
    out[2] += noMagnitude[i] - zeros[i];
  }
}

// A power of two in [2^-127, 2^127] (2^-127 is a float32 subnormal), from the float's fields: its
// reciprocal is exact and finite, so x * (1 / s) is the same real number as x / s and rounds the
// same.
static bool isPowerOfTwo(float s) {
  const uint32_t u = bitsOf(s), exponent = u >> 23, mantissa = u & 0x7fffffu;
  return (exponent >= 1 && exponent <= 254 && mantissa == 0) || u == 0x00400000u;
}

void blockScaleAdd(const float* partial, float* acc, int64_t m, int64_t n, const float* sa, int64_t blockRowsA, const float* sb,
                   int64_t blockRowsB, const CodecParams* outer, const float* lut, int threads) {
  std::vector<float> column(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) column[j] = sb[j / blockRowsB];
  const float* b = column.data();
  // A power-of-two divisor s has an exact reciprocal (2^-127 included, a float32 subnormal), and
  // x * (1 / s) is the same real number as x / s, so it rounds the same: multiply instead.
  bool reciprocal = true;
  for (int64_t j = 0; j < n && reciprocal; ++j) reciprocal = isPowerOfTwo(b[j]);
  for (int64_t i = 0; i < (m + blockRowsA - 1) / blockRowsA && reciprocal; ++i) reciprocal = isPowerOfTwo(sa[i]);
  std::vector<float> inverse(reciprocal ? static_cast<size_t>(n) : 0);
  for (int64_t j = 0; reciprocal && j < n; ++j) inverse[j] = 1.0f / b[j];
  const float* rb = inverse.data();
  parallelFor(m, m * n < 32768 ? 1 : threads, [&](int64_t i) {
    const float a = sa[i / blockRowsA];
    const float* p = partial + i * n;
    float* c = acc + i * n;
    if (!lut && reciprocal) {
      const float ra = 1.0f / a;
      for (int64_t j = 0; j < n; ++j) c[j] = c[j] + (p[j] * ra) * rb[j];
    } else if (!lut) {
      for (int64_t j = 0; j < n; ++j) c[j] = c[j] + (p[j] / a) / b[j];
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const float sum = c[j] + (p[j] / a) / b[j];
        c[j] = lut[codec_core::encodeOne<kNearest>(bitsOf(sum), *outer, 0)];
      }
    }
  });
}

void runScales(const BlockRuns& g, int64_t m, int64_t n, int threads, RunScales& r) {
  const int64_t rowBlocksA = (m + g.blockRowsA - 1) / g.blockRowsA, rowBlocksB = (n + g.blockRowsB - 1) / g.blockRowsB;
  r.rows.resize(static_cast<size_t>(g.runs * m));
  r.cols.resize(static_cast<size_t>(g.runs * n));
  r.reciprocal.resize(static_cast<size_t>(g.runs));
  parallelFor(g.runs, g.runs * (m + n) < 65536 ? 1 : threads, [&](int64_t run) {
    const int64_t k0 = run == 0 ? 0 : g.ends[run - 1];
    const float* sa = g.scalesA + (k0 / g.blockKA) * rowBlocksA;
    const float* sb = g.scalesB + (k0 / g.blockKB) * rowBlocksB;
    float* rows = r.rows.data() + run * m;
    float* cols = r.cols.data() + run * n;
    bool pow2 = true;
    for (int64_t i = 0; i < m; ++i) pow2 &= isPowerOfTwo(rows[i] = sa[i / g.blockRowsA]);
    for (int64_t j = 0; j < n; ++j) pow2 &= isPowerOfTwo(cols[j] = sb[j / g.blockRowsB]);
    r.reciprocal[run] = pow2;
    if (pow2) {
      for (int64_t i = 0; i < m; ++i) rows[i] = 1.0f / rows[i];
      for (int64_t j = 0; j < n; ++j) cols[j] = 1.0f / cols[j];
    }
  });
}

// On the GEMM's packed panels and register tiles (sgemmRuns): A's codes are op(A) transposed
// (K x m), B's are K x n; both decoded while packing.
void blockGemmFp32(const BlockGemmFp32Args& g, int threads) {
  static thread_local RunScales s;  // kept between calls: no fresh pages every time
  runScales(g.blocks, g.m, g.n, threads, s);
  GemmArgs args{};
  args.transA = true;
  args.transB = false;
  args.m = g.m;
  args.n = g.n;
  args.k = g.k;
  args.alpha = 1.0f;
  args.lda = g.m;
  args.ldb = g.n;
  args.beta = 0.0f;
  args.c = g.c;
  args.ldc = g.n;
  args.aCodes = g.a;
  args.aLut = g.aLut;
  args.bCodes = g.b;
  args.bLut = g.bLut;
  sgemmRuns(args, RunScaling{g.blocks.ends, g.blocks.runs, s.rows.data(), s.cols.data(), s.reciprocal.data()}, threads);
}

}  // namespace octet
