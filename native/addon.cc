// Node-API bindings of the native kernels. Arguments are checked here (types, lengths) so a
// bad call throws instead of touching memory outside the arrays; shapes and formats are checked
// again, with friendlier messages, by the TypeScript wrappers in src/kernels/.
#include <napi.h>

#include <cstdlib>
#include <string>
#include <utility>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "addon_args.h"
#include "codec.h"
#include "elementwise.h"
#include "gemm.h"
#include "im2col.h"
#include "lowp_gemm.h"
#include "parallel.h"

namespace {

using namespace octet::addon;
using octet::GemmArgs;

// The shape of a GEMM call: transA, transB, m, n, k at positions 0-4 and the leading dimensions
// at the given positions, checked; returns the number of elements A, B and C must hold.
struct GemmExtents {
  int64_t a, b, c;
};

GemmExtents gemmShapeArgs(const Napi::CallbackInfo& info, const char* op, size_t ldaAt, size_t ldbAt, size_t ldcAt,
                          GemmArgs& g) {
  Napi::Env env = info.Env();
  if (info.Length() < 13) throw Napi::TypeError::New(env, std::string(op) + " takes 13 or more arguments");
  g.transA = info[0].ToBoolean();
  g.transB = info[1].ToBoolean();
  g.m = intArg(info, 2, "m");
  g.n = intArg(info, 3, "n");
  g.k = intArg(info, 4, "k");
  g.lda = intArg(info, ldaAt, "lda");
  g.ldb = intArg(info, ldbAt, "ldb");
  g.ldc = intArg(info, ldcAt, "ldc");
  if (g.m < 0 || g.n < 0 || g.k < 0) throw Napi::RangeError::New(env, std::string(op) + ": negative dimension");
  const int64_t aRows = g.transA ? g.k : g.m, aCols = g.transA ? g.m : g.k;
  const int64_t bRows = g.transB ? g.n : g.k, bCols = g.transB ? g.k : g.n;
  if (g.lda < aCols || g.ldb < bCols || g.ldc < g.n) {
    throw Napi::RangeError::New(env, std::string(op) + ": leading dimension too small");
  }
  return {extent(aRows, aCols, g.lda), extent(bRows, bCols, g.ldb), extent(g.m, g.n, g.ldc)};
}

// sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads?)
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  GemmArgs g;
  const GemmExtents needs = gemmShapeArgs(info, "sgemm", 7, 9, 12, g);
  g.alpha = info[5].As<Napi::Number>().FloatValue();
  g.beta = info[10].As<Napi::Number>().FloatValue();
  g.a = f32(info, 6, "a", needs.a);
  g.b = f32(info, 8, "b", needs.b);
  g.c = f32(info, 11, "c", needs.c);
  octet::sgemm(g, threadsArg(info, 13));
  return info.Env().Undefined();
}

// reluForward(x, out, mask | null, threads?), reluBackward(mask, g, out, threads?), add(a, b, out, threads?);
// mask: a Uint8Array of ceil(n / 8) bytes, one bit per element.
// absMax(x, threads?) -> number; scaleCountOverflow(x, scale, out, maxFinite, threads?) -> number.
Napi::Value AbsMax(const Napi::CallbackInfo& info) {
  const int64_t n = float32Arg(info, 0, "x").ElementLength();
  return Napi::Number::New(info.Env(), octet::absMax(f32(info, 0, "x", n), n, threadsArg(info, 1)));
}

Napi::Value ScaleCountOverflow(const Napi::CallbackInfo& info) {
  const int64_t n = float32Arg(info, 0, "x").ElementLength();
  const float scale = info[1].As<Napi::Number>().FloatValue();
  const float maxFinite = info[3].As<Napi::Number>().FloatValue();
  const int64_t count = octet::scaleCountOverflow(f32(info, 0, "x", n), scale, f32(info, 2, "out", n), n, maxFinite, threadsArg(info, 4));
  return Napi::Number::New(info.Env(), double(count));
}

Napi::Value ReluForward(const Napi::CallbackInfo& info) {
  const int64_t n = float32Arg(info, 0, "x").ElementLength();
  uint8_t* mask = nullptr;
  if (!info[2].IsNull()) mask = maskArg(info, 2, n);
  octet::reluForward(f32(info, 0, "x", n), f32(info, 1, "out", n), mask, n, threadsArg(info, 3));
  return info.Env().Undefined();
}

Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  const int64_t n = float32Arg(info, 1, "g").ElementLength();
  octet::reluBackward(maskArg(info, 0, n), f32(info, 1, "g", n), f32(info, 2, "out", n), n, threadsArg(info, 3));
  return info.Env().Undefined();
}

