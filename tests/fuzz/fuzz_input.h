#pragma once
// A cursor over a fuzz input, for targets that derive several values from one byte string (libFuzzer's
// FuzzedDataProvider, without the clang-only header, so the g++ replay build compiles it too).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace latent::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  size_t left() const { return n_; }
  uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | byte();
    return v;
  }
  // Up to `max` bytes, length from the next byte.
  std::string bytes(size_t max) {
    size_t len = byte();
    len = len < max ? len : max;
    len = len < n_ ? len : n_;
    std::string s(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    n_ -= len;
    return s;
  }
  std::string rest() {
    std::string s(reinterpret_cast<const char*>(p_), n_);
    p_ += n_;
    n_ = 0;
    return s;
  }

 private:
  const uint8_t* p_;
  size_t n_;
};

}  // namespace latent::fuzz
