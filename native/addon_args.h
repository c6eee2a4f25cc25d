// Argument checks for the Node-API bindings. Every binding takes its arrays first, then one object
// of named options (sizes, flags, a format's codec parameters, a convolution's geometry); the
// helpers here read a typed array or a named field, check its type, length and range, and throw a
// JavaScript TypeError or RangeError that names it otherwise.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "codec.h"
#include "im2col.h"
#include "parallel.h"
#include "winograd.h"

namespace octet {
namespace addon {

inline Napi::Error typeError(Napi::Env env, const std::string& what) { return Napi::TypeError::New(env, what); }
inline Napi::Error rangeError(Napi::Env env, const std::string& what) { return Napi::RangeError::New(env, what); }

// Index of the last element touched by a rows x cols matrix with leading dimension ld, plus 1.
inline int64_t extent(int64_t rows, int64_t cols, int64_t ld) { return rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols; }

inline void* typedData(const Napi::TypedArray& t) { return static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset(); }

// The options object at argument i.
inline Napi::Object optionsArg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (info.Length() <= i || !info[i].IsObject() || info[i].IsTypedArray() || info[i].IsArray()) {
    throw typeError(info.Env(), std::string(op) + " takes its options as an object (argument " + std::to_string(i + 1) + ")");
  }
  return info[i].As<Napi::Object>();
}

inline Napi::Value field(const Napi::Object& o, const char* name, bool required = true) {
  Napi::Value v = o.Get(name);
  if (required && (v.IsUndefined() || v.IsNull())) throw typeError(o.Env(), std::string("missing option ") + name);
  return v;
}

inline double numberField(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsNumber()) throw typeError(o.Env(), std::string(name) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// An integer option (exactly an integer: 1.5 is refused, not truncated).
inline int64_t intField(const Napi::Object& o, const char* name) {
  const double v = numberField(o, name);
  if (!(std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.007199254740992e15)) {
    throw rangeError(o.Env(), std::string(name) + " must be an integer");
  }
  return static_cast<int64_t>(v);
}

inline int64_t sizeField(const Napi::Object& o, const char* name) {
  const int64_t v = intField(o, name);
  if (v < 0) throw rangeError(o.Env(), std::string(name) + " must not be negative");
  return v;
}

inline bool boolField(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name, false);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) throw typeError(o.Env(), std::string(name) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// Threads: a positive integer, or the default when the option is absent.
inline int threadsField(const Napi::Object& o) {
  if (field(o, "threads", false).IsUndefined()) return octet::defaultThreads();
  const int64_t t = intField(o, "threads");
  if (t < 1) throw rangeError(o.Env(), "threads must be a positive integer");
  return static_cast<int>(t);
}

inline bool isType(const Napi::Value& v, napi_typedarray_type type) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
}

// A Float32Array of at least `length` elements (or null, returned as nullptr, when allowed).
inline float* f32(Napi::Env env, const Napi::Value& v, const char* name, int64_t length, bool nullable = false) {
  if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!isType(v, napi_float32_array)) throw typeError(env, std::string(name) + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) < length) throw rangeError(env, std::string(name) + " is shorter than the shape needs");
  return a.Data();
}

inline float* f32(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t length, bool nullable = false) {
  return f32(info.Env(), info[i], name, length, nullable);
}

inline int64_t f32Length(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!isType(info[i], napi_float32_array)) throw typeError(info.Env(), std::string(name) + " must be a Float32Array");
  return static_cast<int64_t>(info[i].As<Napi::Float32Array>().ElementLength());
}

inline double* f64(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t length) {
  if (!isType(info[i], napi_float64_array)) throw typeError(info.Env(), std::string(name) + " must be a Float64Array");
  auto a = info[i].As<Napi::Float64Array>();
  if (static_cast<int64_t>(a.ElementLength()) < length) throw rangeError(info.Env(), std::string(name) + " is shorter than the shape needs");
  return a.Data();
}

// Per-channel shape options: batch, channels, plane.
struct ChannelShape {
  int64_t batch, channels, plane;
  int64_t size() const { return batch * channels * plane; }
};

inline ChannelShape channelShapeField(const Napi::Object& o) { return {sizeField(o, "batch"), sizeField(o, "channels"), sizeField(o, "plane")}; }

