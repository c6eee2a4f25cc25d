#include "winograd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu.h"
#include "gemm_kernels.h"
#include "parallel.h"

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

// v = B^T d B for L lanes: d[r][s] at d + (r * A + s) * L; v[i][j] at v + (i * A + j) * vStride.
// Only rows [i0, i1) of v are computed.
template <int M, int L>
__attribute__((always_inline)) inline void inputTransform(const float* d, float* v, int64_t vStride, int i0, int i1) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  float t[A * A * L];  // t[i][s] = sum_r BT[i][r] d[r][s], stored t[(s * A + i) * L]
#pragma GCC unroll 8
  for (int s = 0; s < A; ++s) applyRows<A, A, L>(T::BT, d + s * L, A * L, t + s * A * L, L);
  // v[i][j] = sum_s BT[j][s] t[i][s]
  for (int i = i0; i < i1; ++i) {
    float ti[A * L];
    for (int s = 0; s < A; ++s) std::memcpy(ti + s * L, t + (s * A + i) * L, sizeof(float) * L);
    applyRows<A, A, L>(T::BT, ti, L, v + i * A * vStride, vStride);
  }
}

// Y = A^T m A for L lanes: m[i][j] at m + (i * A + j) * mStride; Y[a][b] at y + (a * M + b) * L.
template <int M, int L>
__attribute__((always_inline)) inline void outputTransform(const float* m, int64_t mStride, float* y) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  float t[A * M * L];  // t[a][j] = sum_i AT[a][i] m[i][j], stored t[(j * M + a) * L]
  float col[A * L];
#pragma GCC unroll 8
  for (int j = 0; j < A; ++j) {
    for (int i = 0; i < A; ++i) std::memcpy(col + i * L, m + (i * A + j) * mStride, sizeof(float) * L);
    applyRows<M, A, L>(T::AT, col, L, t + j * M * L, L);
  }
  for (int a = 0; a < M; ++a) {
    float row[A * L];
    for (int j = 0; j < A; ++j) std::memcpy(row + j * L, t + (j * M + a) * L, sizeof(float) * L);
    applyRows<M, A, L>(T::AT, row, L, y + a * M * L, L);
  }
}

// dU-side transform of an output-gradient tile: Yhat = A dy A^T (alpha x alpha from m x m), for L
// lanes: dy[a][b] at dy + (a * M + b) * L; Yhat[i][j] at out + (i * A + j) * outStride, rows [i0, i1).
template <int M, int L>
__attribute__((always_inline)) inline void gradientTransform(const float* dy, float* out, int64_t outStride, int i0, int i1) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  // A = (A^T)^T: Yhat[i][j] = sum_a sum_b AT[a][i] dy[a][b] AT[b][j].
  static constexpr auto transposed = [] {
    struct {
      float m[A][M];
    } r{};
    for (int i = 0; i < A; ++i)
      for (int a = 0; a < M; ++a) r.m[i][a] = T::AT[a][i];
    return r;
  }();
  float t[A * M * L];  // t[i][b] = sum_a AT[a][i] dy[a][b], stored t[(b * A + i) * L]
  for (int b = 0; b < M; ++b) {
    float col[M * L];
    for (int a = 0; a < M; ++a) std::memcpy(col + a * L, dy + (a * M + b) * L, sizeof(float) * L);
    applyRows<A, M, L>(transposed.m, col, L, t + b * A * L, L);
  }
  for (int i = i0; i < i1; ++i) {
    float ti[M * L];
    for (int b = 0; b < M; ++b) std::memcpy(ti + b * L, t + (b * A + i) * L, sizeof(float) * L);
    applyRows<A, M, L>(transposed.m, ti, L, out + i * A * outStride, outStride);
  }
}

