#include "winograd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "channels_last.h"
#include "cpu.h"
#include "gemm_kernels.h"
#include "parallel.h"
#include "scratch.h"

namespace octet {
namespace {

using gemm_detail::KernelSpec;

// The transforms of F(m x m, 3 x 3) (Lavin and Gray 2016), for the cross-correlation CNNs call
// convolution: B^T (input), G (kernel) and A^T (output), alpha = m + 2 points.
template <int M>
struct Transforms;

template <>
struct Transforms<2> {
  static constexpr int kAlpha = 4;
  static constexpr float BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
  static constexpr double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
};

template <>
struct Transforms<4> {
  static constexpr int kAlpha = 6;
  static constexpr float BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float AT[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},          {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
};

// out[i][lane] = sum over r of T[i][r] * in[r][lane], terms with a zero coefficient left out, in
// r order: the rows of a transform applied to L lanes at once. (Unrolled, the zero tests fold.)
template <int Rows, int Cols, int L>
__attribute__((always_inline)) inline void applyRows(const float (&T)[Rows][Cols], const float* in, int64_t inStride, float* out,
                                                     int64_t outStride) {
#pragma GCC unroll 8
  for (int i = 0; i < Rows; ++i) {
    float acc[L];
    bool started = false;
#pragma GCC unroll 8
    for (int r = 0; r < Cols; ++r) {
      const float c = T[i][r];
      if (c == 0.0f) continue;
      const float* v = in + r * inStride;
      if (!started) {
        for (int l = 0; l < L; ++l) acc[l] = c == 1.0f ? v[l] : c == -1.0f ? -v[l] : c * v[l];
        started = true;
      } else {
        for (int l = 0; l < L; ++l) acc[l] = acc[l] + (c == 1.0f ? v[l] : c == -1.0f ? -v[l] : c * v[l]);
      }
    }
    float* o = out + i * outStride;
    for (int l = 0; l < L; ++l) o[l] = started ? acc[l] : 0.0f;
  }
}

// out = T in T^T for L lanes, in two passes of applyRows: in[r][s] at in + (r * Cols + s) *
// inStride, out[i][j] at out + (i * Rows + j) * outStride. Every transform here is one: the input's
// B^T d B, the output's A^T m A, the kernels' G g G^T and the output gradient's A dy A^T.
// twoSided with in[r][s] at in + r * rowStride + s * colStride (a patch read in place, say from
// channel-last rows).
template <int Rows, int Cols, int L>
__attribute__((always_inline)) inline void twoSidedAt(const float (&T)[Rows][Cols], const float* in, int64_t rowStride, int64_t colStride, float* out,
                                                      int64_t outStride) {
  float t[Cols * Rows * L];  // t[i][s] = sum_r T[i][r] in[r][s], stored t[(s * Rows + i) * L]
#pragma GCC unroll 8
  for (int s = 0; s < Cols; ++s) applyRows<Rows, Cols, L>(T, in + s * colStride, rowStride, t + s * Rows * L, L);
  // out[i][j] = sum_s T[j][s] t[i][s]
  for (int i = 0; i < Rows; ++i) applyRows<Rows, Cols, L>(T, t + i * L, Rows * L, out + i * Rows * outStride, outStride);
}

template <int Rows, int Cols, int L>
__attribute__((always_inline)) inline void twoSided(const float (&T)[Rows][Cols], const float* in, int64_t inStride, float* out, int64_t outStride) {
  twoSidedAt<Rows, Cols, L>(T, in, Cols * inStride, inStride, out, outStride);
}

// v = B^T d B for L lanes: d[r][s] at d + (r * A + s) * L; v[i][j] at v + (i * A + j) * vStride.
template <int M, int L>
__attribute__((always_inline)) inline void inputTransform(const float* d, float* v, int64_t vStride) {
  twoSided<M + 2, M + 2, L>(Transforms<M>::BT, d, L, v, vStride);
}

// Y = A^T m A for L lanes: m[i][j] at m + (i * A + j) * mStride; Y[a][b] at y + (a * M + b) * L.
template <int M, int L>
__attribute__((always_inline)) inline void outputTransform(const float* m, int64_t mStride, float* y) {
  twoSided<M, M + 2, L>(Transforms<M>::AT, m, mStride, y, L);
}

// A = (A^T)^T, the output-gradient side's transform (alpha x m).
template <int M>
struct TransposedAT {
  static constexpr int A = M + 2;
  struct Matrix {
    float m[A][M];
  };
  static constexpr Matrix value = [] {
    Matrix r{};
    for (int i = 0; i < A; ++i)
      for (int a = 0; a < M; ++a) r.m[i][a] = Transforms<M>::AT[a][i];
    return r;
  }();
};

// inputTransform of a patch read in place: d[r][s] (L lanes) at d + r * rowStride + s * colStride.
template <int M, int L>
__attribute__((always_inline)) inline void inputTransformAt(const float* d, int64_t rowStride, int64_t colStride, float* v, int64_t vStride) {
  twoSidedAt<M + 2, M + 2, L>(Transforms<M>::BT, d, rowStride, colStride, v, vStride);
}

// dU-side transform of an output-gradient tile: Yhat = A dy A^T (alpha x alpha from m x m), for L
// lanes: dy[a][b] at dy + a * rowStride + b * colStride; Yhat[i][j] at out + (i * A + j) * outStride.
template <int M, int L>
__attribute__((always_inline)) inline void gradientTransformAt(const float* dy, int64_t rowStride, int64_t colStride, float* out, int64_t outStride) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  const auto& transposed = TransposedAT<M>::value;
  twoSidedAt<A, M, L>(transposed.m, dy, rowStride, colStride, out, outStride);
}

// Row I of the transformed tile alone, with inputTransformAt's and gradientTransformAt's
// arithmetic for that row (each output element's sum is the same; the rows do not share work
// beyond the channel-last patch they read): v[I][j] at v + (I * A + j) * vStride. Threads of the
// weight gradient split the rows of the points between them.
template <int M, int L, int I>
__attribute__((always_inline)) inline void inputTransformRowAt(const float* d, int64_t rowStride, int64_t colStride, float* v, int64_t vStride) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  static constexpr auto row = [] {
    struct {
      float m[1][A];
    } r{};
    for (int b = 0; b < A; ++b) r.m[0][b] = T::BT[I][b];
    return r;
  }();
  float t[A * L];  // t[s] = sum_r BT[I][r] d[r][s]
#pragma GCC unroll 8
  for (int s = 0; s < A; ++s) applyRows<1, A, L>(row.m, d + s * colStride, rowStride, t + s * L, L);
  applyRows<A, A, L>(T::BT, t, L, v + I * A * vStride, vStride);
}

template <int M, int L, int I>
__attribute__((always_inline)) inline void gradientTransformRowAt(const float* dy, int64_t rowStride, int64_t colStride, float* out, int64_t outStride) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  const auto& transposed = TransposedAT<M>::value;
  static constexpr auto row = [] {
    struct {
      float m[1][M];
    } r{};
    for (int a = 0; a < M; ++a) r.m[0][a] = T::AT[a][I];
    return r;
  }();
  float t[M * L];  // t[s] = sum_a A[I][a] dy[a][s]
#pragma GCC unroll 8
  for (int s = 0; s < M; ++s) applyRows<1, M, L>(row.m, dy + s * colStride, rowStride, t + s * L, L);
  applyRows<A, M, L>(transposed.m, t, L, out + I * A * outStride, outStride);
}

