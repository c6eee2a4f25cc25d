// The aligned GEMM's AVX-512 kernels, emulated (run.sh builds this), against the kernels the CPU
// runs natively: the same bits on every case, or a non-zero exit naming the first difference.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "aligned_gemm.h"

namespace octet {
void alignedGemmEmulated(const AlignedGemmArgs& args, int threads);
}
using namespace octet;

namespace {

// An eXmY format's tables: `kind` 0 IEEE-like (the top exponent is Inf and NaN), 1 OCP FN (only
// the all-ones code is NaN), 2 finite (no Inf or NaN).
AlignedTables tablesOf(int ebits, int mbits, int kind) {
  AlignedTables t{};
  const int bias = (1 << (ebits - 1)) - 1, top = (1 << ebits) - 1;
  for (int c = 0; c < 256; ++c) {
    const int bits = 1 + ebits + mbits;
    if (c >= (1 << bits)) {  // codes past the format's width: zeros
      t.sig[c] = 0;
      t.exp[c] = static_cast<int8_t>(1 - bias);
      continue;
    }
    const int s = (c >> (ebits + mbits)) & 1, e = (c >> mbits) & top, m = c & ((1 << mbits) - 1);
    const bool bad = (kind == 0 && e == top) || (kind == 1 && e == top && m == (1 << mbits) - 1);
    const int sig = e ? (1 << mbits) + m : m;
    t.bad[c] = bad;
    t.sig[c] = static_cast<int8_t>(bad ? 0 : s ? -sig : sig);
    t.exp[c] = static_cast<int8_t>(e ? e - bias : 1 - bias);
  }
  t.mantissaBits = mbits;
  return t;
}

struct Format {
  const char* name;
  int ebits, mbits, kind;
};
const Format kFormats[] = {{"e4m3", 4, 3, 1}, {"e5m2", 5, 2, 0}, {"e3m2", 3, 2, 2}, {"e2m1", 2, 1, 2}};

struct Model {
  int group, keep, significant;
  int64_t interval;
};

uint32_t state = 12345;
uint32_t next() {
  state = state * 1664525u + 1013904223u;
  return state >> 8;
}

int failures = 0, cases = 0;
long long outputs = 0;

void compare(const AlignedGemmArgs& base, int threads, const std::string& what) {
  std::vector<float> want(static_cast<size_t>(base.m * base.n), -1.0f), got(static_cast<size_t>(base.m * base.n), -2.0f);
  AlignedGemmArgs g = base;
  g.c = want.data();
  alignedGemm(g, threads);
  g.c = got.data();
  alignedGemmEmulated(g, threads);
  ++cases;
  outputs += static_cast<long long>(want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::memcmp(&want[i], &got[i], 4) != 0) {
      if (failures++ < 20)
        std::printf("MISMATCH %s: element %zu (row %lld, column %lld): native %a, emulated %a\n", what.c_str(), i, static_cast<long long>(i / base.n),
                    static_cast<long long>(i % base.n), want[i], got[i]);
      return;
    }
  }
}

// Codes with zeros, negative zeros, NaN/Inf now and then, and a spread of magnitudes.
std::vector<uint8_t> codesOf(int64_t count, const Format& f, int zeroShare, bool bad) {
  const int bits = 1 + f.ebits + f.mbits;
  const AlignedTables t = tablesOf(f.ebits, f.mbits, f.kind);
  std::vector<uint8_t> out(static_cast<size_t>(count));
  for (auto& c : out) {
    const uint32_t r = next();
    if (static_cast<int>(r % 100) < zeroShare) {
      c = (r >> 7) & 1 ? static_cast<uint8_t>(1 << (bits - 1)) : 0;  // +-0
      continue;
    }
    do c = static_cast<uint8_t>(next() & ((1 << bits) - 1));
    while (t.bad[c] && !(bad && next() % 64 == 0));
  }
  return out;
}

// The product's arguments (no scales, A row-major unless set after).
AlignedGemmArgs argsOf(int64_t m, int64_t n, int64_t k, const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, const Format& fa, const Format& fb,
                       const Model& model) {
  AlignedGemmArgs g{};
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a.data();
  g.b = b.data();
  g.ta = tablesOf(fa.ebits, fa.mbits, fa.kind);
  g.tb = tablesOf(fb.ebits, fb.mbits, fb.kind);
  g.group = model.group;
  g.keep = model.keep;
  g.significant = model.significant;
  g.interval = model.interval;
  return g;
}

void run(int64_t m, int64_t n, int64_t k, const Format& fa, const Format& fb, const Model& model, bool aKMajor, bool bad, const char* note) {
  const std::vector<uint8_t> a = codesOf(m * k, fa, 10, bad), b = codesOf(k * n, fb, 10, bad);
  AlignedGemmArgs g = argsOf(m, n, k, a, b, fa, fb, model);
  g.aKMajor = aKMajor;
  char what[256];
  for (int threads : {1, 2}) {
    std::snprintf(what, sizeof what, "%lldx%lldx%lld %s x %s group %d keep %d significant %d interval %lld%s%s, %d threads (%s)", static_cast<long long>(m),
                  static_cast<long long>(n), static_cast<long long>(k), fa.name, fb.name, model.group, model.keep, model.significant,
                  static_cast<long long>(model.interval), aKMajor ? ", A K-major" : "", bad ? ", NaN/Inf codes" : "", threads, note);
    compare(g, threads, what);
  }
}