// A format's codec parameters: the fields of EncodeParams (src/formats/codec.ts) by name.
inline octet::CodecParams codecParamsField(const Napi::Object& options, const char* name) {
  Napi::Value v = field(options, name);
  if (!v.IsObject()) throw typeError(options.Env(), std::string(name) + " must be the codec parameters of a format (an object)");
  Napi::Object o = v.As<Napi::Object>();
  octet::CodecParams p;
  p.mantissaBits = static_cast<int32_t>(intField(o, "m"));
  p.emin = static_cast<int32_t>(intField(o, "emin"));
  p.bias = static_cast<int32_t>(intField(o, "bias"));
  p.signMask = static_cast<uint32_t>(intField(o, "signMask"));
  p.maxBiasedExponent = static_cast<int32_t>(intField(o, "maxBiasedExponent"));
  p.maxMantissaAtTop = static_cast<int32_t>(intField(o, "maxMantissaAtTop"));
  p.nanCode = static_cast<uint32_t>(intField(o, "nanCode"));
  p.infResult = static_cast<uint32_t>(intField(o, "infResult"));
  p.finiteOverflow = static_cast<uint32_t>(intField(o, "finiteOverflow"));
  p.subnormalsKept = boolField(o, "subnormals") ? 1u : 0u;
  p.signedZero = boolField(o, "signedZero") ? 1u : 0u;
  p.signedNaN = boolField(o, "signedNaN") ? 1u : 0u;
  p.rounding = static_cast<int32_t>(intField(o, "rounding"));
  p.key = static_cast<uint32_t>(intField(o, "key"));
  p.counterOffset = static_cast<uint32_t>(intField(o, "counterOffset"));
  if (p.mantissaBits < 1 || p.mantissaBits > 23 || p.rounding < 0 || p.rounding > 2) {
    throw rangeError(options.Env(), std::string(name) + ": codec parameters out of range");
  }
  return p;
}

// The element size of a Uint8Array, Uint16Array or Uint32Array of codes.
inline int codeBytes(Napi::Env env, const Napi::Value& v, const char* name) {
  if (isType(v, napi_uint8_array)) return 1;
  if (isType(v, napi_uint16_array)) return 2;
  if (isType(v, napi_uint32_array)) return 4;
  throw typeError(env, std::string(name) + " must be a Uint8Array, Uint16Array or Uint32Array");
}

// A bit mask for n elements: a Uint8Array of at least ceil(n / 8) bytes.
inline uint8_t* maskArg(const Napi::CallbackInfo& info, size_t i, int64_t n) {
  if (!isType(info[i], napi_uint8_array)) throw typeError(info.Env(), "mask must be a Uint8Array");
  auto t = info[i].As<Napi::Uint8Array>();
  if (int64_t(t.ElementLength()) < (n + 7) / 8) throw rangeError(info.Env(), "mask is too short for the tensor");
  return t.Data();
}

// A convolution's column geometry (ColumnGeometry in src/kernels/conv_geometry.ts) by name: every
// size positive but channels (>= 0); paddings may be negative (a crop: the input gradient's phase
// convolutions use it).
inline octet::ConvGeometry geometryField(const Napi::Object& options, const char* name = "geometry") {
  Napi::Value v = field(options, name);
  if (!v.IsObject()) throw typeError(options.Env(), std::string(name) + " must be a convolution geometry (an object)");
  Napi::Object o = v.As<Napi::Object>();
  octet::ConvGeometry g{intField(o, "channels"), intField(o, "height"),  intField(o, "width"),     intField(o, "kernelH"),
                        intField(o, "kernelW"),  intField(o, "strideH"), intField(o, "strideW"),   intField(o, "padH"),
                        intField(o, "padW"),     intField(o, "dilationH"), intField(o, "dilationW"), intField(o, "outH"),
                        intField(o, "outW")};
  const bool ok = g.channels >= 0 && g.height > 0 && g.width > 0 && g.kernelH > 0 && g.kernelW > 0 && g.strideH > 0 && g.strideW > 0 &&
                  g.dilationH > 0 && g.dilationW > 0 && g.outH > 0 && g.outW > 0;
  if (!ok) throw rangeError(options.Env(), "convolution geometry out of range");
  return g;
}