// Rows [i0, i1) of the input transform, or of the output-gradient transform.
template <int M, int L, int I = 0>
__attribute__((always_inline)) inline void inputTransformRows(int i0, int i1, const float* d, int64_t rowStride, int64_t colStride, float* v, int64_t vStride) {
  if constexpr (I < M + 2) {
    if (I >= i0 && I < i1) inputTransformRowAt<M, L, I>(d, rowStride, colStride, v, vStride);
    inputTransformRows<M, L, I + 1>(i0, i1, d, rowStride, colStride, v, vStride);
  }
}

template <int M, int L, int I = 0>
__attribute__((always_inline)) inline void gradientTransformRows(int i0, int i1, const float* dy, int64_t rowStride, int64_t colStride, float* out, int64_t outStride) {
  if constexpr (I < M + 2) {
    if (I >= i0 && I < i1) gradientTransformRowAt<M, L, I>(dy, rowStride, colStride, out, outStride);
    gradientTransformRows<M, L, I + 1>(i0, i1, dy, rowStride, colStride, out, outStride);
  }
}

// The kernels of rows [k0, k1) transformed, U[xi][k][c] = (G g G^T)[xi] for g = w[k][c], stored
// as the micro-kernel's A panels: U[xi] at u + xi * kPad * C, row panel q (rows q * MR ..) at
// + q * MR * C, element (k, c) at + c * MR + k % MR. L kernels at a time, in float.
template <int M, int L>
__attribute__((always_inline)) inline void transformKernels(const float* w, bool flipped, int64_t k0, int64_t k1, int64_t K, int64_t C, int mr, int64_t kPad,
                                                            float* u) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  static constexpr auto g = [] {
    struct {
      float m[A][3];
    } r{};
    for (int i = 0; i < A; ++i)
      for (int b = 0; b < 3; ++b) r.m[i][b] = static_cast<float>(T::G[i][b]);
    return r;
  }();
  const int64_t first = k0 * C, last = k1 * C;
  for (int64_t e0 = first; e0 < last; e0 += L) {
    const int lanes = static_cast<int>(std::min<int64_t>(L, last - e0));
    alignas(64) float in[9 * L];
    for (int l = 0; l < L; ++l) {
      if (l >= lanes) {
        for (int e = 0; e < 9; ++e) in[e * L + l] = 0.0f;
      } else if (flipped) {
        // Kernel (k, c) of the input gradient: w[c][k], taps reversed.
        const float* kernel = w + (((e0 + l) % C) * K + (e0 + l) / C) * 9;
        for (int e = 0; e < 9; ++e) in[e * L + l] = kernel[8 - e];
      } else {
        for (int e = 0; e < 9; ++e) in[e * L + l] = w[(e0 + l) * 9 + e];
      }
    }
    // u = G g G^T
    alignas(64) float out[A * A * L];
    twoSided<A, 3, L>(g.m, in, L, out, L);
    // Point by point, so that the stores of one point land close together.
    int64_t slot[L];
    for (int l = 0; l < lanes; ++l) {
      const int64_t k = (e0 + l) / C, ch = (e0 + l) % C;
      slot[l] = (k / mr) * mr * C + ch * mr + k % mr;
    }
    for (int xi = 0; xi < A * A; ++xi) {
      float* dst = u + xi * kPad * C;
      for (int l = 0; l < lanes; ++l) dst[slot[l]] = out[xi * L + l];
    }
  }
}

// Tile rows and columns of the output (the last ones may overhang it).
inline int64_t tileRows(const WinogradConv& c) { return (c.outH + c.tile - 1) / c.tile; }
inline int64_t tileCols(const WinogradConv& c) { return (c.outW + c.tile - 1) / c.tile; }

// Where a tile's input patch and output block lie.
struct TilePlace {
  int64_t image, y0, x0;  // patch origin in input coordinates (may be negative: padding)
};

inline TilePlace placeOf(const WinogradConv& c, int64_t tile) {
  const int64_t th = tileRows(c), tw = tileCols(c);
  const int64_t n = tile / (th * tw), r = tile % (th * tw);
  return {n, (r / tw) * c.tile - c.padH, (r % tw) * c.tile - c.padW};
}

