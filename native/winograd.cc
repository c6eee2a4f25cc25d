#include "winograd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

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
template <int Rows, int Cols, int L>
__attribute__((always_inline)) inline void twoSided(const float (&T)[Rows][Cols], const float* in, int64_t inStride, float* out, int64_t outStride) {
  float t[Cols * Rows * L];  // t[i][s] = sum_r T[i][r] in[r][s], stored t[(s * Rows + i) * L]
#pragma GCC unroll 8
  for (int s = 0; s < Cols; ++s) applyRows<Rows, Cols, L>(T, in + s * inStride, Cols * inStride, t + s * Rows * L, L);
  // out[i][j] = sum_s T[j][s] t[i][s]
  for (int i = 0; i < Rows; ++i) applyRows<Rows, Cols, L>(T, t + i * L, Rows * L, out + i * Rows * outStride, outStride);
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

// dU-side transform of an output-gradient tile: Yhat = A dy A^T (alpha x alpha from m x m), for L
// lanes: dy[a][b] at dy + (a * M + b) * L; Yhat[i][j] at out + (i * A + j) * outStride.
template <int M, int L>
__attribute__((always_inline)) inline void gradientTransform(const float* dy, float* out, int64_t outStride) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  // A = (A^T)^T.
  static constexpr auto transposed = [] {
    struct {
      float m[A][M];
    } r{};
    for (int i = 0; i < A; ++i)
      for (int a = 0; a < M; ++a) r.m[i][a] = T::AT[a][i];
    return r;
  }();
  twoSided<A, M, L>(transposed.m, dy, L, out, outStride);
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

// Output-gradient tiles: dy[a][b][lane] = plane(lane)[(oy + a) * outW + ox + b], plane(lane) at
// data + at[lane], zeros past the output's edge.
template <int M, int L>
__attribute__((always_inline)) inline void gatherOutputTiles(const float* data, const int32_t* at, const WinogradConv& c, int64_t oy, int64_t ox, float* d) {
  if (oy + M <= c.outH && ox + M <= c.outW) {
    gatherPatchesOf<M, L>(data + oy * c.outW + ox, at, c.outW, d);
    return;
  }
  for (int a = 0; a < M; ++a)
    for (int b = 0; b < M; ++b)
      for (int l = 0; l < L; ++l) d[(a * M + b) * L + l] = oy + a < c.outH && ox + b < c.outW ? data[at[l] + (oy + a) * c.outW + ox + b] : 0.0f;
}

// Per-thread scratch, kept from call to call.
thread_local AlignedFloats tlsV, tlsM, tlsU, tlsPadded, tlsDu;

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
  float* up;  // U, packed
  int64_t tiles, nb;
  int threads;
};

// What a weight-gradient call shares with its blocks.
struct GradientPlan {
  const WinogradConv* c;
  const float* x;
  PaddedImages pad;  // the block's padded images, shared by the threads
  const float* dy;
  const KernelSpec* ks;
  int64_t kPad, cPad;
  float* vp;  // the block's B panels of V^T: [xi][channel panel][tile][L]
  float* yp;  // the block's A panels of Yhat: [xi][row panel][tile][MR]
  int threads;
};