Napi::Value AddArrays(const Napi::CallbackInfo& info) {
  const int64_t n = float32Arg(info, 0, "a").ElementLength();
  octet::addArrays(f32(info, 0, "a", n), f32(info, 1, "b", n), f32(info, 2, "out", n), n, threadsArg(info, 3));
  return info.Env().Undefined();
}

// adamwMoments(m, v, g, beta1, beta2, threads?) and
// adamwApply(p, m, v, decay, stepSize, c2Sqrt, eps, threads?): see native/elementwise.h.
Napi::Value AdamwMoments(const Napi::CallbackInfo& info) {
  const int64_t n = float32Arg(info, 2, "g").ElementLength();
  octet::adamwMoments(f32(info, 0, "m", n), f32(info, 1, "v", n), f32(info, 2, "g", n), info[3].As<Napi::Number>().DoubleValue(),
                      info[4].As<Napi::Number>().DoubleValue(), n, threadsArg(info, 5));
  return info.Env().Undefined();
}

Napi::Value AdamwApply(const Napi::CallbackInfo& info) {
  const int64_t n = float32Arg(info, 0, "p").ElementLength();
  auto number = [&](size_t i) { return info[i].As<Napi::Number>().DoubleValue(); };
  octet::adamwApply(f32(info, 0, "p", n), f32(info, 1, "m", n), f32(info, 2, "v", n), number(3), number(4), number(5), number(6), n,
                    threadsArg(info, 7));
  return info.Env().Undefined();
}

// channelBiasAdd(out, bias, batch, channels, plane, threads?)
Napi::Value ChannelBiasAdd(const Napi::CallbackInfo& info) {
  const ChannelShape s = channelShapeArg(info, 2);
  octet::channelBiasAdd(f32(info, 0, "out", s.size()), f32(info, 1, "bias", s.channels), s.batch, s.channels, s.plane,
                        threadsArg(info, 5));
  return info.Env().Undefined();
}

// channelSum(g, sums, batch, channels, plane, threads?)
Napi::Value ChannelSum(const Napi::CallbackInfo& info) {
  const ChannelShape s = channelShapeArg(info, 2);
  octet::channelSum(f32(info, 0, "g", s.size()), f64(info, 1, "sums", s.channels), s.batch, s.channels, s.plane,
                    threadsArg(info, 5));
  return info.Env().Undefined();
}

// channelMeanVar(x, mean, var, batch, channels, plane, threads?)
Napi::Value ChannelMeanVar(const Napi::CallbackInfo& info) {
  const ChannelShape s = channelShapeArg(info, 3);
  octet::channelMeanVar(f32(info, 0, "x", s.size()), f64(info, 1, "mean", s.channels), f64(info, 2, "var", s.channels),
                        s.batch, s.channels, s.plane, threadsArg(info, 6));
  return info.Env().Undefined();
}

// batchNormForward(x, mean, invStd, gamma|null, beta|null, xhat, out, batch, channels, plane, threads?)
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  const ChannelShape s = channelShapeArg(info, 7);
  octet::batchNormForward(f32(info, 0, "x", s.size()), f64(info, 1, "mean", s.channels),
                          f32(info, 2, "invStd", s.channels), f32(info, 3, "gamma", s.channels, true),
                          f32(info, 4, "beta", s.channels, true), f32(info, 5, "xhat", s.size()),
                          f32(info, 6, "out", s.size()), s.batch, s.channels, s.plane, threadsArg(info, 10));
  return info.Env().Undefined();
}

// batchNormBackward(g, xhat, invStd, gamma|null, training, gx|null, sumG, sumGX, batch, channels, plane, threads?)
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  const ChannelShape s = channelShapeArg(info, 8);
  octet::batchNormBackward(f32(info, 0, "g", s.size()), f32(info, 1, "xhat", s.size()),
                           f32(info, 2, "invStd", s.channels), f32(info, 3, "gamma", s.channels, true),
                           info[4].ToBoolean(), f32(info, 5, "gx", s.size(), true), f64(info, 6, "sumG", s.channels),
                           f64(info, 7, "sumGX", s.channels), s.batch, s.channels, s.plane, threadsArg(info, 11));
  return info.Env().Undefined();
}

// encode(values, codes, params, threads?)
Napi::Value Encode(const Napi::CallbackInfo& info) {
  auto in = float32Arg(info, 0, "values");
  const int bytes = codeBytes(info, 1, "codes");
  if (info[1].As<Napi::TypedArray>().ElementLength() != in.ElementLength()) {
    throw Napi::RangeError::New(info.Env(), "encode: codes and values differ in length");
  }
  octet::encode(in.Data(), typedData(info, 1), bytes, static_cast<int64_t>(in.ElementLength()), codecParamsArg(info, 2),
                threadsArg(info, 3));
  return info.Env().Undefined();
}

