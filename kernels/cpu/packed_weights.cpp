#include "kernels/cpu/packed_weights.h"

#include <sys/mman.h>

#include <algorithm>
#include <cassert>

#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {

namespace {
constexpr size_t kHuge = size_t{2} << 20;
}

size_t bf16_tiles_bytes(int64_t rows, int64_t cols) {
  const int64_t blocks = (rows + kTileRows - 1) / kTileRows, pairs = (cols + 1) / 2;
  return static_cast<size_t>(blocks * pairs * kTileRows * 4);
}

bool can_pack_bf16_tiles(const WeightView& w) {
  return w.data && w.dtype == DType::kBF16 && w.layout == WeightLayout::kRowMajor && w.rows > 0 && w.cols > 0 &&
         bf16_activations_available();
}

TileBuffer TileBuffer::allocate(size_t bytes) {
  TileBuffer b;
  if (bytes == 0) return b;
  const size_t n = (bytes + kHuge - 1) / kHuge * kHuge;
  // Over-allocate by one huge page and trim, so that the buffer starts on a 2 MiB boundary.
  void* raw = ::mmap(nullptr, n + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return b;
  auto* p = static_cast<uint8_t*>(raw);
  const size_t lead = (kHuge - reinterpret_cast<uintptr_t>(p) % kHuge) % kHuge;
  if (lead) ::munmap(p, lead);
  if (kHuge - lead) ::munmap(p + lead + n, kHuge - lead);
  p += lead;
  ::madvise(p, n, MADV_HUGEPAGE);  // advice only: without transparent huge pages the buffer works the same
  b.p_ = p;
  b.n_ = n;
  return b;
}

TileBuffer& TileBuffer::operator=(TileBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) ::munmap(p_, n_);
    p_ = o.p_, n_ = o.n_;
    o.p_ = nullptr, o.n_ = 0;
  }
  return *this;
}

TileBuffer::~TileBuffer() {
  if (p_) ::munmap(p_, n_);
}

WeightView pack_bf16_tiles(const WeightView& w, void* out, ThreadPool* pool) {
  assert(can_pack_bf16_tiles(w) && reinterpret_cast<uintptr_t>(out) % 64 == 0);
  const int64_t blocks = (w.rows + kTileRows - 1) / kTileRows;
  auto* dst = static_cast<uint32_t*>(out);
  ThreadPool& p = pool ? *pool : ThreadPool::global();
  p.parallel_for(blocks, std::max<int64_t>(1, blocks / (p.size() * 4)),
                 [&](int64_t b0, int64_t b1) { pack_bf16_tiles_avx512(w, dst, b0, b1); });
  WeightView v = w;
  v.data = out;
  v.layout = WeightLayout::kBf16Tiles;
  return v;
}

void unpack_bf16_tiles(const WeightView& w, int64_t r0, int64_t r1, uint16_t* out) {
  assert(w.layout == WeightLayout::kBf16Tiles && 0 <= r0 && r0 <= r1 && r1 <= w.rows);
  const int64_t pairs = (w.cols + 1) / 2;
  const auto* src = static_cast<const uint16_t*>(w.data);
  for (int64_t r = r0; r < r1; ++r) {
    const uint16_t* blk = src + (r / kTileRows) * pairs * kTileRows * 2 + (r % kTileRows) * 2;
    uint16_t* dst = out + (r - r0) * w.cols;
    for (int64_t c = 0; c < w.cols; ++c) dst[c] = blk[(c / 2) * kTileRows * 2 + c % 2];
  }
}

WeightView weight_rows(const WeightView& w, int64_t r0, int64_t r1) {
  WeightView v = w;
  v.rows = r1 - r0;
  if (w.layout == WeightLayout::kBf16Tiles) {
    assert(r0 % kTileRows == 0);
    v.data = static_cast<const uint8_t*>(w.data) + bf16_tiles_bytes(r0, w.cols);
    return v;
  }
  v.data = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(r0 * w.cols) * static_cast<size_t>(dtype_size(w.dtype));
  if (w.dtype == DType::kF8E4M3) v.scale_inv = w.scale_inv + (r0 / w.block) * ((w.cols + w.block - 1) / w.block);
  return v;
}

}  // namespace latent::cpu