// Thread `part` of the kernels' transform: rows [K part / threads, K (part + 1) / threads).
template <int M, int L>
__attribute__((always_inline)) inline void kernelPartBody(const ForwardPlan& p, int64_t part) {
  const int64_t K = p.c->outChannels;
  const int64_t k0 = K * part / p.threads, k1 = K * (part + 1) / p.threads;
  if (k1 > k0) transformKernels<M, L>(p.w, p.c->flipped, k0, k1, K, p.c->channels, p.ks->mr, p.kPad, p.up);
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

// Thread `part` of a weight-gradient block's transforms: its share of the block's tiles.
template <int M, int L>
__attribute__((always_inline)) inline void gradientPartBody(const GradientPlan& p, int64_t t0, int64_t count, int64_t part) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  constexpr int X = A * A;
  const WinogradConv& c = *p.c;
  const int mr = p.ks->mr;
  const int64_t C = c.channels, K = c.outChannels, kPad = p.kPad, cPad = p.cPad;
  const int64_t outPlane = c.outH * c.outW;
  alignas(64) float d[X * L];
  alignas(64) float g[M * M * L];
  alignas(64) float out[X * L];
  for (int64_t q = count * part / p.threads; q < count * (part + 1) / p.threads; ++q) {
    const TilePlace place = placeOf(c, t0 + q);
    // Input side: lanes are L channels of this tile (lanes past C repeat channel c0: their
    // columns of dU are never stored).
    const PaddedImages& pad = p.pad;
    const float* img = pad.data + (place.image - pad.first) * pad.image + (place.y0 + c.padH) * pad.width + place.x0 + c.padW;
    for (int64_t c0 = 0; c0 < cPad; c0 += L) {
      const int lanes = static_cast<int>(std::min<int64_t>(L, C - c0));
      int32_t at[L];
      for (int l = 0; l < L; ++l) at[l] = static_cast<int32_t>((c0 + (l < lanes ? l : 0)) * pad.plane);
      gatherPatchesOf<A, L>(img, at, pad.width, d);
      // Straight into the B panels: point xi at vp + ((xi * (cPad / L) + c0 / L) * count + q) * L.
      inputTransform<M, L>(d, p.vp + ((c0 / L) * count + q) * L, (cPad / L) * count * L);
    }
    // Output-gradient side: lanes are L output channels, stored into MR-row panels.
    const int64_t oy = place.y0 + c.padH, ox = place.x0 + c.padW;
    const float* gimg = p.dy + place.image * c.yImageStride;
    for (int64_t k0 = 0; k0 < K; k0 += L) {
      // Lanes past K repeat channel k0 and are not stored.
      const int lanes = static_cast<int>(std::min<int64_t>(L, K - k0));
      int32_t at[L];
      for (int l = 0; l < L; ++l) at[l] = static_cast<int32_t>((k0 + (l < lanes ? l : 0)) * outPlane);
      gatherOutputTiles<M, L>(gimg, at, c, oy, ox, g);
      gradientTransform<M, L>(g, out, L);
      // Row k goes to panel k / MR, slot k % MR: runs of rows within one panel are contiguous.
      const int64_t kEnd = std::min<int64_t>(k0 + L, K);
      for (int xi = 0; xi < X; ++xi) {
        const float* src = out + xi * L;
        float* panelBase = p.yp + xi * kPad * count + q * mr;
        for (int64_t k = k0; k < kEnd;) {
          const int64_t run = std::min<int64_t>(mr - k % mr, kEnd - k);
          float* dst = panelBase + (k / mr) * count * mr + k % mr;
          for (int64_t e = 0; e < run; ++e) dst[e] = src[k - k0 + e];
          k += run;
        }
      }
    }
    // Rows past K: zero.
    for (int xi = 0; xi < X; ++xi) {
      float* panelBase = p.yp + xi * kPad * count + q * mr;
      for (int64_t k = K; k < kPad; ++k) panelBase[(k / mr) * count * mr + k % mr] = 0.0f;
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
  void (*gradientPart)(const GradientPlan&, int64_t, int64_t, int64_t);
  void (*kernelGradient)(const GradientPlan&, const float*, float*, int64_t);
};

#define OCTET_WINOGRAD_VARIANT(NAME, ATTR, L)                                                                              \
  template <int M>                                                                                                       \
  ATTR void NAME##KernelPart(const ForwardPlan& p, int64_t part) {                                                       \
    kernelPartBody<M, L>(p, part);                                                                                       \
  }                                                                                                                      \
  template <int M>                                                                                                       \
  ATTR void NAME##ForwardBlock(const ForwardPlan& p, int64_t b) {                                                        \
    forwardBlockBody<M, L>(p, b);                                                                                        \
  }                                                                                                                      \
  template <int M>                                                                                                       \
  ATTR void NAME##GradientPart(const GradientPlan& p, int64_t t0, int64_t count, int64_t part) {                         \
    gradientPartBody<M, L>(p, t0, count, part);                                                                          \
  }                                                                                                                      \
  template <int M>                                                                                                       \
  ATTR void NAME##KernelGradient(const GradientPlan& p, const float* du, float* dw, int64_t part) {                      \
    kernelGradientBody<M, L>(p, du, dw, part);                                                                           \
  }                                                                                                                      \
  template <int M>                                                                                                       \
  Variant NAME##Variant() {                                                                                              \
    return {L, NAME##KernelPart<M>, NAME##ForwardBlock<M>, NAME##GradientPart<M>, NAME##KernelGradient<M>};              \
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
  const KernelSpec& ks = gemm_detail::selectKernel(K, 1024);
  const int mr = ks.mr;
  const int64_t kPad = (K + mr - 1) / mr * mr;
  // U, transformed and packed (rows past K zero), in a buffer kept from call to call.
  float* up = tlsU.get(static_cast<size_t>(X * kPad * C));
  if (kPad > K) {
    for (int xi = 0; xi < X; ++xi) std::memset(up + xi * kPad * C + (K / mr) * mr * C, 0, sizeof(float) * mr * C);
  }
  const int64_t tiles = c.batch * tileRows(c) * tileCols(c);
  const ForwardPlan plan{&c, x, paddedGeometry(c), w, y, &ks, kPad, up, tiles, blockTiles(alpha, C, K, tiles, L, threads), threads};
  parallelFor(threads, threads, [&](int64_t part) { v.kernelPart(plan, part); });
  parallelFor((tiles + plan.nb - 1) / plan.nb, threads, [&](int64_t b) { v.forwardBlock(plan, b); });
}