// encodeScaled(values, scale, codes, params, maxFinite, magnitudeMask, threads?) -> [overflow, nonzero, underflow]
Napi::Value EncodeScaled(const Napi::CallbackInfo& info) {
  auto in = float32Arg(info, 0, "values");
  const int bytes = codeBytes(info, 2, "codes");
  if (info[2].As<Napi::TypedArray>().ElementLength() != in.ElementLength()) {
    throw Napi::RangeError::New(info.Env(), "encodeScaled: codes and values differ in length");
  }
  int64_t counts[3];
  octet::encodeScaled(in.Data(), info[1].As<Napi::Number>().FloatValue(), typedData(info, 2), bytes, static_cast<int64_t>(in.ElementLength()),
                      codecParamsArg(info, 3), info[4].As<Napi::Number>().FloatValue(), info[5].As<Napi::Number>().Uint32Value(), counts,
                      threadsArg(info, 6));
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  for (uint32_t k = 0; k < 3; ++k) out.Set(k, Napi::Number::New(info.Env(), double(counts[k])));
  return out;
}

// quantize(values, out, params, lut | null, threads?)
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  auto in = float32Arg(info, 0, "values");
  auto out = float32Arg(info, 1, "out");
  if (out.ElementLength() != in.ElementLength()) throw Napi::RangeError::New(info.Env(), "quantize: out and values differ in length");
  octet::CodecParams p = codecParamsArg(info, 2);
  const float* lut = nullptr;
  if (!info[3].IsNull()) {
    auto table = float32Arg(info, 3, "lut");
    if (table.ElementLength() < 2 * static_cast<size_t>(p.signMask)) {
      throw Napi::RangeError::New(info.Env(), "quantize: the table must hold the value of every code");
    }
    lut = table.Data();
  }
  octet::quantize(in.Data(), out.Data(), static_cast<int64_t>(in.ElementLength()), p, lut, threadsArg(info, 4));
  return info.Env().Undefined();
}

// decode(codes, out, lut | null, threads?)
Napi::Value Decode(const Napi::CallbackInfo& info) {
  const int bytes = codeBytes(info, 0, "codes");
  auto out = float32Arg(info, 1, "out");
  const size_t n = info[0].As<Napi::TypedArray>().ElementLength();
  if (out.ElementLength() != n) throw Napi::RangeError::New(info.Env(), "decode: out and codes differ in length");
  const float* lut = nullptr;
  if (!info[2].IsNull()) {
    auto table = float32Arg(info, 2, "lut");
    if (bytes == 4 || table.ElementLength() < (size_t{1} << (8 * bytes))) {
      throw Napi::RangeError::New(info.Env(), "decode: the table must cover every value the code array can hold");
    }
    lut = table.Data();
  } else if (bytes != 4) {
    throw Napi::TypeError::New(info.Env(), "decode: codes narrower than 32 bits need a table");
  }
  octet::decode(typedData(info, 0), bytes, out.Data(), static_cast<int64_t>(n), lut, threadsArg(info, 3));
  return info.Env().Undefined();
}

// im2col(x, col, geometry, threads?) and col2im(col, x, geometry, threads?): the image and the
// column matrix, in the order the kernel reads then writes them.
Napi::Value Im2col(const Napi::CallbackInfo& info) {
  const octet::ConvGeometry g = geometryArg(info, 2);
  const int64_t image = g.channels * g.height * g.width, columns = g.channels * g.kernelH * g.kernelW * g.outH * g.outW;
  octet::im2col(f32(info, 0, "x", image), f32(info, 1, "col", columns), g, threadsArg(info, 3));
  return info.Env().Undefined();
}

Napi::Value Col2im(const Napi::CallbackInfo& info) {
  const octet::ConvGeometry g = geometryArg(info, 2);
  const int64_t image = g.channels * g.height * g.width, columns = g.channels * g.kernelH * g.kernelW * g.outH * g.outW;
  octet::col2im(f32(info, 0, "col", columns), f32(info, 1, "x", image), g, threadsArg(info, 3));
  return info.Env().Undefined();
}