// A block's input images with their padding written out as zeros, and enough zeros past the
// bottom and right edges for every tile (th * m + 2 rows, tw * m + 2 columns per plane): every
// tile's patch is then a plain alpha x alpha block, with no bounds to check. Only the images of
// the block's tiles are padded (image n at data + (n - first) * image), and of those only the rows
// its tiles read, so the copy stays in the thread's cache for the gathers that follow.
struct PaddedImages {
  float* data;
  int64_t first;                        // first image held
  int64_t height, width, plane, image;  // padded rows, columns, floats per plane and per image
};

inline PaddedImages paddedGeometry(const WinogradConv& c) {
  const int64_t hp = tileRows(c) * c.tile + 2, wp = tileCols(c) * c.tile + 2;
  return {nullptr, 0, hp, wp, hp * wp, c.channels * hp * wp};
}

// Images [n0, n1) of the tiles [t0, t0 + count).
inline void blockImages(const WinogradConv& c, int64_t t0, int64_t count, int64_t& n0, int64_t& n1) {
  const int64_t perImage = tileRows(c) * tileCols(c);
  n0 = t0 / perImage;
  n1 = (t0 + count - 1) / perImage + 1;
}

// Share `part` of `parts` of the planes of the block's images: the padded rows the tiles
// [t0, t0 + count) read, into pad.data (pad.first = the block's first image).
inline void padBlock(const WinogradConv& c, const float* x, const PaddedImages& pad, int64_t t0, int64_t count, int64_t part, int64_t parts) {
  const int64_t tw = tileCols(c), perImage = tileRows(c) * tw;
  int64_t n0, n1;
  blockImages(c, t0, count, n0, n1);
  const int64_t planes = (n1 - n0) * c.channels;
  for (int64_t q = planes * part / parts; q < planes * (part + 1) / parts; ++q) {
    const int64_t n = n0 + q / c.channels, ch = q % c.channels;
    // The tile rows of this image in the block, and the padded rows they read.
    const int64_t first = std::max(t0, n * perImage) - n * perImage, last = std::min(t0 + count, (n + 1) * perImage) - 1 - n * perImage;
    const int64_t r0 = (first / tw) * c.tile, r1 = (last / tw) * c.tile + c.tile + 2;
    const float* src = x + n * c.xImageStride + ch * c.height * c.width;
    float* dst = pad.data + (n - pad.first) * pad.image + ch * pad.plane;
    for (int64_t r = r0; r < r1; ++r) {
      float* row = dst + r * pad.width;
      const int64_t sr = r - c.padH;
      if (sr < 0 || sr >= c.height) {
        std::memset(row, 0, sizeof(float) * pad.width);
        continue;
      }
      std::memset(row, 0, sizeof(float) * c.padW);
      std::memcpy(row + c.padW, src + sr * c.width, sizeof(float) * c.width);
      std::memset(row + c.padW + c.width, 0, sizeof(float) * (pad.width - c.padW - c.width));
    }
  }
}

#ifdef OCTET_X86
// The AVX-512 gathers for 32 lanes, 16 an instruction (a function of its own: intrinsics can only
// be inlined into code built for their instruction set).
template <int A>
__attribute__((target("avx512f"), noinline)) void gatherPatches32(const float* data, const int32_t* at, int64_t rowStride, float* d) {
  const __m512i lo = _mm512_loadu_si512(at), hi = _mm512_loadu_si512(at + 16);
  for (int r = 0; r < A; ++r)
    for (int s = 0; s < A; ++s) {
      const float* p = data + r * rowStride + s;
      float* out = d + (r * A + s) * 32;
      _mm512_storeu_ps(out, _mm512_i32gather_ps(lo, p, 4));
      _mm512_storeu_ps(out + 16, _mm512_i32gather_ps(hi, p, 4));
    }
}
#endif

// d[r][s][lane] = patch element (r, s) for every lane, the lane's patch at data + at[lane].
template <int A, int L>
__attribute__((always_inline)) inline void gatherPatchesOf(const float* data, const int32_t* at, int64_t rowStride, float* d) {
#ifdef OCTET_X86
  if constexpr (L == 32) {
    gatherPatches32<A>(data, at, rowStride, d);
    return;
  }
#endif
  for (int r = 0; r < A; ++r)
    for (int s = 0; s < A; ++s) {
      const float* p = data + r * rowStride + s;
      float* out = d + (r * A + s) * L;
      for (int l = 0; l < L; ++l) out[l] = p[at[l]];
    }
}

// Per-thread scratch, kept from call to call.
thread_local AlignedFloats tlsV, tlsM, tlsU, tlsPadded, tlsDu, tlsRowsX, tlsRowsDy;

// Tiles per forward block, in whole panels of L tiles. Every block reads all of U (alpha^2 K C
// floats), so when U fits the L2 cache (1 MB of its 2) a block's transformed input and products
// (alpha^2 (C + K) floats per tile) take the other 1 MB and everything stays in L2; when U does
// not fit, blocks are as large as the threads' shares allow, so U streams from L3 as few times
// as possible, with one point's slice (U, V and M for one xi) within L2.
int64_t blockTiles(int alpha, int64_t C, int64_t K, int64_t tiles, int L, int threads) {
  const int64_t uBytes = int64_t(alpha) * alpha * K * C * 4;
  const int64_t share = (tiles + threads - 1) / threads;
  int64_t panels;
  if (uBytes <= (int64_t(1) << 20)) {
    panels = std::max<int64_t>(1, (int64_t(1) << 20) / (int64_t(alpha) * alpha * (C + K) * 4 * L));
    panels = std::min(panels, std::max<int64_t>(1, (share / 2 + L - 1) / L));  // two blocks per thread at least
  } else {
    const int64_t slice = (int64_t(2) << 20) - K * C * 4;
    panels = std::max<int64_t>(1, slice / ((C + K) * 4 * L));
    panels = std::min(panels, std::max<int64_t>(1, (share + L - 1) / L));
  }
  return panels * L;
}

