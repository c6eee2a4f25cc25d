// Argument checks for the Node-API bindings: each helper takes an argument position, checks its
// type and length, and throws a JavaScript TypeError or RangeError that names it otherwise.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "codec.h"
#include "im2col.h"
#include "parallel.h"
#include "winograd.h"

namespace octet {
namespace addon {

inline Napi::Float32Array float32Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array");
  }
  return info[i].As<Napi::Float32Array>();
}

inline int64_t intArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().Int64Value();
}

inline int threadsArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return octet::defaultThreads();
  int64_t t = intArg(info, i, "threads");
  return t < 1 ? 1 : static_cast<int>(t);
}

// Index of the last element touched by a rows x cols matrix with leading dimension ld, plus 1.
inline int64_t extent(int64_t rows, int64_t cols, int64_t ld) { return rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols; }

inline Napi::Float64Array float64Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float64Array");
  }
  return info[i].As<Napi::Float64Array>();
}

// A Float32Array of at least `length` elements, or null (returns nullptr) when allowed.
inline float* f32(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t length, bool nullable = false) {
  if (nullable && info[i].IsNull()) return nullptr;
  auto a = float32Arg(info, i, name);
  if (static_cast<int64_t>(a.ElementLength()) < length) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " is shorter than the shape needs");
  }
  return a.Data();
}

inline double* f64(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t length) {
  auto a = float64Arg(info, i, name);
  if (static_cast<int64_t>(a.ElementLength()) < length) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " is shorter than the shape needs");
  }
  return a.Data();
}

struct ChannelShape {
  int64_t batch, channels, plane;
  int64_t size() const { return batch * channels * plane; }
};

inline ChannelShape channelShapeArg(const Napi::CallbackInfo& info, size_t i) {
  ChannelShape s{intArg(info, i, "batch"), intArg(info, i + 1, "channels"), intArg(info, i + 2, "plane")};
  if (s.batch < 0 || s.channels < 0 || s.plane < 0) throw Napi::RangeError::New(info.Env(), "negative dimension");
  return s;
}

// Codec parameters: an array of 13 numbers in CodecParams order.
inline octet::CodecParams codecParamsArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsArray()) throw Napi::TypeError::New(info.Env(), "codec parameters must be an array");
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() != 13) throw Napi::TypeError::New(info.Env(), "codec parameters must have 13 entries");
  auto at = [&](uint32_t k) { return a.Get(k).As<Napi::Number>().Int64Value(); };
  octet::CodecParams p;
  p.mantissaBits = static_cast<int32_t>(at(0));
  p.emin = static_cast<int32_t>(at(1));
  p.bias = static_cast<int32_t>(at(2));
  p.signMask = static_cast<uint32_t>(at(3));
  p.maxBiasedExponent = static_cast<int32_t>(at(4));
  p.maxMantissaAtTop = static_cast<int32_t>(at(5));
  p.nanCode = static_cast<uint32_t>(at(6));
  p.infResult = static_cast<uint32_t>(at(7));
  p.finiteOverflow = static_cast<uint32_t>(at(8));
  p.subnormalsKept = at(9) != 0 ? 1u : 0u;
  p.rounding = static_cast<int32_t>(at(10));
  p.key = static_cast<uint32_t>(at(11));
  p.counterOffset = static_cast<uint32_t>(at(12));
  if (p.mantissaBits < 1 || p.mantissaBits > 23 || p.rounding < 0 || p.rounding > 2) {
    throw Napi::RangeError::New(info.Env(), "codec parameters out of range");
  }
  return p;
}

inline int codeBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a typed array");
  switch (info[i].As<Napi::TypedArray>().TypedArrayType()) {
    case napi_uint8_array: return 1;
    case napi_uint16_array: return 2;
    case napi_uint32_array: return 4;
    default: throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Uint8Array, Uint16Array or Uint32Array");
  }
}

inline void* typedData(const Napi::CallbackInfo& info, size_t i) {
  Napi::TypedArray t = info[i].As<Napi::TypedArray>();
  return static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
}