// im2colBatch(x, col, geometry, batch, imageStride, threads?) and
// col2imBatch(col, x, geometry, batch, imageStride, threads?): see native/im2col.h.
Napi::Value Im2colBatch(const Napi::CallbackInfo& info) {
  const octet::ConvGeometry g = geometryArg(info, 2);
  const int64_t batch = intArg(info, 3, "batch"), stride = intArg(info, 4, "imageStride");
  const int64_t image = (batch - 1) * stride + g.channels * g.height * g.width;
  const int64_t columns = g.channels * g.kernelH * g.kernelW * g.outH * g.outW * batch;
  if (info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    auto x = info[0].As<Napi::Uint8Array>();
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(info.Env(), "im2colBatch: codes in, codes out: col must be a Uint8Array too");
    }
    auto col = info[1].As<Napi::Uint8Array>();
    if (int64_t(x.ElementLength()) < image || int64_t(col.ElementLength()) < columns) {
      throw Napi::RangeError::New(info.Env(), "im2colBatch: the codes or the columns are too short for the geometry");
    }
    octet::im2colBatchCodes(x.Data(), col.Data(), g, batch, stride, threadsArg(info, 5));
    return info.Env().Undefined();
  }
  octet::im2colBatch(f32(info, 0, "x", image), f32(info, 1, "col", columns), g, batch, stride, threadsArg(info, 5));
  return info.Env().Undefined();
}

// winogradForward(x, w, y, geometry, threads?): y = conv3x3(x, w), stride 1 (native/winograd.h).
Napi::Value WinogradForward(const Napi::CallbackInfo& info) {
  const octet::WinogradConv c = winogradArg(info, 3);
  const float* x = f32(info, 0, "x", (c.batch - 1) * c.xImageStride + c.channels * c.height * c.width);
  const float* w = f32(info, 1, "w", c.outChannels * c.channels * 9);
  float* y = f32(info, 2, "y", (c.batch - 1) * c.yImageStride + c.outChannels * c.outH * c.outW);
  octet::winogradForward(c, x, w, y, threadsArg(info, 4));
  return info.Env().Undefined();
}

// winogradWeightGradient(x, dy, dw, geometry, threads?): dw = the 3x3 weight gradient.
Napi::Value WinogradWeightGradient(const Napi::CallbackInfo& info) {
  const octet::WinogradConv c = winogradArg(info, 3);
  const float* x = f32(info, 0, "x", (c.batch - 1) * c.xImageStride + c.channels * c.height * c.width);
  const float* dy = f32(info, 1, "dy", (c.batch - 1) * c.yImageStride + c.outChannels * c.outH * c.outW);
  float* dw = f32(info, 2, "dw", c.outChannels * c.channels * 9);
  if (c.flipped) throw Napi::RangeError::New(info.Env(), "winogradWeightGradient: flipped kernels are for the forward only");
  octet::winogradWeightGradient(c, x, dy, dw, threadsArg(info, 4));
  return info.Env().Undefined();
}

Napi::Value Col2imBatch(const Napi::CallbackInfo& info) {
  const octet::ConvGeometry g = geometryArg(info, 2);
  const int64_t batch = intArg(info, 3, "batch"), stride = intArg(info, 4, "imageStride");
  const int64_t image = (batch - 1) * stride + g.channels * g.height * g.width;
  const int64_t columns = g.channels * g.kernelH * g.kernelW * g.outH * g.outW * batch;
  octet::col2imBatch(f32(info, 0, "col", columns), f32(info, 1, "x", image), g, batch, stride, threadsArg(info, 5));
  return info.Env().Undefined();
}

