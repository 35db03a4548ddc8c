#include "engine/shard.h"

#include <cstring>

namespace latent {

using cpu::WeightView;

void ShardStore::count(const WeightView& w) {
  held_bytes_ += w.rows * w.cols * dtype_size(w.dtype);
  if (w.scale_inv) held_bytes_ += ((w.rows + w.block - 1) / w.block) * ((w.cols + w.block - 1) / w.block) * 4;
}

WeightView ShardStore::whole(const WeightView& w) {
  count(w);
  mapped_.emplace_back(static_cast<const uint8_t*>(w.data), static_cast<size_t>(w.rows * w.cols * dtype_size(w.dtype)));
  return w;
}

size_t ShardStore::touch_mapped(const std::function<bool(size_t done, size_t total)>& progress) const {
  size_t total = 0, done = 0, next_report = size_t{64} << 20;
  for (const auto& [p, n] : mapped_) total += n;
  volatile uint8_t sink = 0;
  for (const auto& [p, n] : mapped_) {
    for (size_t off = 0; off < n; off += 4096) {
      sink = sink + p[off];
      if (done + off >= next_report) {
        next_report += size_t{64} << 20;
        if (progress && !progress(done + off, total)) return done + off;
      }
    }
    done += n;
  }
  (void)sink;
  if (progress) progress(done, total);
  return done;
}

void ShardStore::forget_mapped(const void* data) {
  std::erase_if(mapped_, [&](const auto& e) { return e.first == data; });
}

WeightView ShardStore::to_f32(const WeightView& w, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  const int64_t n = (r1 - r0) * (c1 - c0);
  std::vector<uint8_t>& buf = bytes_.emplace_back(static_cast<size_t>(n * 4));
  float* dst = reinterpret_cast<float*>(buf.data());
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = c0; c < c1; ++c) *dst++ = w.at(r, c);
  }
  copied_bytes_ += n * 4;
  WeightView v{buf.data(), DType::kF32, r1 - r0, c1 - c0};
  count(v);
  return v;
}

WeightView ShardStore::rows(const WeightView& w, int64_t r0, int64_t r1) {
  if (r0 == 0 && r1 == w.rows) return whole(w);
  if (w.scale_inv && r0 % w.block != 0) return to_f32(w, r0, r1, 0, w.cols);
  WeightView v = w;
  v.data = static_cast<const uint8_t*>(w.data) + r0 * w.cols * dtype_size(w.dtype);
  v.rows = r1 - r0;
  if (w.scale_inv) v.scale_inv = w.scale_inv + (r0 / w.block) * ((w.cols + w.block - 1) / w.block);
  count(v);
  mapped_.emplace_back(static_cast<const uint8_t*>(v.data), static_cast<size_t>(v.rows * v.cols * dtype_size(v.dtype)));
  return v;
}

WeightView ShardStore::cols(const WeightView& w, int64_t c0, int64_t c1) {
  if (c0 == 0 && c1 == w.cols) return whole(w);
  if (w.scale_inv && c0 % w.block != 0) return to_f32(w, 0, w.rows, c0, c1);
  const int64_t es = dtype_size(w.dtype), n = c1 - c0;
  std::vector<uint8_t>& buf = bytes_.emplace_back(static_cast<size_t>(w.rows * n * es));
  for (int64_t r = 0; r < w.rows; ++r) {
    std::memcpy(buf.data() + r * n * es, static_cast<const uint8_t*>(w.data) + (r * w.cols + c0) * es,
                static_cast<size_t>(n * es));
  }
  copied_bytes_ += static_cast<int64_t>(buf.size());
  WeightView v{buf.data(), w.dtype, w.rows, n, nullptr, w.block};
  if (w.scale_inv) {  // block columns [c0 / block, ceil(c1 / block)) of every block row
    const int64_t bc = (w.cols + w.block - 1) / w.block, br = (w.rows + w.block - 1) / w.block;
    const int64_t b0 = c0 / w.block, b1 = (c1 + w.block - 1) / w.block;
    std::vector<float>& s = scales_.emplace_back(static_cast<size_t>(br * (b1 - b0)));
    for (int64_t r = 0; r < br; ++r) {
      std::copy(w.scale_inv + r * bc + b0, w.scale_inv + r * bc + b1, s.begin() + r * (b1 - b0));
    }
    copied_bytes_ += static_cast<int64_t>(s.size() * 4);
    v.scale_inv = s.data();
  }
  count(v);
  return v;
}

}  // namespace latent
