#pragma once
// BF16 weights repacked at load for the CPU's vdpbf16ps bodies (kernels/cpu/packed_weights.h), one copy kept:
// each repacked tensor's pages of the memory-mapped checkpoint are given back (Weights::release), so the
// process holds the tiles instead of the mapped rows, never both (but for one tensor at a time while loading).
// Applies to the weights only linear() reads (projections, experts, router, lm_head), under the fast precision
// on a CPU with AVX512-BF16; the exact precision, F32/F16/FP8 weights and GPU devices keep the mapped rows.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/shard.h"
#include "engine/weights.h"
#include "kernels/cpu/packed_weights.h"

namespace latent {

// Owns the repacked tensors (the views point into it).
struct RepackedWeights {
  std::vector<cpu::TileBuffer> buffers;
  size_t bytes = 0;     // sum of the tiles' sizes
  size_t tensors = 0;
  double seconds = 0;   // time spent repacking
};

// Whether repack_linears would repack anything now: the fast precision (cpu::linear_precision()) with the
// AVX512-BF16 bodies available.
bool repack_applies();

// Repacks every view in `views` that is a row-major BF16 matrix lying in `weights`' mapping (others are left
// as they are: copies made for tensor-parallel shards, other dtypes), replaces it with the repacked view,
// releases its mapped pages and tells `store` it no longer reads the mapping. A view listed twice (one tensor
// reached two ways) is repacked once. kResourceExhausted when memory for the tiles runs out.
Status repack_linears(std::span<cpu::WeightView* const> views, Weights& weights, ShardStore& store,
                      RepackedWeights& out, cpu::ThreadPool* pool);

}  // namespace latent