// A Float32Array or a Uint8Array at argument i: its data and element size (4 or 1).
std::pair<void*, int> planeArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t needs) {
  if (!info[i].IsTypedArray()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array or a Uint8Array");
  auto t = info[i].As<Napi::TypedArray>();
  const int bytes = t.TypedArrayType() == napi_float32_array ? 4 : t.TypedArrayType() == napi_uint8_array ? 1 : 0;
  if (bytes == 0) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array or a Uint8Array");
  if (static_cast<int64_t>(t.ElementLength()) < needs) throw Napi::RangeError::New(info.Env(), std::string(name) + " is too short for the shape");
  return {typedData(info, i), bytes};
}

// moveRows(matrix, images, rows, count, plane, channels, c0, n0, toImages, threads?): see native/im2col.h.
Napi::Value MoveRows(const Napi::CallbackInfo& info) {
  const int64_t rows = intArg(info, 2, "rows"), count = intArg(info, 3, "count"), plane = intArg(info, 4, "plane");
  const int64_t channels = intArg(info, 5, "channels"), c0 = intArg(info, 6, "c0"), n0 = intArg(info, 7, "n0");
  if (rows < 0 || count < 0 || plane < 0 || c0 < 0 || n0 < 0 || c0 + rows > channels) throw Napi::RangeError::New(info.Env(), "moveRows: rows out of range");
  auto [matrix, mb] = planeArg(info, 0, "matrix", rows * count * plane);
  auto [images, ib] = planeArg(info, 1, "images", rows == 0 || count == 0 ? 0 : (n0 + count) * channels * plane);
  if (mb != ib) throw Napi::TypeError::New(info.Env(), "moveRows: the matrix and the images must both be floats or both codes");
  const bool toImages = info[8].ToBoolean();
  const int threads = threadsArg(info, 9);
  if (mb == 4) octet::moveRows(static_cast<float*>(matrix), static_cast<float*>(images), rows, count, plane, channels, c0, n0, toImages, threads);
  else octet::moveRows(static_cast<uint8_t*>(matrix), static_cast<uint8_t*>(images), rows, count, plane, channels, c0, n0, toImages, threads);
  return info.Env().Undefined();
}

// scatterPhase(matrix, images, rows, count, channels, c0, n0, height, width, ph, pw, strideH, strideW,
//              phaseRows, phaseCols, threads?): see native/im2col.h.
Napi::Value ScatterPhase(const Napi::CallbackInfo& info) {
  int64_t v[13];
  const char* names[13] = {"rows", "count", "channels", "c0", "n0", "height", "width", "ph", "pw", "strideH", "strideW", "phaseRows", "phaseCols"};
  for (int k = 0; k < 13; ++k) {
    v[k] = intArg(info, 2 + k, names[k]);
    if (v[k] < 0) throw Napi::RangeError::New(info.Env(), std::string("scatterPhase: negative ") + names[k]);
  }
  const int64_t rows = v[0], count = v[1], channels = v[2], c0 = v[3], n0 = v[4], height = v[5], width = v[6];
  const int64_t ph = v[7], pw = v[8], sh = v[9], sw = v[10], pr = v[11], pc = v[12];
  const bool empty = rows == 0 || count == 0 || pr == 0 || pc == 0;
  if (!empty && (c0 + rows > channels || ph + sh * (pr - 1) >= height || pw + sw * (pc - 1) >= width)) {
    throw Napi::RangeError::New(info.Env(), "scatterPhase: the phase does not fit the images");
  }
  const float* matrix = f32(info, 0, "matrix", rows * count * pr * pc);
  float* images = f32(info, 1, "images", empty ? 0 : (n0 + count) * channels * height * width);
  octet::scatterPhase(matrix, images, rows, count, channels, c0, n0, height, width, ph, pw, sh, sw, pr, pc, threadsArg(info, 15));
  return info.Env().Undefined();
}

// rotateKernel(w, out, group, ocg, cg, taps, threads?): see native/im2col.h.
Napi::Value RotateKernel(const Napi::CallbackInfo& info) {
  const int64_t group = intArg(info, 2, "group"), ocg = intArg(info, 3, "ocg"), cg = intArg(info, 4, "cg"), taps = intArg(info, 5, "taps");
  if (group < 0 || ocg < 0 || cg < 0 || taps < 0) throw Napi::RangeError::New(info.Env(), "rotateKernel: negative dimension");
  auto [w, wb] = planeArg(info, 0, "w", (group + 1) * ocg * cg * taps);
  auto [out, ob] = planeArg(info, 1, "out", cg * ocg * taps);
  if (wb != ob) throw Napi::TypeError::New(info.Env(), "rotateKernel: the weights and the result must both be floats or both codes");
  const int threads = threadsArg(info, 6);
  if (wb == 4) octet::rotateKernel(static_cast<const float*>(w), static_cast<float*>(out), group, ocg, cg, taps, threads);
  else octet::rotateKernel(static_cast<const uint8_t*>(w), static_cast<uint8_t*>(out), group, ocg, cg, taps, threads);
  return info.Env().Undefined();
}

// lowpGemm(transA, transB, m, n, k, a, b, c, codecParams, lut | null, chunk, exactProducts,
//          productsOnSubnormalGrid, threads?, aTable?, bTable?, bIsE5M2?, aIsE5M2?): a and b are
//          Float32Arrays, or Uint8Arrays of codes with their tables.
Napi::Value LowpGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 13) throw Napi::TypeError::New(env, "lowpGemm takes 13 or 14 arguments");
  octet::LowpGemmArgs g;
  g.transA = info[0].ToBoolean();
  g.transB = info[1].ToBoolean();
  g.m = intArg(info, 2, "m");
  g.n = intArg(info, 3, "n");
  g.k = intArg(info, 4, "k");
  if (g.m < 0 || g.n < 0 || g.k < 0) throw Napi::RangeError::New(env, "lowpGemm: negative dimension");
  g.a = nullptr;
  g.b = nullptr;
  if (info[5].IsTypedArray() && info[5].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    if (static_cast<int64_t>(info[5].As<Napi::TypedArray>().ElementLength()) < g.m * g.k) throw Napi::RangeError::New(env, "lowpGemm: a is shorter than its matrix");
    g.aCodes = static_cast<const uint8_t*>(typedData(info, 5));
    g.aLut = f32(info, 14, "aTable", 256);
    g.aIsE5M2 = info.Length() > 17 && info[17].ToBoolean();
  } else {
    g.a = f32(info, 5, "a", g.m * g.k);
  }
  // Optional arguments 19 and 20: B is the transpose of the column matrix of images (geometry,
  // imageStride), and argument 6 holds the images.
  octet::ImplicitColumns columns;
  int64_t bNeeds = g.k * g.n;
  if (info.Length() > 20 && info[19].IsArray()) {
    if (!g.transB) throw Napi::RangeError::New(env, "lowpGemm: columns read from images need transB");
    columns.geometry = geometryArg(info, 19);
    columns.imageStride = intArg(info, 20, "imageStride");
    const octet::ConvGeometry& geo = columns.geometry;
    const int64_t plane = geo.outH * geo.outW;
    if (g.n != geo.channels * geo.kernelH * geo.kernelW || plane == 0 || g.k % plane != 0 || columns.imageStride < 0) {
      throw Napi::RangeError::New(env, "lowpGemm: the GEMM's shape does not match the column matrix of the geometry");
    }
    const int64_t batch = g.k / plane;
    bNeeds = batch == 0 ? 0 : (batch - 1) * columns.imageStride + geo.channels * geo.height * geo.width;
    g.bColumns = &columns;
  }
  if (info[6].IsTypedArray() && info[6].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    if (static_cast<int64_t>(info[6].As<Napi::TypedArray>().ElementLength()) < bNeeds) throw Napi::RangeError::New(env, "lowpGemm: b is shorter than its matrix");
    g.bCodes = static_cast<const uint8_t*>(typedData(info, 6));
    g.bLut = f32(info, 15, "bTable", 256);
    g.bIsE5M2 = info.Length() > 16 && info[16].ToBoolean();
  } else {
    g.b = f32(info, 6, "b", bNeeds);
  }
  if (g.bColumns) {
    columns.codes = g.bCodes;
    columns.x = g.b;
  }
  g.c = f32(info, 7, "c", g.m * g.n);
  g.acc = codecParamsArg(info, 8);
  g.lut = f32(info, 9, "lut", 2 * static_cast<int64_t>(g.acc.signMask), true);
  g.chunk = intArg(info, 10, "chunk");
  if (g.chunk < 0) throw Napi::RangeError::New(env, "lowpGemm: negative chunk");
  // Optional argument 18: chunk ends (Int32Array), non-decreasing, the last k.
  if (info.Length() > 18 && info[18].IsTypedArray()) {
    if (info[18].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) throw Napi::TypeError::New(env, "lowpGemm: chunkEnds must be an Int32Array");
    auto ends = info[18].As<Napi::Int32Array>();
    const int64_t count = static_cast<int64_t>(ends.ElementLength());
    int64_t previous = 0;
    for (int64_t c = 0; c < count; ++c) {
      if (ends[c] < previous) throw Napi::RangeError::New(env, "lowpGemm: chunkEnds must not decrease");
      previous = ends[c];
    }
    if (count == 0 || previous != g.k) throw Napi::RangeError::New(env, "lowpGemm: the last chunk end must be k");
    if (g.acc.rounding != octet::kNearest) throw Napi::RangeError::New(env, "lowpGemm: chunkEnds need nearest rounding");
    g.chunkEnds = ends.Data();
    g.chunkCount = count;
  }
  g.exactProducts = info[11].ToBoolean();
  g.productsOnSubnormalGrid = info[12].ToBoolean();
  octet::lowpGemm(g, threadsArg(info, 13));
  return env.Undefined();
}