// A bit mask for n elements: a Uint8Array of at least ceil(n / 8) bytes.
inline uint8_t* maskArg(const Napi::CallbackInfo& info, size_t i, int64_t n) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), "mask must be a Uint8Array");
  }
  auto t = info[i].As<Napi::Uint8Array>();
  if (int64_t(t.ElementLength()) < (n + 7) / 8) throw Napi::RangeError::New(info.Env(), "mask is too short for the tensor");
  return static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
}

// Geometry: an array [C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW]; every entry positive but
// C (>= 0) and the paddings (any integer).
inline octet::ConvGeometry geometryArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsArray() || info[i].As<Napi::Array>().Length() != 13) {
    throw Napi::TypeError::New(info.Env(), "convolution geometry must be an array of 13 numbers");
  }
  Napi::Array a = info[i].As<Napi::Array>();
  int64_t v[13];
  for (uint32_t k = 0; k < 13; ++k) {
    v[k] = a.Get(k).As<Napi::Number>().Int64Value();
    // Padding may be negative (a crop: the input gradient's phase convolutions use it).
    if ((k != 7 && k != 8 && v[k] < 0) || (k != 7 && k != 8 && v[k] == 0 && k != 0)) {
      throw Napi::RangeError::New(info.Env(), "convolution geometry out of range");
    }
  }
  return octet::ConvGeometry{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
}

// Winograd convolution: an array [tile, N, C, H, W, K, PH, PW, xImageStride, yImageStride, flipped] (a
// 3x3 kernel at stride 1: OH = H + 2 PH - 2). Checked: tile 2 or 4, sizes positive, paddings 0..2,
// image strides no smaller than an image, padded images under 2^31 floats.
inline octet::WinogradConv winogradArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsArray() || info[i].As<Napi::Array>().Length() != 11) {
    throw Napi::TypeError::New(info.Env(), "Winograd geometry must be an array of 11 numbers");
  }
  Napi::Array a = info[i].As<Napi::Array>();
  int64_t v[11];
  for (uint32_t k = 0; k < 11; ++k) v[k] = a.Get(k).As<Napi::Number>().Int64Value();
  octet::WinogradConv c{static_cast<int>(v[0]), v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[3] + 2 * v[6] - 2, v[4] + 2 * v[7] - 2, v[8], v[9], v[10] != 0};
  const bool ok = (c.tile == 2 || c.tile == 4) && c.batch > 0 && c.channels > 0 && c.height > 0 && c.width > 0 && c.outChannels > 0 &&
                  c.padH >= 0 && c.padH <= 2 && c.padW >= 0 && c.padW <= 2 && c.outH > 0 && c.outW > 0 &&
                  c.xImageStride >= c.channels * c.height * c.width && c.yImageStride >= c.outChannels * c.outH * c.outW;
  if (!ok) throw Napi::RangeError::New(info.Env(), "Winograd geometry out of range");
  // The kernels index the padded images and the output gradient with 32-bit offsets.
  const int64_t th = (c.outH + c.tile - 1) / c.tile, tw = (c.outW + c.tile - 1) / c.tile;
  const int64_t padded = c.batch * c.channels * (th * c.tile + 2) * (tw * c.tile + 2);
  if (padded >= (int64_t(1) << 31) || c.batch * c.yImageStride >= (int64_t(1) << 31)) {
    throw Napi::RangeError::New(info.Env(), "Winograd: the batch is too large for 32-bit offsets; split it");
  }
  return c;
}

// An operand of sgemmCoded: a Float32Array, or a Uint8Array of codes with its table.
inline void codedOperand(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t needs, const float*& values,
                  const uint8_t*& codes, const float*& lut) {
  Napi::Env env = info.Env();
  if (!info[i].IsTypedArray()) throw Napi::TypeError::New(env, std::string(name) + " must be a Float32Array or a Uint8Array");
  auto t = info[i].As<Napi::TypedArray>();
  if (static_cast<int64_t>(t.ElementLength()) < needs) throw Napi::RangeError::New(env, std::string(name) + " is shorter than its matrix");
  if (t.TypedArrayType() == napi_float32_array) {
    values = info[i].As<Napi::Float32Array>().Data();
    return;
  }
  if (t.TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, std::string(name) + " must be a Float32Array or a Uint8Array");
  codes = static_cast<const uint8_t*>(typedData(info, i));
  lut = f32(info, i + 1, "table", 256);
}

}  // namespace addon
}  // namespace octet