// What a forward call shares with its blocks.
struct ForwardPlan {
  const WinogradConv* c;
  const float* x;
  PaddedImages pad;  // the geometry only: each block pads its own
  const float* w;
  float* y;
  const KernelSpec* ks;
  int64_t kPad;
  float* up;  // U, packed (as B panels of nr columns where channelsLast)
  int64_t tiles, nb;
  int threads;
  bool channelsLast;  // forwardBlockChannelsLast, on the kernel's direct reader
};

// What a weight-gradient call shares with its threads.
struct GradientPlan {
  const WinogradConv* c;
  const float* x;
  const float* dy;
  const KernelSpec* ks;
  int64_t kPad, cPad;  // K rounded up to the kernel's MR, C to its NR
  int64_t group;       // tiles per group: the k of each group's products
  int threads;
};

// Thread `part` of the kernels' transform: rows [K part / threads, K (part + 1) / threads).
template <int M, int L>
__attribute__((always_inline)) inline void kernelPartBody(const ForwardPlan& p, int64_t part) {
  const int64_t K = p.c->outChannels;
  const int64_t k0 = K * part / p.threads, k1 = K * (part + 1) / p.threads;
  if (k1 > k0) transformKernels<M, L>(p.w, p.c->flipped, k0, k1, K, p.c->channels, p.channelsLast ? p.ks->nr : p.ks->mr, p.kPad, p.up);
}

// One block of tiles: input transform, the alpha^2 products, output transform.
template <int M, int L>
__attribute__((always_inline)) inline void forwardBlockBody(const ForwardPlan& p, int64_t b) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  constexpr int X = A * A;
  const WinogradConv& c = *p.c;
  const KernelSpec& ks = *p.ks;
  const int mr = ks.mr;
  const int64_t C = c.channels, K = c.outChannels;
  const int64_t outPlane = c.outH * c.outW;
  const int64_t t0 = b * p.nb, count = std::min(p.nb, p.tiles - t0);
  const int64_t panels = (count + L - 1) / L, width = panels * L;
  float* v = tlsV.get(static_cast<size_t>(X * width * C));
  float* m = tlsM.get(static_cast<size_t>(X * K * width));
  PaddedImages pad = p.pad;
  int64_t n1;
  blockImages(c, t0, count, pad.first, n1);
  pad.data = tlsPadded.get(static_cast<size_t>((n1 - pad.first) * pad.image));
  padBlock(c, p.x, pad, t0, count, 0, 1);
  alignas(64) float d[X * L];
  // Input transform: panel pn, channel ch -> V[xi] panel at ((xi * panels + pn) * C + ch) * L.
  for (int64_t pn = 0; pn < panels; ++pn) {
    // Each lane's patch in the padded images (lanes past the block repeat the first: their
    // columns of the products are never stored).
    int32_t at[L];
    const int lanes = static_cast<int>(std::min<int64_t>(L, count - pn * L));
    for (int l = 0; l < L; ++l) {
      const TilePlace q = placeOf(c, t0 + pn * L + (l < lanes ? l : 0));
      at[l] = static_cast<int32_t>((q.image - pad.first) * pad.image + (q.y0 + c.padH) * pad.width + q.x0 + c.padW);
    }
    for (int64_t ch = 0; ch < C; ++ch) {
      gatherPatchesOf<A, L>(pad.data + ch * pad.plane, at, pad.width, d);
      inputTransform<M, L>(d, v + (pn * C + ch) * L, panels * C * L);
    }
  }
  // The products: M[xi] (K x width, row stride width) = U[xi] V[xi], one chain over C per element.
  for (int xi = 0; xi < X; ++xi) {
    for (int64_t ir = 0; ir < K; ir += mr) {
      const int rows = static_cast<int>(std::min<int64_t>(mr, K - ir));
      const float* ap = p.up + xi * p.kPad * C + ir * C;
      for (int64_t pn = 0; pn < panels; ++pn) {
        const float* bp = v + (xi * panels + pn) * C * L;
        float* cp = m + (xi * K + ir) * width + pn * L;
        for (int64_t pc = 0; pc < C; pc += ks.kc) {
          const int64_t kc = std::min(ks.kc, C - pc);
          ks.micro(kc, ap + pc * mr, bp + pc * L, cp, width, 1.0f, pc == 0 ? 0.0f : 1.0f, rows, L);
        }
      }
    }
  }
  // Output transform and scatter.
  alignas(64) float out[M * M * L];
  for (int64_t pn = 0; pn < panels; ++pn) {
    const int lanes = static_cast<int>(std::min<int64_t>(L, count - pn * L));
    int64_t base[L];
    int rowsIn[L], colsIn[L];
    for (int l = 0; l < lanes; ++l) {
      const TilePlace q = placeOf(c, t0 + pn * L + l);
      const int64_t oy = q.y0 + c.padH, ox = q.x0 + c.padW;
      base[l] = q.image * c.yImageStride + oy * c.outW + ox;
      rowsIn[l] = static_cast<int>(std::min<int64_t>(M, c.outH - oy));
      colsIn[l] = static_cast<int>(std::min<int64_t>(M, c.outW - ox));
    }
    for (int64_t k = 0; k < K; ++k) {
      outputTransform<M, L>(m + k * width + pn * L, K * width, out);
      float* plane = p.y + k * outPlane;
      for (int l = 0; l < lanes; ++l) {
        float* dst = plane + base[l];
        if (rowsIn[l] == M && colsIn[l] == M) {
          for (int a = 0; a < M; ++a)
            for (int bb = 0; bb < M; ++bb) dst[a * c.outW + bb] = out[(a * M + bb) * L + l];
        } else {
          for (int a = 0; a < rowsIn[l]; ++a)
            for (int bb = 0; bb < colsIn[l]; ++bb) dst[a * c.outW + bb] = out[(a * M + bb) * L + l];
        }
      }
    }
  }
}

