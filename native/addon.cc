// Node-API bindings of the native kernels. Each takes its arrays, then one object of named options
// (addon_args.h). Arguments are checked here (types, lengths, ranges) so a bad call throws instead
// of touching memory outside the arrays; shapes and formats are checked again, with friendlier
// messages, by the TypeScript wrappers in src/kernels/.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "addon_args.h"
#include "aligned_gemm.h"
#include "block_scaled.h"
#include "block_sparse.h"
#include "codec.h"
#include "depthwise.h"
#include "direct_conv.h"
#include "lowp_gemm_tiles.h"
#include "elementwise.h"
#include "gemm.h"
#include "im2col.h"
#include "lowp_gemm.h"
#include "parallel.h"
#include "value_stats.h"

namespace {

using namespace octet::addon;
using octet::GemmArgs;

Napi::Value undefinedOf(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

// The shape options of a GEMM (transA, transB, m, n, k), and the extents of op(A), op(B) and C
// for the leading dimensions given.
struct GemmShape {
  bool transA, transB;
  int64_t m, n, k;
};

GemmShape gemmShapeField(const Napi::Object& o) {
  return {boolField(o, "transA"), boolField(o, "transB"), sizeField(o, "m"), sizeField(o, "n"), sizeField(o, "k")};
}

void checkLeading(Napi::Env env, const char* op, const GemmShape& s, int64_t lda, int64_t ldb, int64_t ldc) {
  if (lda < (s.transA ? s.m : s.k) || ldb < (s.transB ? s.k : s.n) || ldc < s.n) {
    throw rangeError(env, std::string(op) + ": leading dimension too small");
  }
}

GemmArgs gemmArgs(const GemmShape& s) {
  GemmArgs g;
  g.transA = s.transA;
  g.transB = s.transB;
  g.m = s.m;
  g.n = s.n;
  g.k = s.k;
  g.alpha = 1.0f;
  g.beta = 0.0f;
  g.a = nullptr;
  g.b = nullptr;
  g.c = nullptr;
  g.lda = g.ldb = g.ldc = 0;
  return g;
}

// The GemmArgs of options with all three leading dimensions (lda, ldb, ldc), checked.
GemmArgs stridedGemmArgs(const Napi::Object& o, const char* op) {
  const GemmShape s = gemmShapeField(o);
  GemmArgs g = gemmArgs(s);
  g.lda = sizeField(o, "lda");
  g.ldb = sizeField(o, "ldb");
  g.ldc = sizeField(o, "ldc");
  checkLeading(o.Env(), op, s, g.lda, g.ldb, g.ldc);
  return g;
}

// sgemm(a, b, c, { transA, transB, m, n, k, alpha, beta, lda, ldb, ldc, threads })
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "sgemm");
  const GemmShape s = gemmShapeField(o);
  GemmArgs g = stridedGemmArgs(o, "sgemm");
  g.alpha = static_cast<float>(numberField(o, "alpha"));
  g.beta = static_cast<float>(numberField(o, "beta"));
  g.a = f32(info, 0, "a", extent(s.transA ? s.k : s.m, s.transA ? s.m : s.k, g.lda));
  g.b = f32(info, 1, "b", extent(s.transB ? s.n : s.k, s.transB ? s.k : s.n, g.ldb));
  g.c = f32(info, 2, "c", extent(s.m, s.n, g.ldc));
  octet::sgemm(g, threadsField(o));
  return undefinedOf(info);
}

// sgemmCoded(a, b, c, { transA, transB, m, n, k, lda, ldb, ldc, unfused, threads }): C = op(A)
// op(B), alpha 1, beta 0, operands as floats or one-byte codes (operandArg); each element one
// chain in k order of fused multiply-adds, or with `unfused` a multiply then an add per step.
Napi::Value SgemmCoded(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "sgemmCoded");
  const GemmShape s = gemmShapeField(o);
  GemmArgs g = stridedGemmArgs(o, "sgemmCoded");
  const Operand a = operandArg(info, 0, "a", extent(s.transA ? s.k : s.m, s.transA ? s.m : s.k, g.lda));
  const Operand b = operandArg(info, 1, "b", extent(s.transB ? s.n : s.k, s.transB ? s.k : s.n, g.ldb));
  g.a = a.values;
  g.aCodes = a.codes;
  g.aLut = a.lut;
  g.aIsE5M2 = a.e5m2;
  g.b = b.values;
  g.bCodes = b.codes;
  g.bLut = b.lut;
  g.bIsE5M2 = b.e5m2;
  g.c = f32(info, 2, "c", extent(s.m, s.n, g.ldc));
  g.fused = !boolField(o, "unfused");
  octet::sgemm(g, threadsField(o));
  return undefinedOf(info);
}

// The images a column matrix is read from (ImplicitColumns): for `batch` images under geometry,
// the elements the images must hold.
int64_t imagesExtent(const octet::ConvGeometry& geo, int64_t batch, int64_t imageStride) {
  return batch == 0 ? 0 : (batch - 1) * imageStride + geo.channels * geo.height * geo.width;
}

// sgemmColumns(a, x, c, { transA, transB, m, n, k, lda, ldc, geometry, imageStride, cPlane,
// cImageStride, unfused, threads }): C = op(A) op(B), alpha 1, beta 0, with B the column matrix of
// the images x (floats or codes, operandArg) under one group's geometry (see ImplicitColumns),
// never stored; cPlane > 0 lays C's columns out image by image (see GemmArgs::cPlane).
Napi::Value SgemmColumns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 3, "sgemmColumns");
  const GemmShape s = gemmShapeField(o);
  GemmArgs g = gemmArgs(s);
  g.lda = sizeField(o, "lda");
  g.ldc = sizeField(o, "ldc");
  if (g.lda < (s.transA ? s.m : s.k)) throw rangeError(env, "sgemmColumns: leading dimension too small");
  const Operand a = operandArg(info, 0, "a", extent(s.transA ? s.k : s.m, s.transA ? s.m : s.k, g.lda));
  g.a = a.values;
  g.aCodes = a.codes;
  g.aLut = a.lut;
  g.aIsE5M2 = a.e5m2;
  octet::ImplicitColumns cols;
  cols.geometry = geometryField(o);
  cols.imageStride = sizeField(o, "imageStride");
  const octet::ConvGeometry& geo = cols.geometry;
  const int64_t rows = geo.channels * geo.kernelH * geo.kernelW, plane = geo.outH * geo.outW;
  const int64_t colsCount = s.transB ? s.k : s.n;
  if ((s.transB ? s.n : s.k) != rows || colsCount % plane != 0) {
    throw rangeError(env, "sgemmColumns: the GEMM's shape does not match the column matrix of the geometry");
  }
  const Operand x = operandArg(info, 1, "x", imagesExtent(geo, colsCount / plane, cols.imageStride));
  cols.x = x.values;
  cols.codes = x.codes;
  g.bLut = x.lut;
  g.bIsE5M2 = x.e5m2;
  g.bColumns = &cols;
  g.cPlane = sizeField(o, "cPlane");
  g.cImageStride = sizeField(o, "cImageStride");
  int64_t cNeeds = extent(s.m, s.n, g.ldc);
  if (g.cPlane != 0) {
    if (g.cPlane % 32 != 0 || s.n % g.cPlane != 0 || g.ldc < g.cPlane) {
      throw rangeError(env, "sgemmColumns: cPlane must be a positive multiple of 32 that divides n, with ldc >= cPlane");
    }
    cNeeds = s.m == 0 || s.n == 0 ? 0 : (s.n / g.cPlane - 1) * g.cImageStride + extent(s.m, g.cPlane, g.ldc);
  } else if (g.ldc < s.n) {
    throw rangeError(env, "sgemmColumns: leading dimension too small");
  }
  g.c = f32(info, 2, "c", cNeeds);
  g.fused = !boolField(o, "unfused");
  octet::sgemm(g, threadsField(o));
  return undefinedOf(info);
}

// The emulated accumulator's options (lowpGemm's and directConvForwardLowp's): accumulator (codec
// parameters), table, chunk, chunkEnds (an Int32Array, non-decreasing, the last k; nearest
// rounding only), exactProducts, productsOnSubnormalGrid; into g.
void accumulatorFields(const Napi::Object& o, int64_t k, octet::LowpGemmArgs& g, const char* who) {
  Napi::Env env = o.Env();
  g.acc = codecParamsField(o, "accumulator");
  g.lut = f32(env, field(o, "table", false), "table", 2 * static_cast<int64_t>(g.acc.signMask), true);
  g.chunk = sizeField(o, "chunk");
  const Napi::Value endsValue = field(o, "chunkEnds", false);
  if (!endsValue.IsUndefined() && !endsValue.IsNull()) {
    if (!isType(endsValue, napi_int32_array)) throw typeError(env, std::string(who) + ": chunkEnds must be an Int32Array");
    auto endsArray = endsValue.As<Napi::Int32Array>();
    const int32_t* ends = endsArray.Data();
    const int64_t count = static_cast<int64_t>(endsArray.ElementLength());
    int64_t previous = 0;
    for (int64_t c = 0; c < count; ++c) {
      if (ends[c] < previous) throw rangeError(env, std::string(who) + ": chunkEnds must not decrease");
      previous = ends[c];
    }
    if (count == 0 || previous != k) throw rangeError(env, std::string(who) + ": the last chunk end must be k");
    if (g.acc.rounding != octet::kNearest) throw rangeError(env, std::string(who) + ": chunkEnds need nearest rounding");
    g.chunkEnds = ends;
    g.chunkCount = count;
  }
  g.exactProducts = boolField(o, "exactProducts");
  g.productsOnSubnormalGrid = boolField(o, "productsOnSubnormalGrid");
}

