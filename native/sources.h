// Where kernels read operand elements from while packing: float arrays, or one-byte codes decoded
// through a table of their values.
#pragma once
#include <cstdint>

namespace octet {

struct FloatSource {
  const float* data;
  float operator()(int64_t at) const { return data[at]; }
};

struct CodeSource {
  const uint8_t* codes;
  const float* lut;
  float operator()(int64_t at) const { return lut[codes[at]]; }
};

}  // namespace octet
