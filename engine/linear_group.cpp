#include "engine/linear_group.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/packed_weights.h"
#include "kernels/cpu/thread_pool.h"

namespace latent {
namespace {

struct Chunk {
  int32_t job;
  int64_t r0, r1;
};

}  // namespace

void linear_group(std::span<const LinearJob> jobs, cpu::ThreadPool* pool) {
  constexpr int64_t kChunkBytes = 256 << 10;
  thread_local std::vector<Chunk> chunks_tl;
  std::vector<Chunk>& chunks = chunks_tl;  // the caller's list (workers' thread_locals are other objects)
  chunks.clear();
  for (size_t j = 0; j < jobs.size(); ++j) {
    const cpu::WeightView& w = jobs[j].w;
    if (w.rows == 0 || jobs[j].n == 0) continue;
    const int64_t row_bytes = std::max<int64_t>(1, w.cols * dtype_size(w.dtype));
    // Whole FP8 scale blocks, whole 64-row tiles of a repacked weight (cpu::weight_rows), else 8 rows.
    const int64_t align = w.dtype == DType::kF8E4M3                        ? w.block
                          : w.layout == cpu::WeightLayout::kBf16Tiles ? cpu::kTileRows
                                                                        : 8;
    int64_t step = std::max<int64_t>(1, kChunkBytes / row_bytes);
    step = (step + align - 1) / align * align;
    for (int64_t r = 0; r < w.rows; r += step) chunks.push_back({static_cast<int32_t>(j), r, std::min(w.rows, r + step)});
  }
  cpu::ThreadPool& p = pool ? *pool : cpu::ThreadPool::global();
  const auto body = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const Chunk& ch = chunks[static_cast<size_t>(c)];
      const LinearJob& jb = jobs[static_cast<size_t>(ch.job)];
      // Nested inside the job (or alone): runs inline on this thread.
      cpu::linear_strided(jb.x, jb.ldx, jb.n, cpu::weight_rows(jb.w, ch.r0, ch.r1), jb.y + ch.r0, jb.ldy, &p);
    }
  };
  if (chunks.size() <= 1 || p.size() == 1) return body(0, static_cast<int64_t>(chunks.size()));
  p.parallel_for(static_cast<int64_t>(chunks.size()), 1, body);
}

}  // namespace latent