// lowpGemm(a, b, c, { transA, transB, m, n, k, accumulator, table, chunk, chunkEnds,
// exactProducts, productsOnSubnormalGrid, columns, threads }): the emulated-accumulation GEMM
// (native/lowp_gemm.h). accumulator: the codec parameters of the accumulator's format; table: the
// value of each of its codes (absent for fp32: no rounding); chunkEnds: an Int32Array,
// non-decreasing, the last k (nearest rounding only); columns: { geometry, imageStride } when B
// is the transpose of the column matrix of the images b (with transB).
Napi::Value LowpGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 3, "lowpGemm");
  const GemmShape s = gemmShapeField(o);
  octet::LowpGemmArgs g;
  g.transA = s.transA;
  g.transB = s.transB;
  g.m = s.m;
  g.n = s.n;
  g.k = s.k;
  const Operand a = operandArg(info, 0, "a", s.m * s.k);
  g.a = a.values;
  g.aCodes = a.codes;
  g.aLut = a.lut;
  g.aIsE5M2 = a.e5m2;
  octet::ImplicitColumns columns;
  int64_t bNeeds = s.k * s.n;
  const Napi::Value columnsValue = field(o, "columns", false);
  if (!columnsValue.IsUndefined() && !columnsValue.IsNull()) {
    if (!s.transB) throw rangeError(env, "lowpGemm: columns read from images need transB");
    if (!columnsValue.IsObject()) throw typeError(env, "lowpGemm: columns must be { geometry, imageStride }");
    const Napi::Object c = columnsValue.As<Napi::Object>();
    columns.geometry = geometryField(c);
    columns.imageStride = sizeField(c, "imageStride");
    const octet::ConvGeometry& geo = columns.geometry;
    const int64_t plane = geo.outH * geo.outW;
    if (s.n != geo.channels * geo.kernelH * geo.kernelW || s.k % plane != 0) {
      throw rangeError(env, "lowpGemm: the GEMM's shape does not match the column matrix of the geometry");
    }
    bNeeds = imagesExtent(geo, s.k / plane, columns.imageStride);
    g.bColumns = &columns;
  }
  const Operand b = operandArg(info, 1, "b", bNeeds);
  g.b = b.values;
  g.bCodes = b.codes;
  g.bLut = b.lut;
  g.bIsE5M2 = b.e5m2;
  if (g.bColumns) {
    columns.codes = g.bCodes;
    columns.x = g.b;
  }
  g.c = f32(info, 2, "c", s.m * s.n);
  accumulatorFields(o, s.k, g, "lowpGemm");
  octet::lowpGemm(g, threadsField(o));
  return undefinedOf(info);
}

// absMax(x, { threads }) -> number; scaleCountOverflow(x, out, { scale, maxFinite, threads }) -> number.
Napi::Value AbsMax(const Napi::CallbackInfo& info) {
  const int64_t n = f32Length(info, 0, "x");
  return Napi::Number::New(info.Env(), octet::absMax(f32(info, 0, "x", n), n, threadsField(optionsArg(info, 1, "absMax"))));
}

Napi::Value ScaleCountOverflow(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "scaleCountOverflow");
  const int64_t n = f32Length(info, 0, "x");
  const int64_t count = octet::scaleCountOverflow(f32(info, 0, "x", n), static_cast<float>(numberField(o, "scale")), f32(info, 1, "out", n), n,
                                                  static_cast<float>(numberField(o, "maxFinite")), threadsField(o));
  return Napi::Number::New(info.Env(), double(count));
}

// blockQuantize(values, codes, scales, { rows, k, kMajorInput, blockRows, blockK, scaleKind, margin,
// maxFinite, emax, params, magnitudeMask, threads }) -> [nonFinite, nonzero, underflow]. See block_scaled.h.
Napi::Value BlockQuantize(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 3, "blockQuantize");
  octet::BlockQuantParams p;
  p.rows = sizeField(o, "rows");
  p.k = sizeField(o, "k");
  p.kMajorInput = boolField(o, "kMajorInput");
  p.blockRows = sizeField(o, "blockRows");
  p.blockK = sizeField(o, "blockK");
  p.scaleKind = static_cast<int>(intField(o, "scaleKind"));
  p.margin = static_cast<int>(intField(o, "margin"));
  p.maxFinite = static_cast<float>(numberField(o, "maxFinite"));
  p.emax = static_cast<int>(intField(o, "emax"));
  p.codec = codecParamsField(o, "params");
  p.magnitudeMask = static_cast<uint32_t>(sizeField(o, "magnitudeMask"));
  if (p.blockRows < 1 || p.blockK < 1 || p.scaleKind < 0 || p.scaleKind > 2 || p.margin < 0 || p.margin > 30) {
    throw rangeError(env, "blockQuantize: block sizes, scaleKind or margin out of range");
  }
  const int64_t n = p.rows * p.k;
  if (!isType(info[1], napi_uint8_array) || static_cast<int64_t>(info[1].As<Napi::Uint8Array>().ElementLength()) < n) {
    throw typeError(env, "blockQuantize: codes must be a Uint8Array of rows * k elements");
  }
  const int64_t scaleCount = ((p.k + p.blockK - 1) / p.blockK) * ((p.rows + p.blockRows - 1) / p.blockRows);
  int64_t counts[3];
  octet::blockQuantize(f32(info, 0, "values", n), info[1].As<Napi::Uint8Array>().Data(), f32(info, 2, "scales", scaleCount), p, counts, threadsField(o));
  Napi::Array out = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; ++i) out.Set(i, Napi::Number::New(env, double(counts[i])));
  return out;
}

// blockScaleAdd(partial, acc, sa, sb, { m, n, blockRowsA, blockRowsB, outer: params | null,
// table: Float32Array | null, threads }). See block_scaled.h.
Napi::Value BlockScaleAdd(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 4, "blockScaleAdd");
  const int64_t m = sizeField(o, "m"), n = sizeField(o, "n");
  const int64_t bra = sizeField(o, "blockRowsA"), brb = sizeField(o, "blockRowsB");
  if (bra < 1 || brb < 1) throw rangeError(info.Env(), "blockScaleAdd: block rows must be positive");
  const bool rounded = !field(o, "outer", false).IsNull() && !field(o, "outer", false).IsUndefined();
  octet::CodecParams outer{};
  if (rounded) outer = codecParamsField(o, "outer");
  const float* lut = rounded ? f32(info.Env(), field(o, "table"), "table", 2 * static_cast<int64_t>(outer.signMask)) : nullptr;
  octet::blockScaleAdd(f32(info, 0, "partial", m * n), f32(info, 1, "acc", m * n), m, n, f32(info, 2, "sa", (m + bra - 1) / bra), bra,
                       f32(info, 3, "sb", (n + brb - 1) / brb), brb, rounded ? &outer : nullptr, lut, threadsField(o));
  return info.Env().Undefined();
}

// The runs of a block-scaled product: the block sizes from o, the divisors (Float32Arrays) and the
// run ends (a Float64Array, increasing, the last k; copied into `ends`).
octet::BlockRuns blockRunsArgs(const Napi::Env env, const Napi::Object& o, const Napi::Value& scalesA, const Napi::Value& scalesB, const Napi::Value& endsValue,
                               int64_t m, int64_t n, int64_t k, std::vector<int64_t>& ends, const std::string& name) {
  octet::BlockRuns g;
  g.blockKA = sizeField(o, "blockKA");
  g.blockRowsA = sizeField(o, "blockRowsA");
  g.blockKB = sizeField(o, "blockKB");
  g.blockRowsB = sizeField(o, "blockRowsB");
  if (g.blockKA < 1 || g.blockRowsA < 1 || g.blockKB < 1 || g.blockRowsB < 1) throw rangeError(env, name + ": block sizes must be positive");
  g.scalesA = f32(env, scalesA, "scalesA", ((k + g.blockKA - 1) / g.blockKA) * ((m + g.blockRowsA - 1) / g.blockRowsA));
  g.scalesB = f32(env, scalesB, "scalesB", ((k + g.blockKB - 1) / g.blockKB) * ((n + g.blockRowsB - 1) / g.blockRowsB));
  if (!isType(endsValue, napi_float64_array)) throw typeError(env, name + ": ends must be a Float64Array");
  const Napi::Float64Array endsArray = endsValue.As<Napi::Float64Array>();
  ends.resize(endsArray.ElementLength());
  int64_t previous = 0;
  for (size_t r = 0; r < ends.size(); ++r) {
    ends[r] = static_cast<int64_t>(endsArray[r]);
    if (ends[r] <= previous || ends[r] > k) throw rangeError(env, name + ": run ends must increase within k");
    previous = ends[r];
  }
  if (k > 0 && previous != k) throw rangeError(env, name + ": the last run must end at k");
  g.ends = ends.data();
  g.runs = static_cast<int64_t>(ends.size());
  return g;
}

// blockGemmFp32(a, b, c, scalesA, scalesB, ends, { m, n, k, blockKA, blockRowsA, blockKB, blockRowsB,
// aTable, bTable, threads }): a K x m, b K x n one-byte codes (Uint8Array) with the value of every
// code (256 floats each); ends a Float64Array of run ends. See block_scaled.h.
Napi::Value BlockGemmFp32(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 6, "blockGemmFp32");
  octet::BlockGemmFp32Args g;
  g.m = sizeField(o, "m");
  g.n = sizeField(o, "n");
  g.k = sizeField(o, "k");
  for (size_t i : {0u, 1u}) {
    if (!isType(info[i], napi_uint8_array) || static_cast<int64_t>(info[i].As<Napi::Uint8Array>().ElementLength()) < g.k * (i ? g.n : g.m)) {
      throw typeError(env, "blockGemmFp32: a and b must be Uint8Arrays of k * m and k * n codes");
    }
  }
  g.a = info[0].As<Napi::Uint8Array>().Data();
  g.b = info[1].As<Napi::Uint8Array>().Data();
  g.aLut = f32(env, field(o, "aTable"), "aTable", 256);
  g.bLut = f32(env, field(o, "bTable"), "bTable", 256);
  g.c = f32(info, 2, "c", g.m * g.n);
  std::vector<int64_t> ends;
  g.blocks = blockRunsArgs(env, o, info[3], info[4], info[5], g.m, g.n, g.k, ends, "blockGemmFp32");
  octet::blockGemmFp32(g, threadsField(o));
  return env.Undefined();
}