// sgemmCoded(transA, transB, m, n, k, a, aTable|null, lda, b, bTable|null, ldb, c, ldc, threads?,
//            bIsE5M2?, aIsE5M2?, unfused?):
// C = op(A) op(B) with alpha 1, beta 0 (each element one chain in k order: fused multiply-adds,
// or with `unfused` a multiply then an add per step).
Napi::Value SgemmCoded(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GemmArgs g;
  const GemmExtents needs = gemmShapeArgs(info, "sgemmCoded", 7, 10, 12, g);
  g.alpha = 1.0f;
  g.beta = 0.0f;
  g.a = nullptr;
  g.b = nullptr;
  codedOperand(info, 5, "a", needs.a, g.a, g.aCodes, g.aLut);
  codedOperand(info, 8, "b", needs.b, g.b, g.bCodes, g.bLut);
  g.c = f32(info, 11, "c", needs.c);
  g.bIsE5M2 = g.bCodes && info.Length() > 14 && info[14].ToBoolean();
  g.aIsE5M2 = g.aCodes && info.Length() > 15 && info[15].ToBoolean();
  g.fused = !(info.Length() > 16 && info[16].ToBoolean());
  octet::sgemm(g, threadsArg(info, 13));
  return env.Undefined();
}

// sgemmColumns(transA, transB, m, n, k, a, aTable|null, lda, x, xTable|null, geometry, imageStride,
//              c, ldc, cPlane, cImageStride, threads, bIsE5M2, aIsE5M2, unfused):
// C = op(A) op(B), alpha 1, beta 0, with B the column matrix of the images x (a Float32Array, or
// a Uint8Array of codes with their table) under one group's geometry (see ImplicitColumns), never
// stored; cPlane > 0 lays C's columns out image by image (see GemmArgs::cPlane).
Napi::Value SgemmColumns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 17) throw Napi::TypeError::New(env, "sgemmColumns takes 17 to 20 arguments");
  GemmArgs g;
  g.transA = info[0].ToBoolean();
  g.transB = info[1].ToBoolean();
  g.m = intArg(info, 2, "m");
  g.n = intArg(info, 3, "n");
  g.k = intArg(info, 4, "k");
  g.lda = intArg(info, 7, "lda");
  g.ldc = intArg(info, 13, "ldc");
  g.ldb = 0;
  g.alpha = 1.0f;
  g.beta = 0.0f;
  g.a = nullptr;
  g.b = nullptr;
  if (g.m < 0 || g.n < 0 || g.k < 0) throw Napi::RangeError::New(env, "sgemmColumns: negative dimension");
  if (g.lda < (g.transA ? g.m : g.k) || g.ldc < 0) throw Napi::RangeError::New(env, "sgemmColumns: leading dimension too small");
  codedOperand(info, 5, "a", extent(g.transA ? g.k : g.m, g.transA ? g.m : g.k, g.lda), g.a, g.aCodes, g.aLut);
  octet::ImplicitColumns cols;
  cols.geometry = geometryArg(info, 10);
  cols.imageStride = intArg(info, 11, "imageStride");
  const octet::ConvGeometry& geo = cols.geometry;
  const int64_t rows = geo.channels * geo.kernelH * geo.kernelW, plane = geo.outH * geo.outW;
  const int64_t colsCount = g.transB ? g.k : g.n;
  if ((g.transB ? g.n : g.k) != rows || plane == 0 || colsCount % plane != 0) {
    throw Napi::RangeError::New(env, "sgemmColumns: the GEMM's shape does not match the column matrix of the geometry");
  }
  const int64_t batch = colsCount / plane;
  if (batch > 0 && cols.imageStride < 0) throw Napi::RangeError::New(env, "sgemmColumns: negative imageStride");
  const int64_t image = batch == 0 ? 0 : (batch - 1) * cols.imageStride + geo.channels * geo.height * geo.width;
  const float* xValues = nullptr;
  const uint8_t* xCodes = nullptr;
  const float* xLut = nullptr;
  codedOperand(info, 8, "x", image, xValues, xCodes, xLut);
  cols.x = xValues;
  cols.codes = xCodes;
  g.bLut = xLut;
  g.bColumns = &cols;
  g.cPlane = intArg(info, 14, "cPlane");
  g.cImageStride = intArg(info, 15, "cImageStride");
  int64_t cNeeds = extent(g.m, g.n, g.ldc);
  if (g.cPlane != 0) {
    if (g.cPlane < 0 || g.cPlane % 32 != 0 || g.n % g.cPlane != 0 || g.ldc < g.cPlane || g.cImageStride < 0) {
      throw Napi::RangeError::New(env, "sgemmColumns: cPlane must be a positive multiple of 32 that divides n, with ldc >= cPlane");
    }
    cNeeds = g.m == 0 || g.n == 0 ? 0 : (g.n / g.cPlane - 1) * g.cImageStride + extent(g.m, g.cPlane, g.ldc);
  } else if (g.ldc < g.n) {
    throw Napi::RangeError::New(env, "sgemmColumns: leading dimension too small");
  }
  g.c = f32(info, 12, "c", cNeeds);
  g.bIsE5M2 = xCodes && info.Length() > 17 && info[17].ToBoolean();
  g.aIsE5M2 = g.aCodes && info.Length() > 18 && info[18].ToBoolean();
  g.fused = !(info.Length() > 19 && info[19].ToBoolean());
  octet::sgemm(g, threadsArg(info, 16));
  return env.Undefined();
}

