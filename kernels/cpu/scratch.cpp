#include "kernels/cpu/scratch.h"

#include <cstdlib>
#include <new>

namespace latent::cpu {
namespace {

struct Buffer {
  float* data = nullptr;
  size_t cap = 0;
  ~Buffer() { std::free(data); }
};

}  // namespace

float* thread_scratch(ScratchSlot slot, size_t n) {
  thread_local Buffer buffers[static_cast<int>(ScratchSlot::kCount)];
  Buffer& b = buffers[static_cast<int>(slot)];
  if (b.cap < n) {
    std::free(b.data);
    size_t cap = n + n / 4 + 1024;
    size_t bytes = (cap * sizeof(float) + 63) / 64 * 64;
    b.data = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!b.data) throw std::bad_alloc();
    b.cap = cap;
  }
  return b.data;
}

}  // namespace latent::cpu
