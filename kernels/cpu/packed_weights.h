#pragma once
// BF16 weights repacked once, at load, into the tile order of the vdpbf16ps bodies (WeightLayout::kBf16Tiles):
//   u32 tile[block][pair][64]: block b holds rows [64 b, 64 b + 64), pair p columns (2p, 2p + 1); lane r is
//   bf16 w[64 b + r][2p] | bf16 w[64 b + r][2p + 1] << 16, zero past the last row or column.
// The GEMM loads 4 zmm (64 rows x one column pair) per step and broadcasts a token's pair, so its outputs come
// out in row order (no transpose of tiles, no zmm lanes lost when a expert has few tokens); the decode GEMV
// streams the same bytes once, one sequential stream per thread, and sums 16 rows per zmm (no reduction).
// Only the linear ops read this layout (matmul, embedding_row and the attention bodies take row-major views).
// Under the exact precision linear() unpacks 64-row slabs and runs the exact bodies on them: the same results,
// bit for bit, as on the row-major weight (tests/kernels/packed_weights_test.cpp).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/cpu/ops.h"

namespace latent::cpu {

constexpr int64_t kTileRows = 64;

// Bytes of the repacked form of a [rows, cols] BF16 matrix.
size_t bf16_tiles_bytes(int64_t rows, int64_t cols);

// Whether pack_bf16_tiles applies: a row-major BF16 matrix, and this CPU has the AVX512-BF16 bodies.
bool can_pack_bf16_tiles(const WeightView& w);

// Memory for repacked weights: anonymous, 2 MiB aligned, transparent huge pages asked for (fewer TLB misses
// for the GEMV's stream and the GEMM's panels). Move-only.
class TileBuffer {
 public:
  TileBuffer() = default;
  static TileBuffer allocate(size_t bytes);  // data() null when out of memory
  TileBuffer(TileBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  TileBuffer& operator=(TileBuffer&& o) noexcept;
  TileBuffer(const TileBuffer&) = delete;
  TileBuffer& operator=(const TileBuffer&) = delete;
  ~TileBuffer();
  void* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// Writes w (row-major BF16, can_pack_bf16_tiles) repacked into `out` (bf16_tiles_bytes, 64-byte aligned) and
// returns the view of it. pool may be null (the global pool).
WeightView pack_bf16_tiles(const WeightView& w, void* out, ThreadPool* pool = nullptr);

// Rows [r0, r1) of a packed view, row-major BF16, into out[(r1 - r0) * cols].
void unpack_bf16_tiles(const WeightView& w, int64_t r0, int64_t r1, uint16_t* out);

// Rows [r0, r1) of any view as a view of their own (a packed view: r0 a multiple of kTileRows; FP8: of the
// scale block, so that the scale rows follow).
WeightView weight_rows(const WeightView& w, int64_t r0, int64_t r1);

// The bodies (ops_avx512_bf16_tiles.cpp): y[n, rows] (row t at y + t * ldy) = bf16(x) · Wᵀ for a packed W.
void linear_bf16_tiles_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy,
                              ThreadPool& pool);
void linear_pair_bf16_tiles_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& wa, float* ya,
                                   int64_t ldya, const WeightView& wb, float* yb, int64_t ldyb, ThreadPool& pool);
void pack_bf16_tiles_avx512(const WeightView& w, uint32_t* out, int64_t b0, int64_t b1);

}  // namespace latent::cpu