// Tensors are large, short-lived blocks freed in a different order than they were allocated.
// glibc serves blocks below its mmap threshold from the heap, and raises that threshold up to
// 32 MiB as large blocks are freed, so a training step's freed activations and gradients stay in
// the heap as holes the next step's differently sized tensors cannot always reuse: a process's
// resident memory grows 60-120 MB beyond what it holds. A fixed threshold (1 MiB unless
// OCTET_MMAP_THRESHOLD says otherwise; 0 keeps glibc's own policy) maps every block that large on
// its own and returns it to the system when freed.
long mmapThreshold = 0;

void configureAllocator() {
  const char* text = std::getenv("OCTET_MMAP_THRESHOLD");
  const long bytes = text ? std::strtol(text, nullptr, 10) : (1L << 20);
#if defined(__GLIBC__)
  if (bytes > 0 && mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) == 1) mmapThreshold = bytes;
#else
  (void)bytes;
#endif
}

// prefault(array): map in every page of a freshly allocated typed array now, on this thread, in
// one system call (MADV_POPULATE_WRITE). Fresh arrays are mapped lazily, one fault per 4 KiB page
// at first touch; when that touch happens inside a multithreaded kernel, the threads' faults
// contend (measured here: 4x slower on two threads than on one), which made fresh outputs cost
// more than the arithmetic that fills them. Returns whether the kernel did it (Linux 5.14+).
Napi::Value Prefault(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "array must be a typed array");
  auto a = info[0].As<Napi::TypedArray>();
  const uintptr_t data = reinterpret_cast<uintptr_t>(typedData(info, 0));
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = data & ~(page - 1);
  const uintptr_t end = (data + a.ByteLength() + page - 1) & ~(page - 1);
  if (end > begin) return Napi::Boolean::New(info.Env(), madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE) == 0);