// The tables of one operand format for alignedGemm: { sig: Int8Array(256), exp: Int8Array(256),
// bad: Uint8Array(256), mantissaBits }.
octet::AlignedTables alignedTablesField(const Napi::Object& o, const char* name) {
  const Napi::Env env = o.Env();
  const Napi::Value v = field(o, name);
  if (!v.IsObject()) throw typeError(env, std::string(name) + " must be { sig, exp, bad, mantissaBits }");
  const Napi::Object t = v.As<Napi::Object>();
  octet::AlignedTables tables;
  const auto bytes = [&](const char* key, napi_typedarray_type type, void* dst) {
    const Napi::Value a = t.Get(key);
    if (!isType(a, type) || a.As<Napi::TypedArray>().ElementLength() != 256) throw typeError(env, std::string(name) + "." + key + " must be a 256-element byte array");
    std::memcpy(dst, static_cast<uint8_t*>(a.As<Napi::TypedArray>().ArrayBuffer().Data()) + a.As<Napi::TypedArray>().ByteOffset(), 256);
  };
  bytes("sig", napi_int8_array, tables.sig);
  bytes("exp", napi_int8_array, tables.exp);
  bytes("bad", napi_uint8_array, tables.bad);
  tables.mantissaBits = static_cast<int>(intField(t, "mantissaBits"));
  return tables;
}

// alignedGemm(a, b, c, { m, n, k, aTables, bTables, group, keep, significant, interval, threads,
// aKMajor?, blocks? }): a m x k (k x m with aKMajor) and b k x n one-byte codes, row-major; blocks
// { scalesA, scalesB, ends, blockKA, blockRowsA, blockKB, blockRowsB } makes it the block-scaled
// product (block_scaled.h's runs and divisors). See aligned_gemm.h.
Napi::Value AlignedGemm(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 3, "alignedGemm");
  octet::AlignedGemmArgs g;
  g.m = sizeField(o, "m");
  g.n = sizeField(o, "n");
  g.k = sizeField(o, "k");
  for (size_t i : {0u, 1u}) {
    if (!isType(info[i], napi_uint8_array) || static_cast<int64_t>(info[i].As<Napi::Uint8Array>().ElementLength()) < (i ? g.k * g.n : g.m * g.k)) {
      throw typeError(env, "alignedGemm: a and b must be Uint8Arrays of m * k and k * n codes");
    }
  }
  g.a = info[0].As<Napi::Uint8Array>().Data();
  g.b = info[1].As<Napi::Uint8Array>().Data();
  g.c = f32(info, 2, "c", g.m * g.n);
  g.ta = alignedTablesField(o, "aTables");
  g.tb = alignedTablesField(o, "bTables");
  g.group = static_cast<int>(intField(o, "group"));
  g.keep = static_cast<int>(intField(o, "keep"));
  g.significant = static_cast<int>(intField(o, "significant"));
  g.interval = sizeField(o, "interval");
  const Napi::Value kMajor = o.Get("aKMajor");
  g.aKMajor = kMajor.IsBoolean() && kMajor.As<Napi::Boolean>().Value();
  std::vector<int64_t> ends;
  const Napi::Value blocks = o.Get("blocks");
  if (!blocks.IsUndefined() && !blocks.IsNull()) {
    if (!blocks.IsObject()) throw typeError(env, "alignedGemm: blocks must be { scalesA, scalesB, ends, blockKA, blockRowsA, blockKB, blockRowsB }");
    const Napi::Object b = blocks.As<Napi::Object>();
    g.blocks = blockRunsArgs(env, b, b.Get("scalesA"), b.Get("scalesB"), b.Get("ends"), g.m, g.n, g.k, ends, "alignedGemm");
    g.scaled = true;
  }
  if (g.group < 1 || g.keep < 1 || g.keep > 20 || g.significant < 1 || g.significant > 24) throw rangeError(env, "alignedGemm: group, keep or significant out of range");
  octet::alignedGemm(g, threadsField(o));
  return env.Undefined();
}

// valueHistogram(x, bins, { threads }) -> [zeros, nonfinite, maxPattern]; bins: Uint32Array(32768).
// collectBins(x, slot, offsets, out, {}) -> values written: slot Int32Array(32768), offsets
// (slots + 1 entries) and out Uint32Arrays.
// errorEnergy(value, ref, middle | null, sums, { threads }): sums Float64Array(4). See value_stats.h.
template <typename T>
T* typedArg(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, const char* name, int64_t length) {
  if (!isType(info[i], type)) throw typeError(info.Env(), std::string(name) + " has the wrong array type");
  auto a = info[i].As<Napi::TypedArray>();
  if (static_cast<int64_t>(a.ElementLength()) < length) throw rangeError(info.Env(), std::string(name) + " is too short");
  return static_cast<T*>(typedData(a));
}

Napi::Value ValueHistogram(const Napi::CallbackInfo& info) {
  const int64_t n = f32Length(info, 0, "x");
  int64_t counts[3];
  octet::valueHistogram(f32(info, 0, "x", n), n, typedArg<uint32_t>(info, 1, napi_uint32_array, "bins", 1 << 15), counts,
                        threadsField(optionsArg(info, 2, "valueHistogram")));
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  for (uint32_t k = 0; k < 3; ++k) out.Set(k, Napi::Number::New(info.Env(), double(counts[k])));
  return out;
}

Napi::Value CollectBins(const Napi::CallbackInfo& info) {
  const int64_t n = f32Length(info, 0, "x");
  const int32_t* slot = typedArg<int32_t>(info, 1, napi_int32_array, "slot", 1 << 15);
  const int64_t slots = static_cast<int64_t>(info[2].As<Napi::TypedArray>().ElementLength()) - 1;
  if (slots < 0) throw rangeError(info.Env(), "collectBins: offsets needs slots + 1 entries");
  const uint32_t* offsets = typedArg<uint32_t>(info, 2, napi_uint32_array, "offsets", slots + 1);
  uint32_t* out = typedArg<uint32_t>(info, 3, napi_uint32_array, "out", offsets[slots]);
  for (int64_t k = 0; k < (1 << 15); ++k) {
    if (slot[k] >= slots) throw rangeError(info.Env(), "collectBins: a slot beyond offsets");
  }
  optionsArg(info, 4, "collectBins");
  const int64_t written = octet::collectBins(f32(info, 0, "x", n), n, slot, offsets, slots, out);
  return Napi::Number::New(info.Env(), double(written));
}

Napi::Value ErrorEnergy(const Napi::CallbackInfo& info) {
  const int64_t n = f32Length(info, 0, "value");
  double* sums = f64(info, 3, "sums", 4);
  octet::errorEnergy(f32(info, 0, "value", n), f32(info, 1, "ref", n), f32(info, 2, "middle", n, true), n, sums,
                     threadsField(optionsArg(info, 4, "errorEnergy")));
  return undefinedOf(info);
}

// reluForward(x, out, mask | null, { threads }), reluBackward(mask, g, out, { threads }),
// add(a, b, out, { threads }); mask: a Uint8Array of ceil(n / 8) bytes, one bit per element.
Napi::Value ReluForward(const Napi::CallbackInfo& info) {
  const int64_t n = f32Length(info, 0, "x");
  uint8_t* mask = info[2].IsNull() ? nullptr : maskArg(info, 2, n);
  octet::reluForward(f32(info, 0, "x", n), f32(info, 1, "out", n), mask, n, threadsField(optionsArg(info, 3, "reluForward")));
  return undefinedOf(info);
}

// zeroWhere(values, keep, { threads }): values (Float32Array, Uint16Array or Uint8Array) set to
// 0 wherever keep (Uint8Array of the same length) is 0.
Napi::Value ZeroWhere(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "zeroWhere: values must be a typed array");
  auto values = info[0].As<Napi::TypedArray>();
  const int bytes = static_cast<int>(values.ElementSize());
  if (bytes != 1 && bytes != 2 && bytes != 4) throw rangeError(env, "zeroWhere: values must have 1, 2 or 4 bytes per element");
  const int64_t n = static_cast<int64_t>(values.ElementLength());
  if (!isType(info[1], napi_uint8_array) || static_cast<int64_t>(info[1].As<Napi::Uint8Array>().ElementLength()) != n) {
    throw rangeError(env, "zeroWhere: keep must be a Uint8Array as long as values");
  }
  octet::zeroWhere(typedData(values), bytes, info[1].As<Napi::Uint8Array>().Data(), n, threadsField(optionsArg(info, 2, "zeroWhere")));
  return env.Undefined();
}

Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  const int64_t n = f32Length(info, 1, "g");
  octet::reluBackward(maskArg(info, 0, n), f32(info, 1, "g", n), f32(info, 2, "out", n), n, threadsField(optionsArg(info, 3, "reluBackward")));
  return undefinedOf(info);
}

Napi::Value AddArrays(const Napi::CallbackInfo& info) {
  const int64_t n = f32Length(info, 0, "a");
  octet::addArrays(f32(info, 0, "a", n), f32(info, 1, "b", n), f32(info, 2, "out", n), n, threadsField(optionsArg(info, 3, "add")));
  return undefinedOf(info);
}