// Block-scaled: runs of blockK products, divisors per block of A's and B's (power-of-two ones or not).
void runScaled(int64_t m, int64_t n, int64_t k, int64_t blockK, int64_t blockRowsA, int64_t blockRowsB, bool powersOfTwo, const Model& model) {
  const Format& f = kFormats[0];
  const std::vector<uint8_t> a = codesOf(k * m, f, 5, false), b = codesOf(k * n, f, 5, false);
  const int64_t kb = (k + blockK - 1) / blockK, rbA = (m + blockRowsA - 1) / blockRowsA, rbB = (n + blockRowsB - 1) / blockRowsB;
  std::vector<float> sa(static_cast<size_t>(kb * rbA)), sb(static_cast<size_t>(kb * rbB));
  for (auto* s : {&sa, &sb})
    for (auto& v : *s) v = powersOfTwo ? std::ldexp(1.0f, static_cast<int>(next() % 20) - 10) : 0.37f + static_cast<float>(next() % 1000) / 97.0f;
  std::vector<int64_t> ends;
  for (int64_t e = blockK; e < k + blockK; e += blockK) ends.push_back(std::min(e, k));
  AlignedGemmArgs g = argsOf(m, n, k, a, b, f, f, model);
  g.aKMajor = true;
  g.scaled = true;
  g.blocks = BlockRuns{ends.data(), static_cast<int64_t>(ends.size()), sa.data(), blockK, blockRowsA, sb.data(), blockK, blockRowsB};
  char what[200];
  for (int threads : {1, 2}) {
    std::snprintf(what, sizeof what, "block-scaled %lldx%lldx%lld, blocks of %lld along K, %s divisors, group %d interval %lld, %d threads", static_cast<long long>(m),
                  static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(blockK), powersOfTwo ? "power-of-two" : "general", model.group,
                  static_cast<long long>(model.interval), threads);
    compare(g, threads, what);
  }
}

}  // namespace

int main() {
  const Model hopper{32, 13, 14, 128}, fast{32, 13, 14, 0}, small{16, 10, 12, 40}, tiny{8, 6, 8, 0}, lanes{100, 14, 22, 0}, wide{512, 16, 20, 0},
      long200{200, 6, 20, 0}, long254{254, 8, 20, 0}, long256{256, 8, 20, 0};
  // Twice: the tiles as chosen (one accumulator per 16 columns where B has more than 32), then with
  // OCTET_ALIGNED_TWO_SUMS=1 (the two-accumulator tiles everywhere).
  for (const bool twoSums : {false, true}) {
    if (twoSums) setenv("OCTET_ALIGNED_TWO_SUMS", "1", 1);
    const char* tiles = twoSums ? "two sums" : "as chosen";
    std::printf("tiles %s\n", tiles);
    // Every tile width (16 columns or fewer, 32, 64, more; edge panels), swapped products (n > m, m < 256).
    for (int64_t n : {1, 9, 16, 17, 32, 33, 64, 65, 100, 128, 130})
      for (int64_t m : {1, 5, 64, 70, 300}) run(m, n, 200, kFormats[0], kFormats[1], hopper, false, false, "shapes");
    for (const Format& fa : kFormats)
      for (const Format& fb : kFormats) {
        run(70, 75, 300, fa, fb, hopper, false, true, "formats");
        run(40, 130, 260, fa, fb, fast, true, false, "formats");
        run(300, 200, 130, fa, fb, small, false, false, "formats");
      }
    for (const Model& model : {small, tiny, lanes, wide, long200, long254, long256}) {
      run(64, 40, 1100, kFormats[0], kFormats[0], model, false, false, "models");
      run(300, 70, 700, kFormats[1], kFormats[0], model, true, true, "models");
      run(256, 200, 900, kFormats[0], kFormats[1], model, false, false, "models");
    }
    run(1024, 96, 2048, kFormats[0], kFormats[0], hopper, false, false, "larger");
    run(200, 3000, 576, kFormats[0], kFormats[0], hopper, false, false, "swapped, wide");
    runScaled(256, 200, 1024, 128, 128, 128, true, hopper);
    runScaled(100, 300, 700, 128, 128, 128, false, fast);
    runScaled(64, 64, 320, 32, 1, 1, true, hopper);
    runScaled(300, 130, 640, 128, 128, 128, false, hopper);
  }
  std::printf("%d cases, %lld outputs: %d mismatched\n", cases, outputs, failures);
  return failures ? 1 : 0;
}
