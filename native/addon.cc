// Node-API bindings of the native kernels. Arguments are checked here (types, lengths) so a
// bad call throws instead of touching memory outside the arrays; shapes and formats are checked
// again, with friendlier messages, by the TypeScript wrappers in src/kernels/.
#include <napi.h>

#include <string>

#include "gemm.h"
#include "parallel.h"

namespace {

using octet::GemmArgs;

Napi::Float32Array float32Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array");
  }
  return info[i].As<Napi::Float32Array>();
}

int64_t intArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().Int64Value();
}

int threadsArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return octet::defaultThreads();
  int64_t t = intArg(info, i, "threads");
  return t < 1 ? 1 : static_cast<int>(t);
}

// Index of the last element touched by a rows x cols matrix with leading dimension ld, plus 1.
int64_t extent(int64_t rows, int64_t cols, int64_t ld) { return rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols; }

// sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads?)
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 13) throw Napi::TypeError::New(env, "sgemm takes 13 or 14 arguments");
  GemmArgs g;
  g.transA = info[0].ToBoolean();
  g.transB = info[1].ToBoolean();
  g.m = intArg(info, 2, "m");
  g.n = intArg(info, 3, "n");
  g.k = intArg(info, 4, "k");
  g.alpha = info[5].As<Napi::Number>().FloatValue();
  auto a = float32Arg(info, 6, "a");
  g.lda = intArg(info, 7, "lda");
  auto b = float32Arg(info, 8, "b");
  g.ldb = intArg(info, 9, "ldb");
  g.beta = info[10].As<Napi::Number>().FloatValue();
  auto c = float32Arg(info, 11, "c");
  g.ldc = intArg(info, 12, "ldc");
  if (g.m < 0 || g.n < 0 || g.k < 0) throw Napi::RangeError::New(env, "sgemm: negative dimension");
  const int64_t aRows = g.transA ? g.k : g.m, aCols = g.transA ? g.m : g.k;
  const int64_t bRows = g.transB ? g.n : g.k, bCols = g.transB ? g.k : g.n;
  if (g.lda < aCols || g.ldb < bCols || g.ldc < g.n) throw Napi::RangeError::New(env, "sgemm: leading dimension too small");
  if (static_cast<int64_t>(a.ElementLength()) < extent(aRows, aCols, g.lda) ||
      static_cast<int64_t>(b.ElementLength()) < extent(bRows, bCols, g.ldb) ||
      static_cast<int64_t>(c.ElementLength()) < extent(g.m, g.n, g.ldc)) {
    throw Napi::RangeError::New(env, "sgemm: an array is shorter than its matrix");
  }
  g.a = a.Data();
  g.b = b.Data();
  g.c = c.Data();
  octet::sgemm(g, threadsArg(info, 13));
  return env.Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("gemmKernel", octet::gemmKernelName());
  out.Set("threads", octet::defaultThreads());
  out.Set("hardwareThreads", octet::hardwareThreads());
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
  exports.Set("sgemm", Napi::Function::New(env, Sgemm));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  return exports;
}

}  // namespace

NODE_API_MODULE(octet_native, Init)