// adamwMoments(m, v, g, { beta1, beta2, threads }) and
// adamwApply(p, m, v, { decay, stepSize, c2Sqrt, eps, threads }): see native/elementwise.h.
Napi::Value AdamwMoments(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "adamwMoments");
  const int64_t n = f32Length(info, 2, "g");
  octet::adamwMoments(f32(info, 0, "m", n), f32(info, 1, "v", n), f32(info, 2, "g", n), numberField(o, "beta1"), numberField(o, "beta2"), n,
                      threadsField(o));
  return undefinedOf(info);
}

Napi::Value AdamwApply(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "adamwApply");
  const int64_t n = f32Length(info, 0, "p");
  octet::adamwApply(f32(info, 0, "p", n), f32(info, 1, "m", n), f32(info, 2, "v", n), numberField(o, "decay"), numberField(o, "stepSize"),
                    numberField(o, "c2Sqrt"), numberField(o, "eps"), n, threadsField(o));
  return undefinedOf(info);
}

// adamwMasked(p, m, v, g, keep, { beta1, beta2, decay, stepSize, c2Sqrt, eps, threads }): both halves where keep is nonzero.
Napi::Value AdamwMasked(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 5, "adamwMasked");
  const int64_t n = f32Length(info, 0, "p");
  if (!isType(info[4], napi_uint8_array) || static_cast<int64_t>(info[4].As<Napi::Uint8Array>().ElementLength()) != n) {
    throw rangeError(env, "adamwMasked: keep must be a Uint8Array as long as p");
  }
  octet::adamwMasked(f32(info, 0, "p", n), f32(info, 1, "m", n), f32(info, 2, "v", n), f32(info, 3, "g", n), info[4].As<Napi::Uint8Array>().Data(),
                     numberField(o, "beta1"), numberField(o, "beta2"), numberField(o, "decay"), numberField(o, "stepSize"), numberField(o, "c2Sqrt"),
                     numberField(o, "eps"), n, threadsField(o));
  return undefinedOf(info);
}

// channelBiasAdd(out, bias, { batch, channels, plane, threads })
Napi::Value ChannelBiasAdd(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "channelBiasAdd");
  const ChannelShape s = channelShapeField(o);
  octet::channelBiasAdd(f32(info, 0, "out", s.size()), f32(info, 1, "bias", s.channels), s.batch, s.channels, s.plane, threadsField(o));
  return undefinedOf(info);
}

// channelSum(g, sums, { batch, channels, plane, threads })
Napi::Value ChannelSum(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "channelSum");
  const ChannelShape s = channelShapeField(o);
  octet::channelSum(f32(info, 0, "g", s.size()), f64(info, 1, "sums", s.channels), s.batch, s.channels, s.plane, threadsField(o));
  return undefinedOf(info);
}

// channelMeanVar(x, mean, variance, { batch, channels, plane, threads })
Napi::Value ChannelMeanVar(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "channelMeanVar");
  const ChannelShape s = channelShapeField(o);
  octet::channelMeanVar(f32(info, 0, "x", s.size()), f64(info, 1, "mean", s.channels), f64(info, 2, "variance", s.channels), s.batch, s.channels,
                        s.plane, threadsField(o));
  return undefinedOf(info);
}

// batchNormForward(x, mean, invStd, gamma | null, beta | null, xhat, out, { batch, channels, plane, threads })
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 7, "batchNormForward");
  const ChannelShape s = channelShapeField(o);
  octet::batchNormForward(f32(info, 0, "x", s.size()), f64(info, 1, "mean", s.channels), f32(info, 2, "invStd", s.channels),
                          f32(info, 3, "gamma", s.channels, true), f32(info, 4, "beta", s.channels, true), f32(info, 5, "xhat", s.size()),
                          f32(info, 6, "out", s.size()), s.batch, s.channels, s.plane, threadsField(o));
  return undefinedOf(info);
}

// batchNormBackwardCodes(g, { data: codes, table, format }, invStd, gamma | null, gx | null, sumG, sumGX,
//   { scale, training, batch, channels, plane, threads }): xhat as dequantize(codes, scale).
Napi::Value BatchNormBackwardCodes(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 7, "batchNormBackwardCodes");
  const ChannelShape s = channelShapeField(o);
  const Operand xhat = operandArg(info, 1, "xhat", s.size());
  if (!xhat.codes) throw typeError(info.Env(), "batchNormBackwardCodes: xhat must be one-byte codes");
  const double scale = numberField(o, "scale");
  if (!(scale > 0) || !std::isfinite(scale)) throw rangeError(info.Env(), "batchNormBackwardCodes: scale must be finite and positive");
  octet::batchNormBackwardCodes(f32(info, 0, "g", s.size()), xhat.codes, xhat.lut, xhat.e5m2, scale, f32(info, 2, "invStd", s.channels),
                                f32(info, 3, "gamma", s.channels, true), boolField(o, "training"), f32(info, 4, "gx", s.size(), true),
                                f64(info, 5, "sumG", s.channels), f64(info, 6, "sumGX", s.channels), s.batch, s.channels, s.plane, threadsField(o));
  return undefinedOf(info);
}

// batchNormBackward(g, xhat, invStd, gamma | null, gx | null, sumG, sumGX, { training, batch, channels, plane, threads })
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 7, "batchNormBackward");
  const ChannelShape s = channelShapeField(o);
  octet::batchNormBackward(f32(info, 0, "g", s.size()), f32(info, 1, "xhat", s.size()), f32(info, 2, "invStd", s.channels),
                           f32(info, 3, "gamma", s.channels, true), boolField(o, "training"), f32(info, 4, "gx", s.size(), true),
                           f64(info, 5, "sumG", s.channels), f64(info, 6, "sumGX", s.channels), s.batch, s.channels, s.plane, threadsField(o));
  return undefinedOf(info);
}

// encode(values, codes, { params, threads }): params are a format's codec parameters.
Napi::Value Encode(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "encode");
  const int64_t n = f32Length(info, 0, "values");
  const int bytes = codeBytes(info.Env(), info[1], "codes");
  if (static_cast<int64_t>(info[1].As<Napi::TypedArray>().ElementLength()) != n) throw rangeError(info.Env(), "encode: codes and values differ in length");
  octet::encode(f32(info, 0, "values", n), typedData(info[1].As<Napi::TypedArray>()), bytes, n, codecParamsField(o, "params"), threadsField(o));
  return undefinedOf(info);
}

// encodeScaled(values, codes, { scale, params, maxFinite, magnitudeMask, threads }) -> [overflow, nonzero, underflow]
Napi::Value EncodeScaled(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "encodeScaled");
  const int64_t n = f32Length(info, 0, "values");
  const int bytes = codeBytes(info.Env(), info[1], "codes");
  if (static_cast<int64_t>(info[1].As<Napi::TypedArray>().ElementLength()) != n) {
    throw rangeError(info.Env(), "encodeScaled: codes and values differ in length");
  }
  int64_t counts[3];
  octet::encodeScaled(f32(info, 0, "values", n), static_cast<float>(numberField(o, "scale")), typedData(info[1].As<Napi::TypedArray>()), bytes, n,
                      codecParamsField(o, "params"), static_cast<float>(numberField(o, "maxFinite")),
                      static_cast<uint32_t>(sizeField(o, "magnitudeMask")), counts, threadsField(o));
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  for (uint32_t k = 0; k < 3; ++k) out.Set(k, Napi::Number::New(info.Env(), double(counts[k])));
  return out;
}

// The value of every code of a format (at least `needs` floats), or null.
const float* tableField(const Napi::Object& o, int64_t needs) { return f32(o.Env(), field(o, "table", false), "table", needs, true); }

// quantize(values, out, { params, table, threads }): table, the value of every code (formats of
// at most 16 bits), or null (32-bit formats: bits copied).
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "quantize");
  const int64_t n = f32Length(info, 0, "values");
  const octet::CodecParams p = codecParamsField(o, "params");
  octet::quantize(f32(info, 0, "values", n), f32(info, 1, "out", n), n, p, tableField(o, 2 * static_cast<int64_t>(p.signMask)), threadsField(o));
  return undefinedOf(info);
}

// decode(codes, out, { table, threads }): codes narrower than 32 bits need the table of every
// value their array type can hold.
Napi::Value Decode(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "decode");
  const int bytes = codeBytes(info.Env(), info[0], "codes");
  const int64_t n = static_cast<int64_t>(info[0].As<Napi::TypedArray>().ElementLength());
  const float* lut = bytes == 4 ? nullptr : tableField(o, int64_t{1} << (8 * bytes));
  if (bytes != 4 && !lut) throw typeError(info.Env(), "decode: codes narrower than 32 bits need a table");
  octet::decode(typedData(info[0].As<Napi::TypedArray>()), bytes, f32(info, 1, "out", n), n, lut, threadsField(o));
  return undefinedOf(info);
}

int64_t imageElements(const octet::ConvGeometry& g) { return g.channels * g.height * g.width; }
int64_t columnElements(const octet::ConvGeometry& g) { return g.channels * g.kernelH * g.kernelW * g.outH * g.outW; }

// im2col(x, col, { geometry, threads }) and col2im(col, x, { geometry, threads }): the image and
// the column matrix, in the order the kernel reads then writes them.
Napi::Value Im2col(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "im2col");
  const octet::ConvGeometry g = geometryField(o);
  octet::im2col(f32(info, 0, "x", imageElements(g)), f32(info, 1, "col", columnElements(g)), g, threadsField(o));
  return undefinedOf(info);
}

Napi::Value Col2im(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "col2im");
  const octet::ConvGeometry g = geometryField(o);
  octet::col2im(f32(info, 0, "col", columnElements(g)), f32(info, 1, "x", imageElements(g)), g, threadsField(o));
  return undefinedOf(info);
}