void winogradWeightGradient(const WinogradConv& c, const float* x, const float* dy, float* dw, int threads) {
  const Variant v = variantFor(c.tile);
  const int A = c.tile + 2, X = A * A, L = v.lanes;
  const int64_t C = c.channels, K = c.outChannels;
  const KernelSpec& ks = gemm_detail::selectKernel(K, std::max<int64_t>(C, 32));
  const int mr = ks.mr;
  const int64_t kPad = (K + mr - 1) / mr * mr, cPad = (C + L - 1) / L * L;
  const int64_t perImage = tileRows(c) * tileCols(c), tiles = c.batch * perImage;
  // Tiles per block (the k of each block's products): the block's packed operands near 2 MB, or
  // near dU's size when that is larger (every block reads and writes all of dU).
  const int64_t budget = std::max<int64_t>(int64_t(2) << 20, int64_t(X) * K * C * 4);
  const int64_t nb = std::max<int64_t>(64, std::min<int64_t>(ks.kc, budget / (int64_t(X) * (kPad + cPad) * 4)));
  // The block's operands, shared by the threads: enough padded images for the largest block, and
  // its packed transforms.
  PaddedImages pad = paddedGeometry(c);
  pad.data = tlsPadded.get(static_cast<size_t>(((nb + perImage - 1) / perImage + 1) * pad.image));
  GradientPlan plan{&c, x, pad, dy, &ks, kPad, cPad, tlsV.get(static_cast<size_t>(X * cPad * nb)), tlsM.get(static_cast<size_t>(X * kPad * nb)), threads};
  // dU[xi] (K x C, row stride C), each element one chain over every tile in order.
  float* du = tlsDu.get(static_cast<size_t>(X * K * C));
  for (int64_t t0 = 0; t0 < tiles; t0 += nb) {
    const int64_t count = std::min(nb, tiles - t0);
    int64_t n1;
    blockImages(c, t0, count, plan.pad.first, n1);
    // The block's images padded, then its transforms: threads split the planes, then the tiles.
    parallelFor(threads, threads, [&](int64_t part) { padBlock(c, x, plan.pad, t0, count, part, threads); });
    parallelFor(threads, threads, [&](int64_t part) { v.gradientPart(plan, t0, count, part); });
    // dU[xi] += Yhat[xi] (K x count) V[xi]^T (count x C): the chain of each element goes on. Threads
    // split the points xi, so each element is summed by one thread in tile order.
    parallelFor(X, threads, [&](int64_t xi) {
      float* dst = du + xi * K * C;
      for (int64_t ir = 0; ir < K; ir += mr) {
        const int rows = static_cast<int>(std::min<int64_t>(mr, K - ir));
        const float* ap = plan.yp + xi * kPad * count + (ir / mr) * count * mr;
        for (int64_t c0 = 0; c0 < C; c0 += L) {
          const float* bp = plan.vp + (xi * (cPad / L) + c0 / L) * count * L;
          ks.micro(count, ap, bp, dst + ir * C + c0, C, 1.0f, t0 == 0 ? 0.0f : 1.0f, rows, static_cast<int>(std::min<int64_t>(L, C - c0)));
        }
      }
    });
  }
  // dW[k][c] = G^T dU G, in double, rounded once.
  parallelFor(threads, threads, [&](int64_t part) { v.kernelGradient(plan, du, dw, part); });
}

}  // namespace octet