#else
  (void)data;
#endif
  return Napi::Boolean::New(info.Env(), false);
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("gemmKernel", octet::gemmKernelName());
  out.Set("bf16Pairs", octet::gemmBf16Pairs());
  out.Set("bf16PairProducts", static_cast<double>(octet::gemmBf16PairProducts()));
  out.Set("threads", octet::defaultThreads());
  out.Set("hardwareThreads", octet::hardwareThreads());
  out.Set("mmapThreshold", static_cast<double>(mmapThreshold));
#ifdef _OPENMP
  out.Set("openmp", true);
#else
  out.Set("openmp", false);
#endif
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  octet::setDefaultThreads(static_cast<int>(intArg(info, 0, "threads")));
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  configureAllocator();
  exports.Set("sgemm", Napi::Function::New(env, Sgemm));
  exports.Set("encode", Napi::Function::New(env, Encode));
  exports.Set("quantize", Napi::Function::New(env, Quantize));
  exports.Set("decode", Napi::Function::New(env, Decode));
  exports.Set("im2col", Napi::Function::New(env, Im2col));
  exports.Set("im2colBatch", Napi::Function::New(env, Im2colBatch));
  exports.Set("winogradForward", Napi::Function::New(env, WinogradForward));
  exports.Set("winogradWeightGradient", Napi::Function::New(env, WinogradWeightGradient));
  exports.Set("col2imBatch", Napi::Function::New(env, Col2imBatch));
  exports.Set("col2im", Napi::Function::New(env, Col2im));
  exports.Set("reluForward", Napi::Function::New(env, ReluForward));
  exports.Set("absMax", Napi::Function::New(env, AbsMax));
  exports.Set("encodeScaled", Napi::Function::New(env, EncodeScaled));
  exports.Set("scaleCountOverflow", Napi::Function::New(env, ScaleCountOverflow));
  exports.Set("reluBackward", Napi::Function::New(env, ReluBackward));
  exports.Set("add", Napi::Function::New(env, AddArrays));
  exports.Set("adamwMoments", Napi::Function::New(env, AdamwMoments));
  exports.Set("adamwApply", Napi::Function::New(env, AdamwApply));
  exports.Set("channelBiasAdd", Napi::Function::New(env, ChannelBiasAdd));
  exports.Set("channelSum", Napi::Function::New(env, ChannelSum));
  exports.Set("channelMeanVar", Napi::Function::New(env, ChannelMeanVar));
  exports.Set("batchNormForward", Napi::Function::New(env, BatchNormForward));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackward));
  exports.Set("lowpGemm", Napi::Function::New(env, LowpGemm));
  exports.Set("sgemmCoded", Napi::Function::New(env, SgemmCoded));
  exports.Set("sgemmColumns", Napi::Function::New(env, SgemmColumns));
  exports.Set("moveRows", Napi::Function::New(env, MoveRows));
  exports.Set("prefault", Napi::Function::New(env, Prefault));
  exports.Set("rotateKernel", Napi::Function::New(env, RotateKernel));
  exports.Set("scatterPhase", Napi::Function::New(env, ScatterPhase));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  return exports;
}

}  // namespace

NODE_API_MODULE(octet_native, Init)