// im2colBatch(x, col, { geometry, batch, imageStride, threads }) and
// col2imBatch(col, x, { geometry, batch, imageStride, threads }): see native/im2col.h.
Napi::Value Im2colBatch(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "im2colBatch");
  const octet::ConvGeometry g = geometryField(o);
  const int64_t batch = sizeField(o, "batch"), stride = sizeField(o, "imageStride");
  const int64_t image = imagesExtent(g, batch, stride), columns = columnElements(g) * batch;
  if (isType(info[0], napi_uint8_array)) {
    if (!isType(info[1], napi_uint8_array)) throw typeError(info.Env(), "im2colBatch: codes in, codes out: col must be a Uint8Array too");
    auto x = info[0].As<Napi::Uint8Array>();
    auto col = info[1].As<Napi::Uint8Array>();
    if (int64_t(x.ElementLength()) < image || int64_t(col.ElementLength()) < columns) {
      throw rangeError(info.Env(), "im2colBatch: the codes or the columns are too short for the geometry");
    }
    octet::im2colBatchCodes(x.Data(), col.Data(), g, batch, stride, threadsField(o));
    return undefinedOf(info);
  }
  octet::im2colBatch(f32(info, 0, "x", image), f32(info, 1, "col", columns), g, batch, stride, threadsField(o));
  return undefinedOf(info);
}

Napi::Value Col2imBatch(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "col2imBatch");
  const octet::ConvGeometry g = geometryField(o);
  const int64_t batch = sizeField(o, "batch"), stride = sizeField(o, "imageStride");
  octet::col2imBatch(f32(info, 0, "col", columnElements(g) * batch), f32(info, 1, "x", imagesExtent(g, batch, stride)), g, batch, stride,
                     threadsField(o));
  return undefinedOf(info);
}

// depthwiseForward(x, w, y, { geometry, batch, threads }), depthwiseInputGradient(dy, w, gx, ...)
// (strided: adds into gx) and depthwiseWeightGradient(dy, x, gw, ...): native/depthwise.h; the
// geometry's channels are all C channels, the weight is [C, 1, KH, KW].
int64_t outputElements(const octet::ConvGeometry& g) { return g.channels * g.outH * g.outW; }
int64_t depthwiseWeights(const octet::ConvGeometry& g) { return g.channels * g.kernelH * g.kernelW; }

Napi::Value DepthwiseForward(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "depthwiseForward");
  const octet::ConvGeometry g = geometryField(o);
  const int64_t batch = sizeField(o, "batch");
  octet::depthwiseForward(f32(info, 0, "x", imageElements(g) * batch), f32(info, 1, "w", depthwiseWeights(g)), f32(info, 2, "y", outputElements(g) * batch), g, batch,
                          threadsField(o));
  return undefinedOf(info);
}

Napi::Value DepthwiseInputGradient(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "depthwiseInputGradient");
  const octet::ConvGeometry g = geometryField(o);
  const int64_t batch = sizeField(o, "batch");
  octet::depthwiseInputGradientStrided(f32(info, 0, "dy", outputElements(g) * batch), f32(info, 1, "w", depthwiseWeights(g)), f32(info, 2, "gx", imageElements(g) * batch),
                                       g, batch, threadsField(o));
  return undefinedOf(info);
}

Napi::Value DepthwiseWeightGradient(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "depthwiseWeightGradient");
  const octet::ConvGeometry g = geometryField(o);
  const int64_t batch = sizeField(o, "batch");
  octet::depthwiseWeightGradient(f32(info, 0, "dy", outputElements(g) * batch), f32(info, 1, "x", imageElements(g) * batch), f32(info, 2, "gw", depthwiseWeights(g)), g,
                                 batch, threadsField(o));
  return undefinedOf(info);
}

// directConvForward(x, w, y, { batch, channels, height, width, outChannels, kernelH, kernelW,
// padH, padW, outH, outW, xImageStride, yImageStride, threads }): one group's stride-1
// convolution with exact products (native/direct_conv.h); x and w are operands (operandArg).
// A stride-1 direct convolution's options, checked: paddings below the kernel, outH = H + 2 padH
// - KH + 1, likewise outW, image strides no smaller than an image.
// The fields every direct convolution's options have (strides and dilations 1).
octet::DirectConv directConvFields(const Napi::Object& o) {
  return {sizeField(o, "batch"),   sizeField(o, "channels"), sizeField(o, "height"), sizeField(o, "width"),
          sizeField(o, "outChannels"), sizeField(o, "kernelH"), sizeField(o, "kernelW"), sizeField(o, "padH"),
          sizeField(o, "padW"),    sizeField(o, "outH"),     sizeField(o, "outW"),   sizeField(o, "xImageStride"),
          sizeField(o, "yImageStride")};
}

// Whether d is a convolution's geometry: sizes positive, outH = (H + 2 padH - DH (KH - 1) - 1) /
// SH + 1 (likewise outW), the padded input at least one dilated kernel, the image strides whole.
bool convGeometryValid(const octet::DirectConv& d) {
  return d.batch > 0 && d.channels > 0 && d.height > 0 && d.width > 0 && d.outChannels > 0 && d.kernelH > 0 && d.kernelW > 0 && d.strideH > 0 &&
         d.strideW > 0 && d.dilationH > 0 && d.dilationW > 0 && d.outH > 0 && d.outW > 0 &&
         d.outH == (d.height + 2 * d.padH - d.dilationH * (d.kernelH - 1) - 1) / d.strideH + 1 &&
         d.outW == (d.width + 2 * d.padW - d.dilationW * (d.kernelW - 1) - 1) / d.strideW + 1 &&
         d.height + 2 * d.padH >= d.dilationH * (d.kernelH - 1) + 1 && d.width + 2 * d.padW >= d.dilationW * (d.kernelW - 1) + 1 &&
         d.xImageStride >= d.channels * d.height * d.width && d.yImageStride >= d.outChannels * d.outH * d.outW;
}

// A stride-1 geometry (stride and dilation 1, the DirectConv defaults) with paddings below the kernel.
octet::DirectConv directConvField(const Napi::Object& o, const char* who) {
  const octet::DirectConv d = directConvFields(o);
  if (!convGeometryValid(d) || d.padH >= d.kernelH || d.padW >= d.kernelW) {
    throw rangeError(o.Env(), std::string(who) + ": the geometry is not a stride-1 convolution (paddings below the kernel, outH = H + 2 padH - KH + 1)");
  }
  return d;
}

Napi::Value DirectConvForward(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "directConvForward");
  const octet::DirectConv d = directConvField(o, "directConvForward");
  const Operand x = operandArg(info, 0, "x", (d.batch - 1) * d.xImageStride + d.channels * d.height * d.width);
  const Operand w = operandArg(info, 1, "w", d.outChannels * d.channels * d.kernelH * d.kernelW);
  float* y = f32(info, 2, "y", (d.batch - 1) * d.yImageStride + d.outChannels * d.outH * d.outW);
  octet::directConvForward(d, {x.values, x.codes, x.lut, x.e5m2}, {w.values, w.codes, w.lut, w.e5m2}, y, threadsField(o));
  return undefinedOf(info);
}

octet::DirectConv directGradientField(const Napi::Object& o, const char* who);

// A block-sparse matrix's structure from arguments at and at + 1 (rowPtr, colIdx: Int32Arrays),
// checked: one row pointer per block row and one more, from 0, never decreasing, block columns
// increasing within a row and inside the view.
struct BsrRows {
  const int32_t* rowPtr;
  const int32_t* colIdx;
};
BsrRows bsrRowsArg(const Napi::CallbackInfo& info, size_t at, const std::string& who, int64_t blockRows, int64_t blockCols) {
  Napi::Env env = info.Env();
  if (!isType(info[at], napi_int32_array) || !isType(info[at + 1], napi_int32_array)) throw typeError(env, who + ": rowPtr and colIdx must be Int32Arrays");
  const Napi::Int32Array rowPtr = info[at].As<Napi::Int32Array>(), colIdx = info[at + 1].As<Napi::Int32Array>();
  if (static_cast<int64_t>(rowPtr.ElementLength()) != blockRows + 1) throw rangeError(env, who + ": rowPtr needs one entry per block row and one more");
  const int32_t* rp = rowPtr.Data();
  const int32_t* ci = colIdx.Data();
  if (rp[0] != 0 || static_cast<int64_t>(colIdx.ElementLength()) < rp[blockRows]) throw rangeError(env, who + ": rowPtr does not match colIdx");
  for (int64_t q = 0; q < blockRows; ++q) {
    if (rp[q + 1] < rp[q]) throw rangeError(env, who + ": rowPtr must not decrease");
    for (int32_t s = rp[q]; s < rp[q + 1]; ++s) {
      if (ci[s] < 0 || ci[s] >= blockCols || (s > rp[q] && ci[s] <= ci[s - 1])) throw rangeError(env, who + ": block columns must increase within a row and stay inside the view");
    }
  }
  return {rp, ci};
}

// directConvForwardSparse(x, values, y, rowPtr, colIdx, { the directConvWeightGradient options
// (strides; dilation 1), br, bc }):
// native/direct_conv.h (values, rowPtr, colIdx: the weight's [outChannels][C KH KW] view in BSR).
Napi::Value DirectConvForwardSparse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 5, "directConvForwardSparse");
  const octet::DirectConv d = directGradientField(o, "directConvForwardSparse");
  if (d.dilationH != 1 || d.dilationW != 1) throw rangeError(env, "directConvForwardSparse: dilation must be 1");
  const Operand x = operandArg(info, 0, "x", (d.batch - 1) * d.xImageStride + d.channels * d.height * d.width);
  const int64_t k = d.channels * d.kernelH * d.kernelW;
  float* y = f32(info, 2, "y", (d.batch - 1) * d.yImageStride + d.outChannels * d.outH * d.outW);
  const int64_t br = sizeField(o, "br"), bc = sizeField(o, "bc");
  if (br < 8 || br % 8 != 0 || bc < 1) throw rangeError(env, "directConvForwardSparse: blocks must be a multiple of 8 rows tall");
  const int64_t blockRows = (d.outChannels + br - 1) / br;
  const BsrRows rows = bsrRowsArg(info, 3, "directConvForwardSparse", blockRows, (k + bc - 1) / bc);
  const float* values = f32(info, 1, "values", static_cast<int64_t>(rows.rowPtr[blockRows]) * br * bc);
  octet::directConvForwardSparse(d, {x.values, x.codes, x.lut, x.e5m2}, values, rows.rowPtr, rows.colIdx, br, bc, y, threadsField(o));
  return undefinedOf(info);
}