// channelsLast16 with the AVX-512 transposes in the wide variant, else the best this CPU has
// (the AVX2 variant's 8 x 8 transposes; the plain loop where the kernel family is portable).
template <bool Wide>
__attribute__((always_inline)) inline void turnChannelsLast(const float* src, int64_t planeStride, int64_t nx, int nc, float* dst) {
#ifdef OCTET_X86
  if constexpr (Wide) {
    channelsLast16Avx512(src, planeStride, nx, nc, dst);
    return;
  }
#endif
  channelsLast16Best(src, planeStride, nx, nc, dst);
}

// The alpha input rows of a run of `run` tiles of tile row ty of image n, starting at tile column
// tx0 (padded rows ty*m + r, padded columns tx0*m + u for u < run*m + 2, zeros for the padding),
// turned channel-last 16 channels at a time: xr[(chunk * A + r) * inCols + u][16].
template <int M, bool Wide>
__attribute__((always_inline)) inline void turnInputRows(const WinogradConv& c, const float* x, int64_t n, int64_t ty, int64_t tx0, int64_t run, float* xr) {
  constexpr int A = M + 2, TL = 16;
  const int64_t C = c.channels, cChunks = (C + TL - 1) / TL, inPlane = c.height * c.width;
  const int64_t inCols = run * M + 2, px0 = tx0 * M;
  const float* image = x + n * c.xImageStride;
  // Columns [uA, uB) of the run lie inside the image; the others are padding.
  const int64_t uA = std::clamp<int64_t>(c.padW - px0, 0, inCols), uB = std::clamp<int64_t>(c.width + c.padW - px0, uA, inCols);
  for (int64_t chunk = 0; chunk < cChunks; ++chunk) {
    const int nc = static_cast<int>(std::min<int64_t>(TL, C - chunk * TL));
    for (int r = 0; r < A; ++r) {
      float* row = xr + (chunk * A + r) * inCols * TL;
      const int64_t sy = ty * M + r - c.padH;
      if (sy < 0 || sy >= c.height) {
        std::memset(row, 0, sizeof(float) * inCols * TL);
        continue;
      }
      std::memset(row, 0, sizeof(float) * uA * TL);
      turnChannelsLast<Wide>(image + chunk * TL * inPlane + sy * c.width + (px0 + uA - c.padW), inPlane, uB - uA, nc, row + uA * TL);
      std::memset(row + uB * TL, 0, sizeof(float) * (inCols - uB) * TL);
    }
  }
}

#ifdef OCTET_X86
// One block of tiles of the forward without gathers (the AVX-512 family, whose micro-kernels read
// A in place): each run of tiles of one tile row has its input rows turned
// channel-last, so the input transform runs on 16 channels as lanes and writes V^T[xi] (tiles x
// C, rows cS apart); the products M^T[xi] = V^T[xi] U^T[xi] (tiles x K) run on that kernel with
// U^T packed as B panels, each element the same chain over the channels in order as the packed
// path's (products commute); the output transform again takes 16 output channels as lanes, and
// each tile row's results turn back into NCHW planes 16 x 16 at a time.
template <int M>
__attribute__((always_inline)) inline void forwardBlockChannelsLast(const ForwardPlan& p, int64_t b) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  constexpr int X = A * A;
  constexpr int TL = 16;
  const WinogradConv& c = *p.c;
  const KernelSpec& ks = *p.ks;
  const int64_t C = c.channels, K = c.outChannels;
  const int64_t cChunks = (C + TL - 1) / TL, kChunks = (K + TL - 1) / TL, cS = cChunks * TL, kS = kChunks * TL;
  const int64_t tw = tileCols(c), perImage = tileRows(c) * tw, outPlane = c.outH * c.outW;
  const int64_t t0 = b * p.nb, count = std::min(p.nb, p.tiles - t0);
  float* vt = tlsV.get(static_cast<size_t>(X * count * cS));
  float* mt = tlsM.get(static_cast<size_t>(X * count * kS));
  // Input transforms, a run of tiles of one tile row at a time.
  for (int64_t q = 0; q < count;) {
    const int64_t tile = t0 + q, n = tile / perImage, ty = (tile % perImage) / tw, tx0 = (tile % perImage) % tw;
    const int64_t run = std::min(count - q, tw - tx0), inCols = run * M + 2;
    float* xr = tlsRowsX.get(static_cast<size_t>(cChunks * A * inCols * TL));
    turnInputRows<M, true>(c, p.x, n, ty, tx0, run, xr);
    for (int64_t j = 0; j < run; ++j, ++q)
      for (int64_t chunk = 0; chunk < cChunks; ++chunk)
        inputTransformAt<M, TL>(xr + (chunk * A * inCols + j * M) * TL, inCols * TL, TL, vt + q * cS + chunk * TL, count * cS);
  }
  // The products: M^T[xi] (count x K, rows kS apart), one chain over C per element.
  const int mr = ks.mr, nr = ks.nr;
  for (int xi = 0; xi < X; ++xi) {
    const float* bpx = p.up + xi * p.kPad * C;
    for (int64_t i0 = 0; i0 < count; i0 += mr) {
      const int rows = static_cast<int>(std::min<int64_t>(mr, count - i0));
      for (int64_t jp = 0; jp < K; jp += nr) {
        const int cols = static_cast<int>(std::min<int64_t>(nr, K - jp));
        for (int64_t pc = 0; pc < C; pc += ks.kc) {
          const int64_t kc = std::min(ks.kc, C - pc);
          ks.direct(kc, vt + (xi * count + i0) * cS + pc, cS, bpx + (jp / nr) * nr * C + pc * nr, mt + (xi * count + i0) * kS + jp, kS, 1.0f,
                    pc == 0 ? 0.0f : 1.0f, rows, cols);
        }
      }
    }
  }
  // Output transforms, a run of tiles of one tile row at a time, turned back into NCHW.
  alignas(64) float out[M * M * TL];
  for (int64_t q = 0; q < count;) {
    const int64_t tile = t0 + q, n = tile / perImage, ty = (tile % perImage) / tw, tx0 = (tile % perImage) % tw;
    const int64_t run = std::min(count - q, tw - tx0), outCols = run * M, ox0 = tx0 * M;
    float* yr = tlsRowsDy.get(static_cast<size_t>(kChunks * M * outCols * TL));
    for (int64_t j = 0; j < run; ++j)
      for (int64_t chunk = 0; chunk < kChunks; ++chunk) {
        outputTransform<M, TL>(mt + (q + j) * kS + chunk * TL, count * kS, out);
        for (int a = 0; a < M; ++a)
          for (int bb = 0; bb < M; ++bb) std::memcpy(yr + ((chunk * M + a) * outCols + j * M + bb) * TL, out + (a * M + bb) * TL, sizeof(float) * TL);
      }
    const int64_t width = std::min<int64_t>(outCols, c.outW - ox0);
    float* image = p.y + n * c.yImageStride;
    for (int64_t chunk = 0; chunk < kChunks; ++chunk) {
      const int nk = static_cast<int>(std::min<int64_t>(TL, K - chunk * TL));
      for (int a = 0; a < M; ++a) {
        const int64_t oy = ty * M + a;
        if (oy >= c.outH) break;
        float* dst = image + chunk * TL * outPlane + oy * c.outW + ox0;
        channelsFirst16Avx512(yr + (chunk * M + a) * outCols * TL, width, nk, dst, outPlane);
      }
    }
    q += run;
  }
}
#endif

