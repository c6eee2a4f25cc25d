#!/bin/bash
# Runs the aligned (Hopper) GEMM's AVX-512 kernels on a CPU without AVX-512, with every AVX-512
# intrinsic emulated in portable code (SIMDe: `apt-get install libsimde-dev`, plus shim.h), and
# checks their outputs bit for bit against the kernels this CPU runs natively (which the test suite
# checks against the TypeScript reference). A check of correctness only: emulated code says nothing
# of speed. Needs the addon built (npm install). Usage: scripts/avx512_emulated/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
objects="$root/build/Release/obj.target/octet_native/native"
if [ ! -f /usr/include/simde/x86/avx512.h ]; then
  echo "SIMDe's headers are missing: apt-get install libsimde-dev" >&2
  exit 2
fi
if [ ! -d "$objects" ]; then
  echo "the addon's objects are missing ($objects): run npm install first" >&2
  exit 2
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# The emulated copy: AVX-512 intrinsics and types renamed to SIMDe's, AVX-512 targets to AVX2
# (the emulation is AVX2 code), the CPU checks answering yes, the entry point renamed.
sed -e 's/\b_mm512_/simde_mm512_/g' -e 's/\b__m512/simde__m512/g' -e 's/\b__mmask/simde__mmask/g' \
    -e 's/target("avx512[a-z0-9,]*")/target("avx2,fma")/g' \
    -e 's/\bcpuHasAvx512Bw()/true/g' -e 's/\bcpuHasAvx512()/true/g' \
    -e 's/\balignedGemm(/alignedGemmEmulated(/g' \
    -e 's/#include "cpu.h"/#include "cpu.h"\n#include "shim.h"/' \
    "$root/native/aligned_gemm.cc" > "$out/aligned_gemm_emulated.cc"
if grep -q "target(\"avx512" "$out/aligned_gemm_emulated.cc"; then echo "an AVX-512 target was left in the copy" >&2; exit 1; fi
flags="-O2 -std=c++17 -fopenmp -fno-math-errno -fno-trapping-math -ffp-contract=off -mavx2 -mfma -I $root/native -I $here -w"
g++ $flags -c "$out/aligned_gemm_emulated.cc" -o "$out/emulated.o"
g++ $flags "$here/check.cc" "$out/emulated.o" $(ls "$objects"/*.o | grep -v '/addon.o$') -o "$out/check"
"$out/check" "$@"
