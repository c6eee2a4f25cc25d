// Which instruction sets the build may use. OCTET_X86 gates every x86 intrinsic and CPU-feature
// query; everything else is portable C++ that builds on arm64 too. Defining OCTET_NO_X86 builds
// the portable paths only (CI compiles that way to keep them honest).
#pragma once
#if (defined(__x86_64__) || defined(__i386__)) && !defined(OCTET_NO_X86)
#define OCTET_X86 1
#include <immintrin.h>

#include <cstdlib>
#include <string>
#endif

// Plain loops that compilers vectorize well with AVX2 (integer max, compares, counts) are built
// twice: for the baseline and, under OCTET_TARGET_AVX2, for AVX2, chosen at run time.
//
// OCTET_GEMM_KERNEL=avx2 makes these report no AVX-512, and =portable no AVX2 either, so that
// every kernel family can be run (and tested) on a CPU that has more: each path gives the same bits.
#ifdef OCTET_X86
#define OCTET_TARGET_AVX2 __attribute__((target("avx2")))
// 2: AVX-512 allowed, 1: up to AVX2, 0: neither (OCTET_GEMM_KERNEL).
inline int cpuAllowed() {
  static const int level = [] {
    const char* forced = std::getenv("OCTET_GEMM_KERNEL");
    if (!forced) return 2;
    const std::string want = forced;
    return want == "portable" ? 0 : want == "avx2" ? 1 : 2;
  }();
  return level;
}
inline bool cpuHasAvx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return cpuAllowed() >= 1 && __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}
inline bool cpuHasAvx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return cpuAllowed() >= 2 && __builtin_cpu_supports("avx512f") != 0;
  }();
  return has;
}
inline bool cpuHasAvx512Bw() {
  static const bool has = [] {
    __builtin_cpu_init();
    return cpuAllowed() >= 2 && __builtin_cpu_supports("avx512bw") != 0 && __builtin_cpu_supports("avx512vl") != 0;
  }();
  return has;
}
inline bool cpuHasAvx512Cd() {
  static const bool has = [] {
    __builtin_cpu_init();
    return cpuAllowed() >= 2 && __builtin_cpu_supports("avx512cd") != 0;
  }();
  return has;
}
#else
#define OCTET_TARGET_AVX2
inline bool cpuHasAvx2() { return false; }
inline bool cpuHasAvx512() { return false; }
inline bool cpuHasAvx512Bw() { return false; }
inline bool cpuHasAvx512Cd() { return false; }
#endif