octet::DirectConv directGradientField(const Napi::Object& o, const char* who);

// directConvWeightGradientLowp(dy, x, dw, { the directConvWeightGradient options, and the emulated
// accumulator's (accumulatorFields) }) -> whether it computed dw (false: run the GEMM).
Napi::Value DirectConvWeightGradientLowp(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "directConvWeightGradientLowp");
  const octet::DirectConv d = directGradientField(o, "directConvWeightGradientLowp");
  octet::LowpGemmArgs g;
  accumulatorFields(o, d.batch * d.outH * d.outW, g, "directConvWeightGradientLowp");
  const Operand dy = operandArg(info, 0, "dy", (d.batch - 1) * d.yImageStride + d.outChannels * d.outH * d.outW);
  const Operand x = operandArg(info, 1, "x", (d.batch - 1) * d.xImageStride + d.channels * d.height * d.width);
  float* dw = f32(info, 2, "dw", d.outChannels * d.channels * d.kernelH * d.kernelW);
  const bool done = octet::directConvWeightGradientLowp(d, {dy.values, dy.codes, dy.lut, dy.e5m2}, {x.values, x.codes, x.lut, x.e5m2}, g, dw, threadsField(o));
  return Napi::Boolean::New(info.Env(), done);
}

// directConvForwardLowp(x, w, y, { the directConvForward options, and the emulated accumulator's
// (accumulatorFields) }) -> whether it computed y (native/direct_conv.h; false: run the GEMM).
Napi::Value DirectConvForwardLowp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 3, "directConvForwardLowp");
  const octet::DirectConv d = directConvField(o, "directConvForwardLowp");
  octet::LowpGemmArgs g;
  accumulatorFields(o, d.channels * d.kernelH * d.kernelW, g, "directConvForwardLowp");
  const Operand x = operandArg(info, 0, "x", (d.batch - 1) * d.xImageStride + d.channels * d.height * d.width);
  const Operand w = operandArg(info, 1, "w", d.outChannels * d.channels * d.kernelH * d.kernelW);
  float* y = f32(info, 2, "y", (d.batch - 1) * d.yImageStride + d.outChannels * d.outH * d.outW);
  const bool done = octet::directConvForwardLowp(d, {x.values, x.codes, x.lut, x.e5m2}, {w.values, w.codes, w.lut, w.e5m2}, g, y, threadsField(o));
  return Napi::Boolean::New(env, done);
}

// directConvWeightGradient(dy, x, dw, { batch, channels, height, width, outChannels, kernelH,
// kernelW, padH, padW, strideH, strideW, dilationH, dilationW, outH, outW, xImageStride,
// yImageStride, threads }): one group's weight gradient with exact products (native/direct_conv.h).
// A weight gradient's geometry (directConvWeightGradient's options), checked.
octet::DirectConv directGradientField(const Napi::Object& o, const char* who) {
  octet::DirectConv d = directConvFields(o);
  d.strideH = sizeField(o, "strideH");
  d.strideW = sizeField(o, "strideW");
  d.dilationH = sizeField(o, "dilationH");
  d.dilationW = sizeField(o, "dilationW");
  if (!convGeometryValid(d)) throw rangeError(o.Env(), std::string(who) + ": the geometry is not a convolution's (outH = (H + 2 padH - DH (KH - 1) - 1) / SH + 1)");
  return d;
}

Napi::Value DirectConvWeightGradient(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "directConvWeightGradient");
  const octet::DirectConv d = directGradientField(o, "directConvWeightGradient");
  const Operand dy = operandArg(info, 0, "dy", (d.batch - 1) * d.yImageStride + d.outChannels * d.outH * d.outW);
  const Operand x = operandArg(info, 1, "x", (d.batch - 1) * d.xImageStride + d.channels * d.height * d.width);
  float* dw = f32(info, 2, "dw", d.outChannels * d.channels * d.kernelH * d.kernelW);
  octet::directConvWeightGradient(d, {dy.values, dy.codes, dy.lut, dy.e5m2}, {x.values, x.codes, x.lut, x.e5m2}, dw, threadsField(o));
  return undefinedOf(info);
}

// directConvWeightGradientSparse(dy, x, dw, rowPtr, colIdx, { the directConvWeightGradient options,
// br, bc }) -> whether it computed dw's stored entries (native/direct_conv.h; false: run bsrConvWeightGradient).
Napi::Value DirectConvWeightGradientSparse(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 5, "directConvWeightGradientSparse");
  const octet::DirectConv d = directGradientField(o, "directConvWeightGradientSparse");
  const int64_t br = sizeField(o, "br"), bc = sizeField(o, "bc"), k = d.channels * d.kernelH * d.kernelW;
  if (br < 1 || bc < 1) throw rangeError(info.Env(), "directConvWeightGradientSparse: blocks must be at least 1 x 1");
  const BsrRows rows = bsrRowsArg(info, 3, "directConvWeightGradientSparse", (d.outChannels + br - 1) / br, (k + bc - 1) / bc);
  const Operand dy = operandArg(info, 0, "dy", (d.batch - 1) * d.yImageStride + d.outChannels * d.outH * d.outW);
  const Operand x = operandArg(info, 1, "x", (d.batch - 1) * d.xImageStride + d.channels * d.height * d.width);
  float* dw = f32(info, 2, "dw", d.outChannels * k);
  const bool done = octet::directConvWeightGradientSparse(d, {dy.values, dy.codes, dy.lut, dy.e5m2}, {x.values, x.codes, x.lut, x.e5m2}, rows.rowPtr, rows.colIdx, br, bc, dw,
                                                          threadsField(o));
  return Napi::Boolean::New(info.Env(), done);
}

// winogradForward(x, w, y, plan): y = conv3x3(x, w), stride 1; plan: winogradField's options and
// threads (native/winograd.h).
Napi::Value WinogradForward(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "winogradForward");
  const octet::WinogradConv c = winogradField(o);
  const float* x = f32(info, 0, "x", (c.batch - 1) * c.xImageStride + c.channels * c.height * c.width);
  const float* w = f32(info, 1, "w", c.outChannels * c.channels * 9);
  float* y = f32(info, 2, "y", (c.batch - 1) * c.yImageStride + c.outChannels * c.outH * c.outW);
  octet::winogradForward(c, x, w, y, threadsField(o));
  return undefinedOf(info);
}

// winogradWeightGradient(x, dy, dw, plan): dw = the 3x3 weight gradient.
Napi::Value WinogradWeightGradient(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 3, "winogradWeightGradient");
  const octet::WinogradConv c = winogradField(o);
  if (c.flipped) throw rangeError(info.Env(), "winogradWeightGradient: flipped kernels are for the forward only");
  const float* x = f32(info, 0, "x", (c.batch - 1) * c.xImageStride + c.channels * c.height * c.width);
  const float* dy = f32(info, 1, "dy", (c.batch - 1) * c.yImageStride + c.outChannels * c.outH * c.outW);
  float* dw = f32(info, 2, "dw", c.outChannels * c.channels * 9);
  octet::winogradWeightGradient(c, x, dy, dw, threadsField(o));
  return undefinedOf(info);
}

// A Float32Array or a Uint8Array at argument i: its data and element size (4 or 1).
std::pair<void*, int> planeArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t needs) {
  const int bytes = isType(info[i], napi_float32_array) ? 4 : isType(info[i], napi_uint8_array) ? 1 : 0;
  if (bytes == 0) throw typeError(info.Env(), std::string(name) + " must be a Float32Array or a Uint8Array");
  auto t = info[i].As<Napi::TypedArray>();
  if (static_cast<int64_t>(t.ElementLength()) < needs) throw rangeError(info.Env(), std::string(name) + " is too short for the shape");
  return {typedData(t), bytes};
}

// moveRows(matrix, images, { rows, count, plane, channels, c0, n0, toImages, threads }): see native/im2col.h.
Napi::Value MoveRows(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "moveRows");
  const int64_t rows = sizeField(o, "rows"), count = sizeField(o, "count"), plane = sizeField(o, "plane");
  const int64_t channels = sizeField(o, "channels"), c0 = sizeField(o, "c0"), n0 = sizeField(o, "n0");
  if (c0 + rows > channels) throw rangeError(info.Env(), "moveRows: rows out of range");
  auto [matrix, mb] = planeArg(info, 0, "matrix", rows * count * plane);
  auto [images, ib] = planeArg(info, 1, "images", rows == 0 || count == 0 ? 0 : (n0 + count) * channels * plane);
  if (mb != ib) throw typeError(info.Env(), "moveRows: the matrix and the images must both be floats or both codes");
  const bool toImages = boolField(o, "toImages");
  const int threads = threadsField(o);
  if (mb == 4) octet::moveRows(static_cast<float*>(matrix), static_cast<float*>(images), rows, count, plane, channels, c0, n0, toImages, threads);
  else octet::moveRows(static_cast<uint8_t*>(matrix), static_cast<uint8_t*>(images), rows, count, plane, channels, c0, n0, toImages, threads);
  return undefinedOf(info);
}

