// Which instruction sets the build may use. OCTET_X86 gates every x86 intrinsic and CPU-feature
// query; everything else is portable C++ that builds on arm64 too. Defining OCTET_NO_X86 builds
// the portable paths only (CI compiles that way to keep them honest).
#pragma once
#if (defined(__x86_64__) || defined(__i386__)) && !defined(OCTET_NO_X86)
#define OCTET_X86 1
#include <immintrin.h>
#endif

// Plain loops that compilers vectorize well with AVX2 (integer max, compares, counts) are built
// twice: for the baseline and, under OCTET_TARGET_AVX2, for AVX2, chosen at run time.
#ifdef OCTET_X86
#define OCTET_TARGET_AVX2 __attribute__((target("avx2")))
inline bool cpuHasAvx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}
inline bool cpuHasAvx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return has;
}
inline bool cpuHasAvx512Bw() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bw") != 0 && __builtin_cpu_supports("avx512vl") != 0;
  }();
  return has;
}
inline bool cpuHasAvx512Cd() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512cd") != 0;
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
