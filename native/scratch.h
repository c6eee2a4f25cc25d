// A float buffer aligned to 64 bytes, grown as needed and kept for reuse (its contents are not
// kept when it grows): the kernels' per-thread scratch.
#pragma once
#include <cstddef>
#include <cstdlib>

namespace octet {

class AlignedFloats {
 public:
  AlignedFloats() = default;
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  ~AlignedFloats() { std::free(p_); }

  // At least `want` floats.
  float* get(size_t want) {
    if (want > size_) {
      std::free(p_);
      p_ = static_cast<float*>(std::aligned_alloc(64, ((want * sizeof(float) + 63) / 64) * 64));
      size_ = want;
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  size_t size_ = 0;
};

}  // namespace octet