// One block of the forward: without gathers where the plan says so (only the AVX-512 variant's
// plans do), else with them.
template <int M, int L>
__attribute__((always_inline)) inline void forwardBlockOf(const ForwardPlan& p, int64_t b) {
#ifdef OCTET_X86
  if constexpr (L == 32) {
    if (p.channelsLast) {
      forwardBlockChannelsLast<M>(p, b);
      return;
    }
  }
#endif
  forwardBlockBody<M, L>(p, b);
}

// Thread `part` of `parts` of the weight gradient: the points xi of rows [i0, i1) of the
// transformed tile (alpha rows in all, split between the threads), over every tile. Tiles go in
// groups of p.group; for each group the thread forms its points of V (every input channel) and
// Yhat (every output channel) into its own packed panels, then adds the group's products to its
// points of dU: each element of dU is one chain of fused multiply-adds over the tiles in order,
// on one thread, whatever the thread count or group size. Within a group, a run of tiles of one
// tile row at a time: the run's input rows (alpha of them, with their padding) and output-gradient
// rows (m, zeros past the output's edge) are first turned channel-last, 16 channels side by side
// (channelsLast16), so each transform reads its patch in place with 16 channels as lanes.
template <int M, bool Wide>
__attribute__((always_inline)) inline void gradientThreadBody(const GradientPlan& p, int64_t part, int64_t parts, float* du) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  constexpr int TL = 16;  // lanes of a transform: 16 channels
  const int i0 = static_cast<int>(A * part / parts), i1 = static_cast<int>(A * (part + 1) / parts);
  if (i1 <= i0) return;
  const int xi0 = i0 * A, points = (i1 - i0) * A;
  const WinogradConv& c = *p.c;
  const KernelSpec& ks = *p.ks;
  const int mr = ks.mr, nr = ks.nr;
  const int64_t C = c.channels, K = c.outChannels, kPad = p.kPad, cPad = p.cPad, G = p.group;
  const int64_t cChunks = (C + TL - 1) / TL, kChunks = (K + TL - 1) / TL;
  const int64_t tw = tileCols(c), perImage = tileRows(c) * tw, tiles = c.batch * perImage;
  const int64_t outPlane = c.outH * c.outW;
  // This thread's panels: point xi (of its own) at vp + (xi - xi0) * vPoint, likewise yp.
  const int64_t vPoint = cPad * G, yPoint = kPad * G;
  float* vp = tlsV.get(static_cast<size_t>(points * vPoint));
  float* yp = tlsM.get(static_cast<size_t>(points * yPoint));
  // Where each chunk's rows go within a tile's column of the A panels: runs within one panel.
  struct Piece {
    int64_t at;  // from the tile's column of the first panel
    int from, len;  // lanes [from, from + len)
  };
  std::vector<std::vector<Piece>> pieces(static_cast<size_t>(kChunks));
  std::vector<char> whole(static_cast<size_t>(kChunks));
  for (int64_t chunk = 0; chunk < kChunks; ++chunk) {
    const int64_t k0 = chunk * TL, kEnd = std::min<int64_t>(k0 + TL, K);
    for (int64_t k = k0; k < kEnd;) {
      const int64_t len = std::min<int64_t>(mr - k % mr, kEnd - k);
      pieces[chunk].push_back({(k / mr) * G * mr + k % mr, static_cast<int>(k - k0), static_cast<int>(len)});
      k += len;
    }
    whole[chunk] = pieces[chunk].size() == 1 && pieces[chunk][0].len == TL;
  }
  const int64_t tailAt = (K / mr) * G * mr + K % mr;  // rows past K: the last panel's slots K % MR on
  alignas(64) float out[A * A * TL];
  for (int64_t g0 = 0; g0 < tiles; g0 += G) {
    const int64_t count = std::min(G, tiles - g0);
    for (int64_t q = 0; q < count;) {
      const int64_t tile = g0 + q, n = tile / perImage, ty = (tile % perImage) / tw, tx0 = (tile % perImage) % tw;
      const int64_t run = std::min(count - q, tw - tx0);
      // Input rows, channel-last.
      const int64_t inCols = run * M + 2;
      float* xr = tlsRowsX.get(static_cast<size_t>(cChunks * A * inCols * TL));
      turnInputRows<M, Wide>(c, p.x, n, ty, tx0, run, xr);
      // Output-gradient rows: output row ty*m + a, columns tx0*m + u for u < outCols.
      const int64_t outCols = run * M, ox0 = tx0 * M;
      float* gr = tlsRowsDy.get(static_cast<size_t>(kChunks * M * outCols * TL));
      const float* grads = p.dy + n * c.yImageStride;
      const int64_t uEnd = std::clamp<int64_t>(c.outW - ox0, 0, outCols);
      for (int64_t chunk = 0; chunk < kChunks; ++chunk) {
        const int nk = static_cast<int>(std::min<int64_t>(TL, K - chunk * TL));
        for (int a = 0; a < M; ++a) {
          float* row = gr + (chunk * M + a) * outCols * TL;
          const int64_t oy = ty * M + a;
          if (oy >= c.outH) {
            std::memset(row, 0, sizeof(float) * outCols * TL);
            continue;
          }
          turnChannelsLast<Wide>(grads + chunk * TL * outPlane + oy * c.outW + ox0, outPlane, uEnd, nk, row);
          std::memset(row + uEnd * TL, 0, sizeof(float) * (outCols - uEnd) * TL);
        }
      }
      for (int64_t j = 0; j < run; ++j, ++q) {
        // V: 16 channels at a time, straight into the B panels.
        for (int64_t chunk = 0; chunk < cChunks; ++chunk) {
          const int64_t c0 = chunk * TL;
          inputTransformRows<M, TL>(i0, i1, xr + (chunk * A * inCols + j * M) * TL, inCols * TL, TL,
                                    vp - xi0 * vPoint + ((c0 / nr) * G + q) * nr + c0 % nr, vPoint);
        }
        // Channels past the last chunk up to the panel's width: zero (never stored, kept finite).
        for (int64_t c0 = cChunks * TL; c0 < cPad; c0 += TL)
          for (int xl = 0; xl < points; ++xl) std::memset(vp + xl * vPoint + ((c0 / nr) * G + q) * nr + c0 % nr, 0, sizeof(float) * TL);
        // Yhat: 16 output channels at a time; row k goes to panel k / MR, slot k % MR.
        for (int64_t chunk = 0; chunk < kChunks; ++chunk) {
          gradientTransformRows<M, TL>(i0, i1, gr + (chunk * M * outCols + j * M) * TL, outCols * TL, TL, out, TL);
          for (int xl = 0; xl < points; ++xl) {
            const float* src = out + (xi0 + xl) * TL;
            float* panelBase = yp + xl * yPoint + q * mr;
            if (whole[chunk]) {
              // The 16 rows in one panel: one copy of a fixed size (inlined).
              std::memcpy(panelBase + pieces[chunk].front().at, src, sizeof(float) * TL);
              continue;
            }
            for (const Piece& piece : pieces[chunk]) {
              // Fixed sizes where the panels' heights give them, so the copies inline.
              float* dst = panelBase + piece.at;
              const float* from = src + piece.from;
              if (piece.len == 8) {
                std::memcpy(dst, from, sizeof(float) * 8);
              } else if (piece.len == 4) {
                std::memcpy(dst, from, sizeof(float) * 4);
              } else {
                std::memcpy(dst, from, sizeof(float) * piece.len);
              }
            }
          }
        }
        if (kPad > K)
          for (int xl = 0; xl < points; ++xl) {
            float* tail = yp + xl * yPoint + q * mr + tailAt;
            for (int64_t e = 0; e < kPad - K; ++e) tail[e] = 0.0f;
          }
      }
    }
    // dU[xi] += Yhat[xi] (K x count) V[xi]^T (count x C): each element's chain goes on.
    for (int xl = 0; xl < points; ++xl) {
      float* dst = du + (xi0 + xl) * K * C;
      for (int64_t ir = 0; ir < K; ir += mr) {
        const int rows = static_cast<int>(std::min<int64_t>(mr, K - ir));
        const float* ap = yp + xl * yPoint + (ir / mr) * G * mr;
        for (int64_t c0 = 0; c0 < C; c0 += nr) {
          const float* bp = vp + xl * vPoint + (c0 / nr) * G * nr;
          ks.micro(count, ap, bp, dst + ir * C + c0, C, 1.0f, g0 == 0 ? 0.0f : 1.0f, rows, static_cast<int>(std::min<int64_t>(nr, C - c0)));
        }
      }
    }
  }
}