// The kernels of rows [k0, k1) transformed, U[xi][k][c] = (G g G^T)[xi] for g = w[k][c], stored
// as the micro-kernel's A panels: U[xi] at u + xi * kPad * C, row panel q (rows q * MR ..) at
// + q * MR * C, element (k, c) at + c * MR + k % MR. L kernels at a time, in float.
template <int M, int L>
__attribute__((always_inline)) inline void transformKernels(const float* w, int64_t k0, int64_t k1, int64_t C, int mr, int64_t kPad, float* u) {
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
    for (int l = 0; l < L; ++l)
      for (int e = 0; e < 9; ++e) in[e * L + l] = l < lanes ? w[(e0 + l) * 9 + e] : 0.0f;
    // t[i][b] = sum_a G[i][a] g[a][b], stored t[(b * A + i) * L]; then u[i][j] = sum_b G[j][b] t[i][b].
    alignas(64) float t[3 * A * L];
    for (int b = 0; b < 3; ++b) {
      float col[3 * L];
      for (int a = 0; a < 3; ++a) std::memcpy(col + a * L, in + (a * 3 + b) * L, sizeof(float) * L);
      applyRows<A, 3, L>(g.m, col, L, t + b * A * L, L);
    }
    alignas(64) float out[A * A * L];
    for (int i = 0; i < A; ++i) {
      float ti[3 * L];
      for (int b = 0; b < 3; ++b) std::memcpy(ti + b * L, t + (b * A + i) * L, sizeof(float) * L);
      applyRows<A, 3, L>(g.m, ti, L, out + i * A * L, L);
    }
    for (int l = 0; l < lanes; ++l) {
      const int64_t k = (e0 + l) / C, ch = (e0 + l) % C;
      float* dst = u + (k / mr) * mr * C + ch * mr + k % mr;
      for (int xi = 0; xi < A * A; ++xi) dst[xi * kPad * C] = out[xi * L + l];
    }
  }
}

// Where a tile's input patch and output block lie.
struct TilePlace {
  int64_t image, y0, x0;  // patch origin in input coordinates (may be negative: padding)
};

inline TilePlace placeOf(const WinogradConv& c, int64_t tile) {
  const int64_t th = (c.outH + c.tile - 1) / c.tile, tw = (c.outW + c.tile - 1) / c.tile;
  const int64_t n = tile / (th * tw), r = tile % (th * tw);
  return {n, (r / tw) * c.tile - c.padH, (r % tw) * c.tile - c.padW};
}

// d[r][s][lane] = the alpha x alpha patch of one plane (zeros outside the image), lane `lane` of L.
template <int A, int L>
__attribute__((always_inline)) inline void gatherPatch(const float* plane, const WinogradConv& c, int64_t y0, int64_t x0, float* d, int lane) {
  if (y0 >= 0 && x0 >= 0 && y0 + A <= c.height && x0 + A <= c.width) {
    const float* p = plane + y0 * c.width + x0;
    for (int r = 0; r < A; ++r)
      for (int s = 0; s < A; ++s) d[(r * A + s) * L + lane] = p[r * c.width + s];
    return;
  }
  for (int r = 0; r < A; ++r) {
    const int64_t yy = y0 + r;
    for (int s = 0; s < A; ++s) {
      const int64_t xx = x0 + s;
      d[(r * A + s) * L + lane] = yy >= 0 && yy < c.height && xx >= 0 && xx < c.width ? plane[yy * c.width + xx] : 0.0f;
    }
  }
}

// Output-gradient tile: dy[a][b][lane] (zeros past the output's edge).
template <int M, int L>
__attribute__((always_inline)) inline void gatherOutputTile(const float* plane, const WinogradConv& c, int64_t oy, int64_t ox, float* d, int lane) {
  for (int a = 0; a < M; ++a)
    for (int b = 0; b < M; ++b) d[(a * M + b) * L + lane] = oy + a < c.outH && ox + b < c.outW ? plane[(oy + a) * c.outW + ox + b] : 0.0f;
}

// Aligned per-thread scratch, grown as needed.
struct Scratch {
  float* p = nullptr;
  size_t size = 0;
  ~Scratch() { std::free(p); }
  float* get(size_t want) {
    if (want > size) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, ((want * sizeof(float) + 63) / 64) * 64));
      size = want;
    }
    return p;
  }
};
thread_local Scratch tlsV, tlsM, tlsU;

// Tiles per block: the block's transformed input and products (alpha^2 (C + K) floats per tile)
// within about 1 MB of the 2 MB L2, in whole panels of L tiles, at least two blocks per thread.
int64_t blockTiles(int alpha, int64_t C, int64_t K, int64_t tiles, int L, int threads) {
  const int64_t perTile = int64_t(alpha) * alpha * (C + K) * 4;
  int64_t panels = std::max<int64_t>(1, (int64_t(1) << 20) / (perTile * L));
  const int64_t share = (tiles + 2 * threads - 1) / (2 * threads);
  panels = std::min(panels, std::max<int64_t>(1, (share + L - 1) / L));
  return panels * L;
}