// scatterPhase(matrix, images, { rows, count, channels, c0, n0, height, width, ph, pw, strideH,
// strideW, phaseRows, phaseCols, threads }): see native/im2col.h.
Napi::Value ScatterPhase(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "scatterPhase");
  const int64_t rows = sizeField(o, "rows"), count = sizeField(o, "count"), channels = sizeField(o, "channels"), c0 = sizeField(o, "c0");
  const int64_t n0 = sizeField(o, "n0"), height = sizeField(o, "height"), width = sizeField(o, "width"), ph = sizeField(o, "ph");
  const int64_t pw = sizeField(o, "pw"), sh = sizeField(o, "strideH"), sw = sizeField(o, "strideW"), pr = sizeField(o, "phaseRows");
  const int64_t pc = sizeField(o, "phaseCols");
  const bool empty = rows == 0 || count == 0 || pr == 0 || pc == 0;
  if (!empty && (c0 + rows > channels || ph + sh * (pr - 1) >= height || pw + sw * (pc - 1) >= width)) {
    throw rangeError(info.Env(), "scatterPhase: the phase does not fit the images");
  }
  const float* matrix = f32(info, 0, "matrix", rows * count * pr * pc);
  float* images = f32(info, 1, "images", empty ? 0 : (n0 + count) * channels * height * width);
  octet::scatterPhase(matrix, images, rows, count, channels, c0, n0, height, width, ph, pw, sh, sw, pr, pc, threadsField(o));
  return undefinedOf(info);
}

// rotateKernel(w, out, { group, ocg, cg, taps, threads }): see native/im2col.h.
Napi::Value RotateKernel(const Napi::CallbackInfo& info) {
  const Napi::Object o = optionsArg(info, 2, "rotateKernel");
  const int64_t group = sizeField(o, "group"), ocg = sizeField(o, "ocg"), cg = sizeField(o, "cg"), taps = sizeField(o, "taps");
  auto [w, wb] = planeArg(info, 0, "w", (group + 1) * ocg * cg * taps);
  auto [out, ob] = planeArg(info, 1, "out", cg * ocg * taps);
  if (wb != ob) throw typeError(info.Env(), "rotateKernel: the weights and the result must both be floats or both codes");
  const int threads = threadsField(o);
  if (wb == 4) octet::rotateKernel(static_cast<const float*>(w), static_cast<float*>(out), group, ocg, cg, taps, threads);
  else octet::rotateKernel(static_cast<const uint8_t*>(w), static_cast<uint8_t*>(out), group, ocg, cg, taps, threads);
  return undefinedOf(info);
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
  const uintptr_t data = reinterpret_cast<uintptr_t>(typedData(a));
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
#ifdef OCTET_X86
  out.Set("lowpTiles", octet::lowp::avx512Tiles() ? "avx512" : octet::lowp::avx2Tiles() ? "avx2" : "portable");
#else
  out.Set("lowpTiles", "portable");
#endif
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
  if (!info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 1 ||
      info[0].As<Napi::Number>().DoubleValue() != std::floor(info[0].As<Napi::Number>().DoubleValue())) {
    throw rangeError(info.Env(), "setThreads: threads must be a positive integer");
  }
  octet::setDefaultThreads(static_cast<int>(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

// A block pattern's arguments 0 and 1 (rowPtr, colIdx as Int32Array) over an m x k view in br x bc
// blocks, checked: rowPtr starts at 0 and never decreases, block columns increase within each
// block row and lie below ceil(k / bc). Returns the number of stored blocks.
int64_t bsrPatternArgs(const Napi::CallbackInfo& info, const std::string& name, int64_t m, int64_t k, int64_t br, int64_t bc, const int32_t*& rowPtr,
                       const int32_t*& colIdx) {
  const Napi::Env env = info.Env();
  if (br < 1 || bc < 1) throw rangeError(env, name + ": block sizes must be positive");
  const int64_t blockRows = (m + br - 1) / br, blockCols = (k + bc - 1) / bc;
  rowPtr = typedArg<int32_t>(info, 0, napi_int32_array, "rowPtr", blockRows + 1);
  if (rowPtr[0] != 0) throw rangeError(env, name + ": rowPtr must start at 0");
  for (int64_t q = 0; q < blockRows; ++q) {
    if (rowPtr[q + 1] < rowPtr[q]) throw rangeError(env, name + ": rowPtr must not decrease");
  }
  const int64_t stored = rowPtr[blockRows];
  colIdx = typedArg<int32_t>(info, 1, napi_int32_array, "colIdx", stored);
  for (int64_t q = 0; q < blockRows; ++q) {
    for (int32_t b = rowPtr[q]; b < rowPtr[q + 1]; ++b) {
      if (colIdx[b] < 0 || colIdx[b] >= blockCols || (b > rowPtr[q] && colIdx[b] <= colIdx[b - 1])) {
        throw rangeError(env, name + ": block columns must increase within each block row and lie below ceil(k / bc)");
      }
    }
  }
  return stored;
}

// bsrGemm(rowPtr, colIdx, values, x, c, { m, k, n, br, bc, fused, threads }): C = W X with W in
// block compressed sparse rows (Int32Array rowPtr and colIdx, Float32Array values), X k x n and C
// m x n row-major. See block_sparse.h.
Napi::Value BsrGemm(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 5, "bsrGemm");
  octet::BsrGemmArgs g;
  g.m = sizeField(o, "m");
  g.k = sizeField(o, "k");
  g.n = sizeField(o, "n");
  g.br = sizeField(o, "br");
  g.bc = sizeField(o, "bc");
  g.fused = boolField(o, "fused");
  const int64_t stored = bsrPatternArgs(info, "bsrGemm", g.m, g.k, g.br, g.bc, g.rowPtr, g.colIdx);
  g.values = f32(info, 2, "values", stored * g.br * g.bc);
  octet::ConvGeometry geometry{};
  if (!field(o, "geometry", false).IsUndefined()) {
    geometry = geometryField(o);
    const int64_t plane = geometry.outH * geometry.outW;
    if (geometry.channels * geometry.kernelH * geometry.kernelW != g.k || plane == 0 || g.n % plane != 0) {
      throw rangeError(env, "bsrGemm: k and n do not match the column matrix of the geometry");
    }
    g.geometry = &geometry;
    g.imageStride = sizeField(o, "imageStride");
    const int64_t needs = imagesExtent(geometry, g.n / plane, g.imageStride);
    if (isType(info[3], napi_uint8_array)) {
      if (static_cast<int64_t>(info[3].As<Napi::Uint8Array>().ElementLength()) < needs) throw rangeError(env, "bsrGemm: the images are shorter than the geometry needs");
      g.imageCodes = info[3].As<Napi::Uint8Array>().Data();
      g.table = f32(env, field(o, "table"), "table", 256);
    } else {
      g.images = f32(info, 3, "images", needs);
    }
  } else {
    g.x = f32(info, 3, "x", g.k * g.n);
    g.ldx = g.n;
  }
  g.cPlane = field(o, "cPlane", false).IsUndefined() ? 0 : sizeField(o, "cPlane");
  g.cImageStride = g.cPlane ? sizeField(o, "cImageStride") : 0;
  int64_t cNeeds = g.m * g.n;
  g.ldc = g.n;
  if (g.cPlane) {
    if (g.n % g.cPlane != 0) throw rangeError(env, "bsrGemm: cPlane must divide n");
    g.ldc = g.cPlane;
    cNeeds = g.m == 0 ? 0 : (g.n / g.cPlane - 1) * g.cImageStride + g.m * g.cPlane;
  }
  g.c = f32(info, 4, "c", cNeeds);
  octet::bsrGemm(g, threadsField(o));
  return env.Undefined();
}

// bsrConvInputGradient(rowPtr, colIdx, values, dy, dx, { m, k, br, bc, fused, batch, geometry,
// threads }): a convolution's input gradient from W^T in BSR (m = channels x KH x KW, k = output
// channels), added into dx (NCHW images of the geometry). See block_sparse.h.
Napi::Value BsrConvInputGradient(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 5, "bsrConvInputGradient");
  octet::BsrGemmArgs g{};
  g.m = sizeField(o, "m");
  g.k = sizeField(o, "k");
  g.br = sizeField(o, "br");
  g.bc = sizeField(o, "bc");
  g.fused = boolField(o, "fused");
  g.n = 0;
  const int64_t batch = sizeField(o, "batch");
  const int64_t stored = bsrPatternArgs(info, "bsrConvInputGradient", g.m, g.k, g.br, g.bc, g.rowPtr, g.colIdx);
  g.values = f32(info, 2, "values", stored * g.br * g.bc);
  const octet::ConvGeometry geometry = geometryField(o);
  const int64_t plane = geometry.outH * geometry.outW;
  if (geometry.channels * geometry.kernelH * geometry.kernelW != g.m || plane == 0) {
    throw rangeError(env, "bsrConvInputGradient: m does not match the column matrix of the geometry");
  }
  const float* dy = f32(info, 3, "dy", batch * g.k * plane);
  const int64_t imageStride = geometry.channels * geometry.height * geometry.width;
  float* dx = f32(info, 4, "dx", batch * imageStride);
  octet::bsrConvInputGradient(g, dy, geometry, batch, dx, imageStride, threadsField(o), boolField(o, "clear"));
  return env.Undefined();
}

// sparseRotatedInputGradient(rowPtr, colIdx, w, dy, dx, { m, br, bc, batch, geometry, wTable?,
// dyTable?, threads }): the stride-1 input gradient of a convolution whose weight (m = output
// channels x the geometry's channels x KH x KW; floats, or codes through wTable) is pruned in
// blocks, from dy (batch x m x OH x OW, floats or codes through dyTable) into dx (batch x channels
// x H x W, written whole). Returns false, writing nothing, where an operand is not finite. See
// block_sparse.h.
Napi::Value SparseRotatedInputGradient(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 5, "sparseRotatedInputGradient");
  octet::SparseInputGradArgs a{};
  const octet::ConvGeometry geometry = geometryField(o);
  a.outChannels = sizeField(o, "m");
  a.br = sizeField(o, "br");
  a.bc = sizeField(o, "bc");
  a.batch = sizeField(o, "batch");
  const int64_t k = geometry.channels * geometry.kernelH * geometry.kernelW;
  bsrPatternArgs(info, "sparseRotatedInputGradient", a.outChannels, k, a.br, a.bc, a.rowPtr, a.colIdx);
  a.channels = geometry.channels, a.height = geometry.height, a.width = geometry.width;
  a.kernelH = geometry.kernelH, a.kernelW = geometry.kernelW, a.padH = geometry.padH, a.padW = geometry.padW;
  a.strideH = geometry.strideH, a.strideW = geometry.strideW;
  a.dilationH = geometry.dilationH, a.dilationW = geometry.dilationW, a.outH = geometry.outH, a.outW = geometry.outW;
  const int64_t plane = a.outH * a.outW;
  a.dyImageStride = a.outChannels * plane;
  a.dxImageStride = a.channels * a.height * a.width;
  if (isType(info[2], napi_uint8_array)) {
    if (static_cast<int64_t>(info[2].As<Napi::Uint8Array>().ElementLength()) != a.outChannels * k) throw rangeError(env, "sparseRotatedInputGradient: w must hold m x k codes");
    a.wCodes = info[2].As<Napi::Uint8Array>().Data();
    a.wTable = f32(env, field(o, "wTable"), "wTable", 256);
  } else {
    a.w = f32(info, 2, "w", a.outChannels * k);
  }
  if (isType(info[3], napi_uint8_array)) {
    if (static_cast<int64_t>(info[3].As<Napi::Uint8Array>().ElementLength()) != a.batch * a.dyImageStride) throw rangeError(env, "sparseRotatedInputGradient: dy must hold batch x m x plane codes");
    a.dyCodes = info[3].As<Napi::Uint8Array>().Data();
    a.dyTable = f32(env, field(o, "dyTable"), "dyTable", 256);
  } else {
    a.dy = f32(info, 3, "dy", a.batch * a.dyImageStride);
  }
  a.dx = f32(info, 4, "dx", a.batch * a.dxImageStride);
  return Napi::Boolean::New(env, octet::sparseRotatedInputGradient(a, threadsField(o)));
}

