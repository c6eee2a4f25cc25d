// Which instruction sets the build may use. OCTET_X86 gates every x86 intrinsic and CPU-feature
// query; everything else is portable C++ that builds on arm64 too. Defining OCTET_NO_X86 builds
// the portable paths only (CI compiles that way to keep them honest).
#pragma once
#if (defined(__x86_64__) || defined(__i386__)) && !defined(OCTET_NO_X86)
#define OCTET_X86 1
#include <immintrin.h>
#endif