template <int M, int L>
__attribute__((always_inline)) inline void forwardImpl(const WinogradConv& c, const float* x, const float* w, float* y, int threads) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  constexpr int X = A * A;
  const int64_t C = c.channels, K = c.outChannels;
  const KernelSpec& ks = gemm_detail::selectKernel(K, 1024);
  const int mr = ks.mr;
  const int64_t kPad = (K + mr - 1) / mr * mr;
  // U, transformed and packed (rows past K zero), in a buffer kept from call to call.
  float* up = tlsU.get(static_cast<size_t>(X * kPad * C));
  if (kPad > K) {
    for (int xi = 0; xi < X; ++xi) std::memset(up + xi * kPad * C + (K / mr) * mr * C, 0, sizeof(float) * mr * C);
  }
  parallelFor(threads, threads, [&](int64_t t) {
    const int64_t k0 = K * t / threads, k1 = K * (t + 1) / threads;
    if (k1 > k0) transformKernels<M, L>(w, k0, k1, C, mr, kPad, up);
  });
  const int64_t th = (c.outH + M - 1) / M, tw = (c.outW + M - 1) / M;
  const int64_t tiles = c.batch * th * tw;
  const int64_t nb = blockTiles(A, C, K, tiles, L, threads);
  const int64_t blocks = (tiles + nb - 1) / nb;
  const int64_t inPlane = c.height * c.width, outPlane = c.outH * c.outW;
  parallelFor(blocks, threads, [&](int64_t b) {
    const int64_t t0 = b * nb, count = std::min(nb, tiles - t0);
    const int64_t panels = (count + L - 1) / L, width = panels * L;
    float* v = tlsV.get(static_cast<size_t>(X * width * C));
    float* m = tlsM.get(static_cast<size_t>(X * K * width));
    alignas(64) float d[X * L];
    // Input transform: panel pn, channel ch -> V[xi] panel at ((xi * panels + pn) * C + ch) * L.
    for (int64_t pn = 0; pn < panels; ++pn) {
      TilePlace place[L];
      const int lanes = static_cast<int>(std::min<int64_t>(L, count - pn * L));
      for (int l = 0; l < lanes; ++l) place[l] = placeOf(c, t0 + pn * L + l);
      for (int64_t ch = 0; ch < C; ++ch) {
        for (int l = 0; l < lanes; ++l) gatherPatch<A, L>(x + place[l].image * c.xImageStride + ch * inPlane, c, place[l].y0, place[l].x0, d, l);
        for (int l = lanes; l < L; ++l)
          for (int e = 0; e < X; ++e) d[e * L + l] = 0.0f;
        inputTransform<M, L>(d, v + (pn * C + ch) * L, panels * C * L, 0, A);
      }
    }
    // The products: M[xi] (K x width, row stride width) = U[xi] V[xi], one chain over C per element.
    for (int xi = 0; xi < X; ++xi) {
      for (int64_t ir = 0; ir < K; ir += mr) {
        const int rows = static_cast<int>(std::min<int64_t>(mr, K - ir));
        const float* ap = up + xi * kPad * C + ir * C;
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
      int64_t base[L], oy[L], ox[L];
      for (int l = 0; l < lanes; ++l) {
        const TilePlace p = placeOf(c, t0 + pn * L + l);
        oy[l] = p.y0 + c.padH;
        ox[l] = p.x0 + c.padW;
        base[l] = p.image * c.yImageStride + oy[l] * c.outW + ox[l];
      }
      for (int64_t k = 0; k < K; ++k) {
        outputTransform<M, L>(m + k * width + pn * L, K * width, out);
        float* plane = y + k * outPlane;
        for (int l = 0; l < lanes; ++l) {
          const int rowsIn = static_cast<int>(std::min<int64_t>(M, c.outH - oy[l])), colsIn = static_cast<int>(std::min<int64_t>(M, c.outW - ox[l]));
          float* dst = plane + base[l];
          for (int a = 0; a < rowsIn; ++a)
            for (int bb = 0; bb < colsIn; ++bb) dst[a * c.outW + bb] = out[(a * M + bb) * L + l];
        }
      }
    }
  });
}

