// Elementwise and per-channel kernels that dominate CNN training profiles outside GEMM:
// ReLU, addition, per-channel bias, and batch normalization. Layout NCHW: `plane` = H * W.
// Per-channel sums accumulate in double, over n then position, one channel per work item, so
// results do not depend on the thread count and equal the TypeScript references bit for bit.
#pragma once
#include <cstdint>

namespace octet {

// out = max(x, 0); where mask is not null, bit (i & 7) of mask[i >> 3] is set when x[i] > 0.
void reluForward(const float* x, float* out, uint8_t* mask, int64_t n, int threads);
// values[i] = 0 (all bits clear) wherever keep[i] == 0; `bytes` per element (1, 2 or 4).
void zeroWhere(void* values, int bytes, const uint8_t* keep, int64_t n, int threads);
// out = g where the mask bit is set, else 0.
void reluBackward(const uint8_t* mask, const float* g, float* out, int64_t n, int threads);
void addArrays(const float* a, const float* b, float* out, int64_t n, int threads);

void channelBiasAdd(float* out, const float* bias, int64_t batch, int64_t channels, int64_t plane, int threads);
void channelSum(const float* g, double* sums, int64_t batch, int64_t channels, int64_t plane, int threads);

// mean and biased variance per channel (two passes).
void channelMeanVar(const float* x, double* mean, double* var, int64_t batch, int64_t channels, int64_t plane,
                    int threads);
// xhat = (x - mean) * invStd; out = xhat * gamma + beta (gamma, beta may be null: 1 and 0).
void batchNormForward(const float* x, const double* mean, const float* invStd, const float* gamma, const float* beta,
                      float* xhat, float* out, int64_t batch, int64_t channels, int64_t plane, int threads);
// batchNormBackward with xhat as one-byte codes through `table` (E5M2's when e5m2) divided by
// `scale`, as dequantize gives them (the same values), decoded a plane at a time.
void batchNormBackwardCodes(const float* g, const uint8_t* codes, const float* table, bool e5m2, double scale, const float* invStd, const float* gamma,
                            bool training, float* gx, double* sumG, double* sumGX, int64_t batch, int64_t channels, int64_t plane, int threads);
// sumG[c] = sum g, sumGX[c] = sum g * xhat; gx (may be null) =
//   training: gamma * invStd / M * (M * g - sumG - xhat * sumGX), else gamma * invStd * g.
void batchNormBackward(const float* g, const float* xhat, const float* invStd, const float* gamma, bool training,
                       float* gx, double* sumG, double* sumGX, int64_t batch, int64_t channels, int64_t plane,
                       int threads);

}  // namespace octet

namespace octet {

// Quantization statistics (src/quant/quantizer.ts has the reference):
// amax = max |x|, or NaN when x holds a NaN or an Inf.
float absMax(const float* x, int64_t n, int threads);
// out = fl32(x * scale); returns how many |out| exceed maxFinite (or are NaN).
int64_t scaleCountOverflow(const float* x, float scale, float* out, int64_t n, float maxFinite, int threads);

// AdamW's two halves, in double precision per element as src/optim/adamw.ts writes them:
// m = f32(b1 * m + (1 - b1) * g), v = f32(b2 * v + ((1 - b2) * g) * g); then
// p = f32(p * decay - (stepSize * m) / (sqrt(v) / c2Sqrt + eps)).
void adamwMoments(float* m, float* v, const float* g, double beta1, double beta2, int64_t n, int threads);
// Both halves for the entries where keep is nonzero only (a pruned weight's entries stay as they are).
void adamwMasked(float* p, float* m, float* v, const float* g, const uint8_t* keep, double beta1, double beta2, double decay, double stepSize,
                 double c2Sqrt, double eps, int64_t n, int threads);
void adamwApply(float* p, const float* m, const float* v, double decay, double stepSize, double c2Sqrt, double eps, int64_t n,
                int threads);

}  // namespace octet