// A Winograd convolution (the options of winogradForward / winogradWeightGradient: tile, batch,
// channels, height, width, outChannels, padH, padW, xImageStride, yImageStride, flipped; a 3x3
// kernel at stride 1, OH = H + 2 PH - 2). Checked: tile 2 or 4, sizes positive, paddings 0..2,
// image strides no smaller than an image, padded images under 2^31 floats.
inline octet::WinogradConv winogradField(const Napi::Object& o) {
  octet::WinogradConv c{static_cast<int>(intField(o, "tile")), intField(o, "batch"), intField(o, "channels"), intField(o, "height"),
                        intField(o, "width"), intField(o, "outChannels"), intField(o, "padH"), intField(o, "padW"), 0, 0,
                        intField(o, "xImageStride"), intField(o, "yImageStride"), boolField(o, "flipped")};
  c.outH = c.height + 2 * c.padH - 2;
  c.outW = c.width + 2 * c.padW - 2;
  const bool ok = (c.tile == 2 || c.tile == 4) && c.batch > 0 && c.channels > 0 && c.height > 0 && c.width > 0 && c.outChannels > 0 &&
                  c.padH >= 0 && c.padH <= 2 && c.padW >= 0 && c.padW <= 2 && c.outH > 0 && c.outW > 0 &&
                  c.xImageStride >= c.channels * c.height * c.width && c.yImageStride >= c.outChannels * c.outH * c.outW;
  if (!ok) throw rangeError(o.Env(), "Winograd geometry out of range");
  // The kernels index the padded images and the output gradient with 32-bit offsets.
  const int64_t th = (c.outH + c.tile - 1) / c.tile, tw = (c.outW + c.tile - 1) / c.tile;
  const int64_t padded = c.batch * c.channels * (th * c.tile + 2) * (tw * c.tile + 2);
  if (padded >= (int64_t(1) << 31) || c.batch * c.yImageStride >= (int64_t(1) << 31)) {
    throw rangeError(o.Env(), "Winograd: the batch is too large for 32-bit offsets; split it");
  }
  return c;
}

// A format record (src/formats/spec.ts) is FP8 E5M2 as IEEE defines it: 5 exponent and 2
// mantissa bits, bias 15, infinities, subnormals. Its code shifted left by 8 is then the IEEE
// half of the same value, so the kernels decode it 16 codes at a time by half conversion.
inline bool isE5m2(const Napi::Object& format) {
  auto number = [&](const char* name) {
    Napi::Value v = format.Get(name);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1.0;
  };
  const Napi::Value subnormals = format.Get("subnormals");
  return number("exponentBits") == 5 && number("mantissaBits") == 2 && number("bias") == 15 && format.Get("infCode").IsNumber() &&
         subnormals.IsBoolean() && subnormals.As<Napi::Boolean>().Value();
}

// A matrix operand: { data: Float32Array } or { data: Uint8Array of codes, table: the value of
// every code (256 floats), format: the format record the codes belong to }.
struct Operand {
  const float* values = nullptr;
  const uint8_t* codes = nullptr;
  const float* lut = nullptr;
  bool e5m2 = false;
};

inline Operand operandArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t needs) {
  Napi::Env env = info.Env();
  if (!info[i].IsObject() || info[i].IsTypedArray()) throw typeError(env, std::string(name) + " must be an operand object { data, table, format }");
  Napi::Object o = info[i].As<Napi::Object>();
  Napi::Value data = o.Get("data");
  if (!data.IsTypedArray()) throw typeError(env, std::string(name) + ".data must be a Float32Array or a Uint8Array");
  auto t = data.As<Napi::TypedArray>();
  if (static_cast<int64_t>(t.ElementLength()) < needs) throw rangeError(env, std::string(name) + " is shorter than its matrix");
  Operand op;
  if (t.TypedArrayType() == napi_float32_array) {
    op.values = data.As<Napi::Float32Array>().Data();
    return op;
  }
  if (t.TypedArrayType() != napi_uint8_array) throw typeError(env, std::string(name) + ".data must be a Float32Array or a Uint8Array");
  op.codes = static_cast<const uint8_t*>(typedData(t));
  op.lut = f32(env, o.Get("table"), (std::string(name) + ".table").c_str(), 256);
  Napi::Value format = o.Get("format");
  if (!format.IsObject()) throw typeError(env, std::string(name) + ".format must be the format record of its codes");
  op.e5m2 = isE5m2(format.As<Napi::Object>());
  return op;
}

}  // namespace addon
}  // namespace octet