template <int M, int L>
__attribute__((always_inline)) inline void weightGradientImpl(const WinogradConv& c, const float* x, const float* dy, float* dw, int threads) {
  using T = Transforms<M>;
  constexpr int A = T::kAlpha;
  constexpr int X = A * A;
  const int64_t C = c.channels, K = c.outChannels;
  const KernelSpec& ks = gemm_detail::selectKernel(K, std::max<int64_t>(C, 32));
  const int mr = ks.mr;
  const int64_t kPad = (K + mr - 1) / mr * mr, cPad = (C + L - 1) / L * L;
  const int64_t th = (c.outH + M - 1) / M, tw = (c.outW + M - 1) / M;
  const int64_t tiles = c.batch * th * tw;
  // Tiles per block (the k of each block's products): the block's packed operands near 2 MB.
  const int64_t nb = std::max<int64_t>(64, std::min<int64_t>(ks.kc, (int64_t(2) << 20) / (int64_t(X) * (kPad + cPad) * 4)));
  const int64_t inPlane = c.height * c.width, outPlane = c.outH * c.outW;
  // The block's operands, shared by the threads: B panels of V^T [xi][channel panel][tile][L] and
  // A panels of Yhat [xi][row panel][tile][MR].
  float* vp = tlsV.get(static_cast<size_t>(X * cPad * nb));
  float* yp = tlsM.get(static_cast<size_t>(X * kPad * nb));
  // dU[xi] (K x C, row stride C), each element one chain over every tile in order.
  std::vector<float> du(static_cast<size_t>(X * K * C));
  for (int64_t t0 = 0; t0 < tiles; t0 += nb) {
    const int64_t count = std::min(nb, tiles - t0);
    // Transforms: threads split the block's tiles.
    parallelFor(threads, threads, [&](int64_t part) {
      alignas(64) float d[X * L];
      alignas(64) float g[M * M * L];
      alignas(64) float out[X * L];
      for (int64_t q = count * part / threads; q < count * (part + 1) / threads; ++q) {
        const TilePlace p = placeOf(c, t0 + q);
        // Input side: lanes are L channels of this tile.
        const float* img = x + p.image * c.xImageStride;
        for (int64_t c0 = 0; c0 < cPad; c0 += L) {
          const int lanes = static_cast<int>(std::min<int64_t>(L, C - c0));
          for (int l = 0; l < lanes; ++l) gatherPatch<A, L>(img + (c0 + l) * inPlane, c, p.y0, p.x0, d, l);
          for (int l = lanes; l < L; ++l)
            for (int e = 0; e < X; ++e) d[e * L + l] = 0.0f;
          inputTransform<M, L>(d, out, L, 0, A);
          for (int xi = 0; xi < X; ++xi) std::memcpy(vp + ((xi * (cPad / L) + c0 / L) * count + q) * L, out + xi * L, sizeof(float) * L);
        }
        // Output-gradient side: lanes are L output channels, stored into MR-row panels.
        const int64_t oy = p.y0 + c.padH, ox = p.x0 + c.padW;
        const float* gimg = dy + p.image * c.yImageStride;
        for (int64_t k0 = 0; k0 < kPad; k0 += L) {
          const int lanes = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(L, K - k0)));
          for (int l = 0; l < lanes; ++l) gatherOutputTile<M, L>(gimg + (k0 + l) * outPlane, c, oy, ox, g, l);
          for (int l = lanes; l < L; ++l)
            for (int e = 0; e < M * M; ++e) g[e * L + l] = 0.0f;
          gradientTransform<M, L>(g, out, L, 0, A);
          const int64_t kEnd = std::min<int64_t>(k0 + L, kPad);
          for (int xi = 0; xi < X; ++xi) {
            const float* src = out + xi * L;
            float* panelBase = yp + xi * kPad * count + q * mr;
            for (int64_t k = k0; k < kEnd; ++k) panelBase[(k / mr) * count * mr + k % mr] = src[k - k0];
          }
        }
      }
    });
    // dU[xi] += Yhat[xi] (K x count) V[xi]^T (count x C): the chain of each element goes on. Threads
    // split the points xi, so each element is summed by one thread in tile order.
    parallelFor(X, threads, [&](int64_t xi) {
      float* dst = du.data() + xi * K * C;
      for (int64_t ir = 0; ir < K; ir += mr) {
        const int rows = static_cast<int>(std::min<int64_t>(mr, K - ir));
        const float* ap = yp + xi * kPad * count + (ir / mr) * count * mr;
        for (int64_t c0 = 0; c0 < C; c0 += L) {
          const float* bp = vp + (xi * (cPad / L) + c0 / L) * count * L;
          ks.micro(count, ap, bp, dst + ir * C + c0, C, 1.0f, t0 == 0 ? 0.0f : 1.0f, rows, static_cast<int>(std::min<int64_t>(L, C - c0)));
        }
      }
    });
  }
  // dW[k][c] = G^T dU G, in double, rounded once.
  parallelFor(threads, threads, [&](int64_t t) {
    for (int64_t kc = K * C * t / threads; kc < K * C * (t + 1) / threads; ++kc) {
      double gu[3][A];  // G^T dU
      for (int a = 0; a < 3; ++a)
        for (int j = 0; j < A; ++j) {
          double s = 0;
          for (int ii = 0; ii < A; ++ii) s += T::G[ii][a] * du[(ii * A + j) * K * C + kc];
          gu[a][j] = s;
        }
      for (int a = 0; a < 3; ++a)
        for (int bb = 0; bb < 3; ++bb) {
          double s = 0;
          for (int j = 0; j < A; ++j) s += gu[a][j] * T::G[j][bb];
          dw[kc * 9 + a * 3 + bb] = static_cast<float>(s);
        }
    }
  });
}

