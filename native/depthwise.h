// Depthwise convolution, float32, direct: groups = channels and one output channel per input
// channel (the weight is [C, 1, KH, KW]). The three products of the layer give the values of the
// SGEMM-on-columns path (one group per channel, src/ops/conv.ts) bit for bit, because that path's
// sums are these chains:
// - forward: y[n,c,oh,ow] = fma chain over the taps (i, j) in order, from +0, of w[c,i,j] * x[...];
// - strided input gradient (the caller zeroes gx): for each tap in order, then each output in
//   order, gx[n,c,ih,iw] += round(w[c,i,j] * dy[n,c,oh,ow]) (col2im's order over W^T dY);
//   the stride-1 input gradient is the forward with the rotated kernel;
// - weight gradient: gw[c,i,j] = fma chain over n, then oh, ow in order, from +0, of
//   dy[n,c,oh,ow] * x[n,c,ih,iw].
// Taps that fall in the padding are skipped: an fma with a zero product leaves a sum that started
// at +0 unchanged (such a sum is never -0 under round-to-nearest). `g.channels` is C.
#pragma once
#include <cstdint>
#include "im2col.h"

namespace octet {

void depthwiseForward(const float* x, const float* w, float* y, const ConvGeometry& g, int64_t batch, int threads);
void depthwiseInputGradientStrided(const float* dy, const float* w, float* gx, const ConvGeometry& g, int64_t batch, int threads);
void depthwiseWeightGradient(const float* dy, const float* x, float* gw, const ConvGeometry& g, int64_t batch, int threads);

}  // namespace octet
