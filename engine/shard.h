#pragma once
// Shard: the part of each weight one rank holds when several ranks share a model (vLLM's ColumnParallel /
// RowParallel linears, as slices of the memory-mapped checkpoint):
//   rows(w, r0, r1)  output rows [r0, r1): a view into the mapping, so the rank reads only those bytes;
//   cols(w, c0, c1)  input columns [c0, c1): copied once at load (a strided slice), held by the ShardStore.
// FP8 slices keep their 128x128 block scales when the cut falls on a block edge, else they are widened to F32
// (exact; only tiny test models cut inside a block).
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "kernels/cpu/ops.h"

namespace latent {

struct Shard {
  int rank = 0;
  int size = 1;
  bool split() const { return size > 1; }
  // This rank's contiguous part [begin, end) of n items split into `size` parts (the first n % size one larger).
  std::pair<int64_t, int64_t> range(int64_t n) const {
    const int64_t base = n / size, extra = n % size;
    const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
    return {begin, begin + base + (rank < extra ? 1 : 0)};
  }
};

// Owns the copied slices and counts the weight bytes this rank holds (views and copies).
class ShardStore {
 public:
  cpu::WeightView rows(const cpu::WeightView& w, int64_t r0, int64_t r1);
  cpu::WeightView cols(const cpu::WeightView& w, int64_t c0, int64_t c1);
  // A replicated tensor, counted as held.
  cpu::WeightView whole(const cpu::WeightView& w);
  int64_t held_bytes() const { return held_bytes_; }
  int64_t copied_bytes() const { return copied_bytes_; }
  // Reads one byte per page of every view into the mapping (whole tensors and row slices; copies are already in
  // memory), so that a rank brings only its own tensors into the page cache. progress(done, total) in bytes,
  // about every 64 MiB; returning false stops. Returns the bytes walked.
  size_t touch_mapped(const std::function<bool(size_t done, size_t total)>& progress) const;
  // The view starting at `data` no longer reads the mapping (repacked at load): touch_mapped skips it.
  void forget_mapped(const void* data);

 private:
  cpu::WeightView to_f32(const cpu::WeightView& w, int64_t r0, int64_t r1, int64_t c0, int64_t c1);
  void count(const cpu::WeightView& w);
  std::deque<std::vector<uint8_t>> bytes_;
  std::deque<std::vector<float>> scales_;
  std::vector<std::pair<const uint8_t*, size_t>> mapped_;  // views into the mapping: start, bytes
  int64_t held_bytes_ = 0, copied_bytes_ = 0;
};

}  // namespace latent