// bsrGather(rowPtr, colIdx, dense, values, { rows, cols, br, bc, transposed, table? }): the stored
// blocks' values of the BSR form of dense (rows x cols, row-major; a Float32Array, or a Uint8Array
// of codes with their values in table) or, with transposed, of its transpose. See block_sparse.h.
Napi::Value BsrGather(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 4, "bsrGather");
  const int64_t rows = sizeField(o, "rows"), cols = sizeField(o, "cols"), br = sizeField(o, "br"), bc = sizeField(o, "bc");
  const bool transposed = boolField(o, "transposed");
  const int32_t* rowPtr;
  const int32_t* colIdx;
  const int64_t height = transposed ? cols : rows, width = transposed ? rows : cols;
  const int64_t stored = bsrPatternArgs(info, "bsrGather", height, width, br, bc, rowPtr, colIdx);
  float* values = f32(info, 3, "values", stored * br * bc);
  if (isType(info[2], napi_uint8_array)) {
    const Napi::Uint8Array codes = info[2].As<Napi::Uint8Array>();
    if (static_cast<int64_t>(codes.ElementLength()) < rows * cols) throw rangeError(env, "bsrGather: dense is shorter than rows x cols");
    const float* table = f32(env, field(o, "table"), "table", 256);
    octet::bsrGather(rowPtr, colIdx, (height + br - 1) / br, nullptr, rows, cols, br, bc, transposed, values, codes.Data(), table);
  } else {
    octet::bsrGather(rowPtr, colIdx, (height + br - 1) / br, f32(info, 2, "dense", rows * cols), rows, cols, br, bc, transposed, values);
  }
  return env.Undefined();
}

// bsrConvWeightGradient(rowPtr, colIdx, images, dy, dw, { m, k, br, bc, batch, geometry,
// imageStride, table?, dyTable?, threads }): a convolution's weight gradient at the stored blocks
// of a pattern, written into dw (m x k); images and dy are Float32Array or Uint8Array codes (with
// their 256-value tables). See block_sparse.h.
Napi::Value BsrConvWeightGradient(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object o = optionsArg(info, 5, "bsrConvWeightGradient");
  octet::BsrWeightGradArgs g{};
  g.m = sizeField(o, "m");
  g.k = sizeField(o, "k");
  g.br = sizeField(o, "br");
  g.bc = sizeField(o, "bc");
  g.batch = sizeField(o, "batch");
  bsrPatternArgs(info, "bsrConvWeightGradient", g.m, g.k, g.br, g.bc, g.rowPtr, g.colIdx);
  const octet::ConvGeometry geometry = geometryField(o);
  const int64_t plane = geometry.outH * geometry.outW;
  if (geometry.channels * geometry.kernelH * geometry.kernelW != g.k || plane == 0) {
    throw rangeError(env, "bsrConvWeightGradient: k does not match the column matrix of the geometry");
  }
  g.geometry = &geometry;
  g.imageStride = sizeField(o, "imageStride");
  const int64_t needs = imagesExtent(geometry, g.batch, g.imageStride);
  if (isType(info[2], napi_uint8_array)) {
    if (static_cast<int64_t>(info[2].As<Napi::Uint8Array>().ElementLength()) < needs) throw rangeError(env, "bsrConvWeightGradient: the images are shorter than the geometry needs");
    g.imageCodes = info[2].As<Napi::Uint8Array>().Data();
    g.table = f32(env, field(o, "table"), "table", 256);
  } else {
    g.images = f32(info, 2, "images", needs);
  }
  const int64_t dyNeeds = g.batch * g.m * plane;
  if (isType(info[3], napi_uint8_array)) {
    if (static_cast<int64_t>(info[3].As<Napi::Uint8Array>().ElementLength()) != dyNeeds) throw rangeError(env, "bsrConvWeightGradient: dy must hold batch x m x plane codes");
    g.dyCodes = info[3].As<Napi::Uint8Array>().Data();
    g.dyTable = f32(env, field(o, "dyTable"), "dyTable", 256);
  } else {
    g.dy = f32(info, 3, "dy", dyNeeds);
  }
  g.dw = f32(info, 4, "dw", g.m * g.k);
  octet::bsrConvWeightGradient(g, threadsField(o));
  return env.Undefined();
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
  exports.Set("depthwiseForward", Napi::Function::New(env, DepthwiseForward));
  exports.Set("directConvForward", Napi::Function::New(env, DirectConvForward));
  exports.Set("directConvForwardSparse", Napi::Function::New(env, DirectConvForwardSparse));
  exports.Set("directConvWeightGradient", Napi::Function::New(env, DirectConvWeightGradient));
  exports.Set("directConvForwardLowp", Napi::Function::New(env, DirectConvForwardLowp));
  exports.Set("directConvWeightGradientLowp", Napi::Function::New(env, DirectConvWeightGradientLowp));
  exports.Set("depthwiseInputGradient", Napi::Function::New(env, DepthwiseInputGradient));
  exports.Set("depthwiseWeightGradient", Napi::Function::New(env, DepthwiseWeightGradient));
  exports.Set("reluForward", Napi::Function::New(env, ReluForward));
  exports.Set("zeroWhere", Napi::Function::New(env, ZeroWhere));
  exports.Set("absMax", Napi::Function::New(env, AbsMax));
  exports.Set("blockQuantize", Napi::Function::New(env, BlockQuantize));
  exports.Set("blockScaleAdd", Napi::Function::New(env, BlockScaleAdd));
  exports.Set("blockGemmFp32", Napi::Function::New(env, BlockGemmFp32));
  exports.Set("alignedGemm", Napi::Function::New(env, AlignedGemm));
  exports.Set("bsrGemm", Napi::Function::New(env, BsrGemm));
  exports.Set("bsrConvWeightGradient", Napi::Function::New(env, BsrConvWeightGradient));
  exports.Set("bsrConvInputGradient", Napi::Function::New(env, BsrConvInputGradient));
  exports.Set("bsrGather", Napi::Function::New(env, BsrGather));
  exports.Set("sparseRotatedInputGradient", Napi::Function::New(env, SparseRotatedInputGradient));
  exports.Set("directConvWeightGradientSparse", Napi::Function::New(env, DirectConvWeightGradientSparse));
  exports.Set("valueHistogram", Napi::Function::New(env, ValueHistogram));
  exports.Set("collectBins", Napi::Function::New(env, CollectBins));
  exports.Set("errorEnergy", Napi::Function::New(env, ErrorEnergy));
  exports.Set("encodeScaled", Napi::Function::New(env, EncodeScaled));
  exports.Set("scaleCountOverflow", Napi::Function::New(env, ScaleCountOverflow));
  exports.Set("reluBackward", Napi::Function::New(env, ReluBackward));
  exports.Set("add", Napi::Function::New(env, AddArrays));
  exports.Set("adamwMoments", Napi::Function::New(env, AdamwMoments));
  exports.Set("adamwMasked", Napi::Function::New(env, AdamwMasked));
  exports.Set("adamwApply", Napi::Function::New(env, AdamwApply));
  exports.Set("channelBiasAdd", Napi::Function::New(env, ChannelBiasAdd));
  exports.Set("channelSum", Napi::Function::New(env, ChannelSum));
  exports.Set("channelMeanVar", Napi::Function::New(env, ChannelMeanVar));
  exports.Set("batchNormForward", Napi::Function::New(env, BatchNormForward));
  exports.Set("batchNormBackwardCodes", Napi::Function::New(env, BatchNormBackwardCodes));
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