// Thread `part` of dW = G^T dU G (rows kc of [K*C) in L-lane chunks, in double, rounded once).
template <int M, int L>
__attribute__((always_inline)) inline void kernelGradientBody(const GradientPlan& p, const float* du, float* dw, int64_t part) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  const int64_t n = p.c->outChannels * p.c->channels;
  const int64_t e0 = n * part / p.threads, e1 = n * (part + 1) / p.threads;
  for (int64_t base = e0; base < e1; base += L) {
    const int lanes = static_cast<int>(std::min<int64_t>(L, e1 - base));
    double u[A * A][L];
    for (int xi = 0; xi < A * A; ++xi) {
      const float* src = du + xi * n + base;
      for (int l = 0; l < L; ++l) u[xi][l] = l < lanes ? src[l] : 0.0;
    }
    double gu[3][A][L];  // G^T dU
    for (int a = 0; a < 3; ++a)
      for (int j = 0; j < A; ++j) {
        for (int l = 0; l < L; ++l) gu[a][j][l] = 0.0;
        for (int i = 0; i < A; ++i) {
          const double g = T::G[i][a];
          if (g == 0.0) continue;
          for (int l = 0; l < L; ++l) gu[a][j][l] += g * u[i * A + j][l];
        }
      }
    double out[9][L];
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) {
        for (int l = 0; l < L; ++l) out[a * 3 + b][l] = 0.0;
        for (int j = 0; j < A; ++j) {
          const double g = T::G[j][b];
          if (g == 0.0) continue;
          for (int l = 0; l < L; ++l) out[a * 3 + b][l] += gu[a][j][l] * g;
        }
      }
    for (int l = 0; l < lanes; ++l)
      for (int e = 0; e < 9; ++e) dw[(base + l) * 9 + e] = static_cast<float>(out[e][l]);
  }
}