#ifdef OCTET_X86
template <int M>
__attribute__((target("avx512f"))) void forwardAvx512(const WinogradConv& c, const float* x, const float* w, float* y, int threads) {
  forwardImpl<M, 32>(c, x, w, y, threads);
}
template <int M>
__attribute__((target("avx2,fma"))) void forwardAvx2(const WinogradConv& c, const float* x, const float* w, float* y, int threads) {
  forwardImpl<M, 16>(c, x, w, y, threads);
}
template <int M>
__attribute__((target("avx512f"))) void gradientAvx512(const WinogradConv& c, const float* x, const float* dy, float* dw, int threads) {
  weightGradientImpl<M, 32>(c, x, dy, dw, threads);
}
template <int M>
__attribute__((target("avx2,fma"))) void gradientAvx2(const WinogradConv& c, const float* x, const float* dy, float* dw, int threads) {
  weightGradientImpl<M, 16>(c, x, dy, dw, threads);
}
#endif

template <int M>
void forwardPortable(const WinogradConv& c, const float* x, const float* w, float* y, int threads) {
  forwardImpl<M, 16>(c, x, w, y, threads);
}
template <int M>
void gradientPortable(const WinogradConv& c, const float* x, const float* dy, float* dw, int threads) {
  weightGradientImpl<M, 16>(c, x, dy, dw, threads);
}

// The lane count must be the micro-kernel's panel width (32 for AVX-512, 16 otherwise).
int laneWidth() { return gemm_detail::selectKernel(64, 1024).nr; }

}  // namespace

void winogradForward(const WinogradConv& c, const float* x, const float* w, float* y, int threads) {
  const bool wide = laneWidth() == 32;
  const std::string family = gemm_detail::familyName();
#ifdef OCTET_X86
  if (wide) {
    if (c.tile == 4) forwardAvx512<4>(c, x, w, y, threads);
    else forwardAvx512<2>(c, x, w, y, threads);
    return;
  }
  if (family == "avx2") {
    if (c.tile == 4) forwardAvx2<4>(c, x, w, y, threads);
    else forwardAvx2<2>(c, x, w, y, threads);
    return;
  }
#endif
  (void)wide;
  if (c.tile == 4) forwardPortable<4>(c, x, w, y, threads);
  else forwardPortable<2>(c, x, w, y, threads);
}

void winogradWeightGradient(const WinogradConv& c, const float* x, const float* dy, float* dw, int threads) {
  const bool wide = laneWidth() == 32;
  const std::string family = gemm_detail::familyName();
#ifdef OCTET_X86
  if (wide) {
    if (c.tile == 4) gradientAvx512<4>(c, x, dy, dw, threads);
    else gradientAvx512<2>(c, x, dy, dw, threads);
    return;
  }
  if (family == "avx2") {
    if (c.tile == 4) gradientAvx2<4>(c, x, dy, dw, threads);
    else gradientAvx2<2>(c, x, dy, dw, threads);
    return;
  }
#endif
  (void)wide;
  if (c.tile == 4) gradientPortable<4>(c, x, dy, dw, threads);
  else gradientPortable<2>(c, x, dy, dw, threads);
}

}  // namespace octet