// The hot loops of one instruction set: lambdas do not take their enclosing function's target,
// so the parallel loops call these through pointers.
struct Variant {
  int lanes;
  void (*kernelPart)(const ForwardPlan&, int64_t);
  void (*forwardBlock)(const ForwardPlan&, int64_t);
  void (*gradientThread)(const GradientPlan&, int64_t, int64_t, float*);
  void (*kernelGradient)(const GradientPlan&, const float*, float*, int64_t);
};

#define OCTET_WINOGRAD_VARIANT(NAME, ATTR, L)                                                                              \
  template <int M>                                                                                                       \
  ATTR void NAME##KernelPart(const ForwardPlan& p, int64_t part) {                                                       \
    kernelPartBody<M, L>(p, part);                                                                                       \
  }                                                                                                                      \
  template <int M>                                                                                                       \
  ATTR void NAME##ForwardBlock(const ForwardPlan& p, int64_t b) {                                                        \
    forwardBlockOf<M, L>(p, b);                                                                                          \
  }                                                                                                                      \
  template <int M>                                                                                                       \
  ATTR void NAME##GradientThread(const GradientPlan& p, int64_t part, int64_t parts, float* du) {                        \
    gradientThreadBody<M, L == 32>(p, part, parts, du);                                                                  \
  }                                                                                                                      \
  template <int M>                                                                                                       \
  ATTR void NAME##KernelGradient(const GradientPlan& p, const float* du, float* dw, int64_t part) {                      \
    kernelGradientBody<M, L>(p, du, dw, part);                                                                           \
  }                                                                                                                      \
  template <int M>                                                                                                       \
  Variant NAME##Variant() {                                                                                              \
    return {L, NAME##KernelPart<M>, NAME##ForwardBlock<M>, NAME##GradientThread<M>, NAME##KernelGradient<M>};              \
  }

#ifdef OCTET_X86
OCTET_WINOGRAD_VARIANT(avx512, __attribute__((target("avx512f"))), 32)
OCTET_WINOGRAD_VARIANT(avx2, __attribute__((target("avx2,fma"))), 16)
#endif
OCTET_WINOGRAD_VARIANT(portable, , 16)

// The variant whose lane count is the micro-kernel's panel width (32 for AVX-512, 16 otherwise).
Variant variantFor(int tile) {
#ifdef OCTET_X86
  const char* family = gemm_detail::familyName();
  if (std::strcmp(family, "avx512") == 0) return tile == 4 ? avx512Variant<4>() : avx512Variant<2>();
  if (std::strcmp(family, "avx2") == 0) return tile == 4 ? avx2Variant<4>() : avx2Variant<2>();
#endif
  return tile == 4 ? portableVariant<4>() : portableVariant<2>();
}

}  // namespace

void winogradForward(const WinogradConv& c, const float* x, const float* w, float* y, int threads) {
  const Variant v = variantFor(c.tile);
  const int alpha = c.tile + 2, X = alpha * alpha, L = v.lanes;
  const int64_t C = c.channels, K = c.outChannels;
  const int64_t tiles = c.batch * tileRows(c) * tileCols(c);
  const int64_t nb = blockTiles(alpha, C, K, tiles, L, threads);
  // Without gathers in the AVX-512 variant (its kernels read A in place): the products are
  // M^T = V^T U^T (tiles x K), U^T packed as B panels of nr columns. Otherwise U is packed as A
  // panels of mr rows and each block gathers its patches.
  const KernelSpec& wide = gemm_detail::selectKernel(std::min<int64_t>(nb, tiles), K);
  const bool channelsLast = L == 32 && wide.direct != nullptr;
  const KernelSpec& ks = channelsLast ? wide : gemm_detail::selectKernel(K, 1024);
  const int panel = channelsLast ? ks.nr : ks.mr;
  const int64_t kPad = (K + panel - 1) / panel * panel;
  // U, transformed and packed (rows or columns past K zero), in a buffer kept from call to call.
  float* up = tlsU.get(static_cast<size_t>(X * kPad * C));
  if (kPad > K) {
    for (int xi = 0; xi < X; ++xi) std::memset(up + xi * kPad * C + (K / panel) * panel * C, 0, sizeof(float) * panel * C);
  }
  const ForwardPlan plan{&c, x, paddedGeometry(c), w, y, &ks, kPad, up, tiles, nb, threads, channelsLast};
  parallelFor(threads, threads, [&](int64_t part) { v.kernelPart(plan, part); });
  parallelFor((tiles + plan.nb - 1) / plan.nb, threads, [&](int64_t b) { v.forwardBlock(plan, b); });
}

void winogradWeightGradient(const WinogradConv& c, const float* x, const float* dy, float* dw, int threads) {
  const Variant v = variantFor(c.tile);
  const int A = c.tile + 2, X = A * A;
  const int64_t C = c.channels, K = c.outChannels;
  // The tile that wastes least of the K x C products (16 columns for C <= 16).
  const KernelSpec& ks = gemm_detail::selectKernel(K, C);
  const int mr = ks.mr, L = ks.nr;
  const int64_t kPad = (K + mr - 1) / mr * mr, cPad = (C + L - 1) / L * L;
  // Threads split the alpha rows of the points; tiles per group: each thread's panels near 256 KB
  // (in L2 while the group's products read them).
  const int64_t parts = std::min<int64_t>(std::max(threads, 1), A);
  const int64_t rowsEach = (A + parts - 1) / parts;
  const int64_t group = std::clamp<int64_t>((int64_t(256) << 10) / (rowsEach * A * (kPad + cPad) * 4), 16, ks.kc);
  const GradientPlan plan{&c, x, dy, &ks, kPad, cPad, group, threads};
  // dU[xi] (K x C, row stride C), each element one chain over every tile in order.
  float* du = tlsDu.get(static_cast<size_t>(X * K * C));
  parallelFor(parts, threads, [&](int64_t part) { v.gradientThread(plan, part, parts, du); });
  // dW[k][c] = G^T dU G, in double, rounded once.
  parallelFor(threads, threads, [&](int64_t part) { v.kernelGradient(plan, du, dw, part); });
}

}  // namespace octet
