// The vdpbf16ps bodies over repacked BF16 weights (packed_weights.h, WeightLayout::kBf16Tiles), fast precision.
// One micro-kernel serves the GEMM and the decode GEMV: 64 rows (4 zmm of the tile, loaded in order) x T tokens
// (a token's column pair broadcast), 4 x T float32 accumulators, each lane summing its row's pairs in column
// order. So a row's result is the same whether it came from the GEMM or the GEMV, and the outputs are whole
// zmm of consecutive rows: stored straight into y (no tile transpose, no gather).
// GEMM (n > 4): per 64-row block, column slices of kKP pairs (kept in L2 while every token tile of the batch
//   runs over it; the next slice is prefetched meanwhile), tokens in tiles of at most kTT, sizes balanced (12
//   tokens as 6 + 6, 8 as 4 + 4). Every zmm lane is a weight row, so no lane idles whatever the token count (the
//   row-major GEMM's lanes are tokens: an expert with 8 or 17 tokens ran at about half the rate there).
// GEMV (n <= 4): the same kernel over the whole row of pairs: 256 bytes of weights per step, one sequential
//   stream per thread, read by 256-bit halves (the decode loads that measured fastest here, see
//   ops_avx512_bf16.cpp's GemvLoad).
#include <algorithm>
#include <cstring>

#include "kernels/cpu/ops_avx512_impl.h"
#include "kernels/cpu/packed_weights.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/thread_pool.h"

#define LATENT_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

namespace latent::cpu {
namespace {

using namespace avx512;

// Column pairs per GEMM slice: 64 rows x 1024 pairs x 4 bytes = 256 KiB of tile, held in L2 while every token
// tile runs over it (the 2048-column matrices of Coder-V2-Lite in one slice: partial sums never leave the
// registers; a 10944-column one in 6). Measured on Zen 5 with 48-token experts: slices of 64 or 128 pairs (in
// L1) ran no faster, and partial sums through y cost 5-10 %.
constexpr int64_t kKP = 1024;
constexpr int kTT = 6;        // tokens per GEMM micro-tile: 4 x 6 = 24 accumulators

// Row stride of the rounded activations in u32 pairs: the row rounded up to 32 columns, plus 64 bytes so that
// the T token rows a micro-tile broadcasts from do not sit 4 KiB apart (one L1 set).
int64_t x_stride(int64_t cols) { return (cols + 31) / 32 * 16 + 16; }

// xq[t][0..) = bf16 pairs of x row t (nearest even), zero past cols; rows [t0, t1).
LATENT_AVX512BF16 void round_rows(const float* x, int64_t ldx, int64_t t0, int64_t t1, int64_t cols, int64_t ldq,
                                  uint32_t* xq) {
  for (int64_t t = t0; t < t1; ++t) {
    for (int64_t c = 0; c < cols; c += 32) {
      const int64_t klo = std::clamp<int64_t>(cols - c, 0, 16), khi = std::clamp<int64_t>(cols - c - 16, 0, 16);
      const __mmask16 mlo = static_cast<__mmask16>((1u << klo) - 1), mhi = static_cast<__mmask16>((1u << khi) - 1);
      const float* row = x + t * ldx + c;
      __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mhi, row + 16), _mm512_maskz_loadu_ps(mlo, row));
      _mm512_storeu_si512(xq + t * ldq + c / 2, reinterpret_cast<__m512i&>(v));
    }
  }
}

LATENT_AVX512BF16 inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh&>(v); }

template <bool kHalves>
LATENT_AVX512BF16 inline __m512i load_tile(const uint32_t* p) {
  if constexpr (kHalves) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_load_si256(reinterpret_cast<const __m256i*>(p))),
                              _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 8)), 1);
  }
  return _mm512_load_si512(p);
}

// Lines of the next slice of tiles to ask for (into L2) while a micro-kernel runs: `lines` from `at`, `per_step`
// of them per column pair. The first token tile over a slice reads it from DRAM; without this it would wait
// for every line (the slice is 32 KiB) instead of overlapping the reads with the previous slice's FMAs.
struct Prefetch {
  const char* at = nullptr;
  int64_t lines = 0;
  int per_step = 1;
};

// y[t][16 i + l] (+)= sum_{p < pc} tile[p][16 i + l] · xq[t][p] for t < T, i < 4; lanes outside m[i] (rows past
// the matrix) are neither read nor written. first: y is not read (the first slice).
template <int T, bool kHalves>
LATENT_AVX512BF16 void tile_kernel(const uint32_t* tile, const uint32_t* xq, int64_t ldq, int64_t pc, float* y,
                                   int64_t ldy, bool first, const __mmask16* m, Prefetch pf) {
  __m512 c[4][T];
  for (int i = 0; i < 4; ++i) {
    const __mmask16 lm = first ? 0 : m[i];  // a zero mask reads nothing: zeros
    for (int t = 0; t < T; ++t) c[i][t] = _mm512_maskz_loadu_ps(lm, y + t * ldy + 16 * i);
  }
  for (int64_t p = 0; p < pc; ++p) {
    const uint32_t* w = tile + p * kTileRows;
    const __m512i w0 = load_tile<kHalves>(w), w1 = load_tile<kHalves>(w + 16), w2 = load_tile<kHalves>(w + 32),
                  w3 = load_tile<kHalves>(w + 48);
    if (!kHalves) {
      for (int j = 0; j < pf.per_step; ++j) {
        const int64_t line = p * pf.per_step + j;
        if (line < pf.lines) _mm_prefetch(pf.at + line * 64, _MM_HINT_T1);
      }
    }
    for (int t = 0; t < T; ++t) {
      const __m512i b = _mm512_set1_epi32(static_cast<int>(xq[t * ldq + p]));
      c[0][t] = _mm512_dpbf16_ps(c[0][t], as_bh(w0), as_bh(b));
      c[1][t] = _mm512_dpbf16_ps(c[1][t], as_bh(w1), as_bh(b));
      c[2][t] = _mm512_dpbf16_ps(c[2][t], as_bh(w2), as_bh(b));
      c[3][t] = _mm512_dpbf16_ps(c[3][t], as_bh(w3), as_bh(b));
    }
  }
  for (int i = 0; i < 4; ++i)
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * ldy + 16 * i, m[i], c[i][t]);
}

template <bool kHalves>
void tile_kernel_n(int tn, const uint32_t* tile, const uint32_t* xq, int64_t ldq, int64_t pc, float* y, int64_t ldy,
                   bool first, const __mmask16* m, Prefetch pf = {}) {
  switch (tn) {
    case 1: return tile_kernel<1, kHalves>(tile, xq, ldq, pc, y, ldy, first, m, pf);
    case 2: return tile_kernel<2, kHalves>(tile, xq, ldq, pc, y, ldy, first, m, pf);
    case 3: return tile_kernel<3, kHalves>(tile, xq, ldq, pc, y, ldy, first, m, pf);
    case 4: return tile_kernel<4, kHalves>(tile, xq, ldq, pc, y, ldy, first, m, pf);
    case 5: return tile_kernel<5, kHalves>(tile, xq, ldq, pc, y, ldy, first, m, pf);
    default: return tile_kernel<6, kHalves>(tile, xq, ldq, pc, y, ldy, first, m, pf);
  }
}

// The store masks of block b: lanes of rows < w.rows.
void block_masks(const WeightView& w, int64_t b, __mmask16 m[4]) {
  const int64_t rv = std::min<int64_t>(kTileRows, w.rows - b * kTileRows);
  for (int i = 0; i < 4; ++i) {
    const int64_t k = std::clamp<int64_t>(rv - 16 * i, 0, 16);
    m[i] = static_cast<__mmask16>((1u << k) - 1);
  }
}

// Blocks [b0, b1) of a packed w against n >= 1 rounded tokens.
// GEMM order: column slice, then token panel (the panel's x slice, <= kPanelBytes, stays in L2 while every
// block of the range runs over it: 512 tokens of a 2048-column x are 2 MiB, beyond L2), then block (its tile
// slice, 256 KiB, in L2 while the panel's token tiles run over it; the next block's slice is prefetched
// meanwhile), then token tiles. Partial sums over slices go through y. `after`: the block the caller runs next on
// this thread when it is known (the next chunk when a nested job runs inline, the pair's other matrix), asked for
// during the last block's last slice; null: none.
void tiles_blocks(const uint32_t* xq, int64_t ldq, int64_t n, const WeightView& w, float* y, int64_t ldy, int64_t b0,
                  int64_t b1, const uint32_t* after = nullptr) {
  constexpr int64_t kPanelBytes = 512 << 10;
  const int64_t K2 = (w.cols + 1) / 2;
  const auto* base = static_cast<const uint32_t*>(w.data);
  __mmask16 masks[4];
  if (n <= 4) {  // decode: each block's whole row of pairs at once, W read once
    for (int64_t b = b0; b < b1; ++b) {
      block_masks(w, b, masks);
      tile_kernel_n<true>(static_cast<int>(n), base + b * K2 * kTileRows, xq, ldq, K2, y + b * kTileRows, ldy, true,
                          masks);
    }
    return;
  }
  const int64_t panel = std::max<int64_t>(kTT, kPanelBytes / (std::min(kKP, K2) * 4) / kTT * kTT);
  for (int64_t p0 = 0; p0 < K2; p0 += kKP) {
    const int64_t pc = std::min(kKP, K2 - p0);
    for (int64_t s0 = 0; s0 < n; s0 += panel) {
      const int64_t sn = std::min(panel, n - s0), tiles = (sn + kTT - 1) / kTT;
      for (int64_t b = b0; b < b1; ++b) {
        block_masks(w, b, masks);
        const uint32_t* tile = base + (b * K2 + p0) * kTileRows;
        const bool last = p0 + kKP >= K2 && s0 + panel >= n;
        const uint32_t* next = b + 1 < b1 ? tile + K2 * kTileRows : last ? after : nullptr;
        // The next slice's lines (this slice of the next block, or `after`'s first), asked for per column pair so
        // that all of them are in flight within this block's token tiles.
        const int64_t lines = !next ? 0 : b + 1 < b1 ? 4 * pc : 4 * std::min(kKP, K2);
        const int per_step = static_cast<int>(std::clamp<int64_t>((lines + tiles * pc - 1) / (tiles * pc), 1, 4));
        int64_t t0 = s0;
        for (int64_t i = 0; i < tiles; ++i) {
          const int tn = static_cast<int>(sn / tiles + (i < sn % tiles ? 1 : 0));
          const int64_t done = i * pc * per_step;
          const Prefetch pf{next ? reinterpret_cast<const char*>(next) + done * 64 : nullptr,
                            std::max<int64_t>(0, lines - done), per_step};
          tile_kernel_n<false>(tn, tile, xq + t0 * ldq + p0, ldq, pc, y + t0 * ldy + b * kTileRows, ldy, p0 == 0,
                               masks, pf);
          t0 += tn;
        }
      }
    }
  }
}

// x rounded to BF16 pairs once per call: [n][x_stride(cols)] u32.
const uint32_t* round_x(const float* x, int64_t ldx, int64_t n, int64_t cols, ThreadPool& pool) {
  const int64_t ldq = x_stride(cols);
  auto* xq = reinterpret_cast<uint32_t*>(thread_scratch(ScratchSlot::kPackedX, static_cast<size_t>(n * ldq)));
  if (n * cols < (64 << 10) || pool.size() == 1) {
    round_rows(x, ldx, 0, n, cols, ldq, xq);
  } else {
    pool.parallel_for(n, std::max<int64_t>(1, n / (pool.size() * 4)),
                      [&](int64_t t0, int64_t t1) { round_rows(x, ldx, t0, t1, cols, ldq, xq); });
  }
  return xq;
}

int64_t blocks_of(const WeightView& w) { return (w.rows + kTileRows - 1) / kTileRows; }

// Blocks per pool chunk: decode GEMVs in chunks of >= 64 KiB of tile, at most 2 MiB, about 4 per thread (as the
// row-major GEMV); GEMMs about 6 chunks per thread.
int64_t grain_of(const WeightView& w, int64_t n, int threads) {
  const int64_t nb = blocks_of(w);
  if (n > 4) return std::max<int64_t>(1, nb / (threads * 6));
  const int64_t block_bytes = std::max<int64_t>(1, (w.cols + 1) / 2 * kTileRows * 4);
  return std::max<int64_t>(std::max<int64_t>(1, (64 << 10) / block_bytes),
                           std::min<int64_t>(nb / (threads * 4), (2 << 20) / block_bytes));
}

}  // namespace

LATENT_AVX512BF16 void pack_bf16_tiles_avx512(const WeightView& w, uint32_t* out, int64_t b0, int64_t b1) {
  const int64_t K2 = (w.cols + 1) / 2;
  const auto* base = static_cast<const uint16_t*>(w.data);
  for (int64_t b = b0; b < b1; ++b) {
    uint32_t* dst = out + b * K2 * kTileRows;
    for (int i = 0; i < 4; ++i) {
      for (int64_t p = 0; p < K2; p += 16) {
        const int64_t k = 2 * p, kn = std::clamp<int64_t>(w.cols - k, 0, 32);
        const __mmask32 mk = kn >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << kn) - 1);
        __m512 v[16];
        for (int r = 0; r < 16; ++r) {
          const int64_t row = b * kTileRows + 16 * i + r;
          v[r] = row < w.rows ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mk, base + row * w.cols + k))
                              : _mm512_setzero_ps();
        }
        transpose16(v);  // v[j] lane r: pair p + j of row 16 i + r
        const int64_t pn = std::min<int64_t>(16, K2 - p);
        for (int64_t j = 0; j < pn; ++j) _mm512_store_ps(reinterpret_cast<float*>(dst + (p + j) * kTileRows + 16 * i), v[j]);
      }
    }
  }
}

void linear_bf16_tiles_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy,
                              ThreadPool& pool) {
  const uint32_t* xq = round_x(x, ldx, n, w.cols, pool);
  const int64_t ldq = x_stride(w.cols), nb = blocks_of(w);
  const int64_t bytes = (w.cols + 1) / 2 * 4 * w.rows;
  if (pool.size() == 1 || (n <= 4 && bytes < (128 << 10))) return tiles_blocks(xq, ldq, n, w, y, ldy, 0, nb);
  const int64_t block_u32 = (w.cols + 1) / 2 * kTileRows;
  const auto* base = static_cast<const uint32_t*>(w.data);
  // Inline (a nested call: an MoE expert on the thread that claimed it) the chunks run in order on this thread,
  // so each can ask for the next one's first block; run by the pool's threads they interleave.
  const bool in_order = ThreadPool::inside_job() || pool.size() == 1;
  pool.parallel_for(nb, grain_of(w, n, pool.size()), [&](int64_t b0, int64_t b1) {
    tiles_blocks(xq, ldq, n, w, y, ldy, b0, b1, in_order && b1 < nb && n > 4 ? base + b1 * block_u32 : nullptr);
  });
}

void linear_pair_bf16_tiles_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& wa, float* ya,
                                   int64_t ldya, const WeightView& wb, float* yb, int64_t ldyb, ThreadPool& pool) {
  const uint32_t* xq = round_x(x, ldx, n, wa.cols, pool);
  const int64_t ldq = x_stride(wa.cols);
  const int64_t ga = blocks_of(wa), gb = blocks_of(wb);
  // One job over both matrices' blocks: a chunk never spans the two (it is cut at ga).
  const int64_t grain = std::max<int64_t>(1, (ga + gb) / (pool.size() * 6));
  const int64_t ca = (ga + grain - 1) / grain, cb = (gb + grain - 1) / grain;
  const auto *ta = static_cast<const uint32_t*>(wa.data), *tb = static_cast<const uint32_t*>(wb.data);
  const int64_t ka = (wa.cols + 1) / 2 * kTileRows, kb = (wb.cols + 1) / 2 * kTileRows;
  const bool in_order = ThreadPool::inside_job() || pool.size() == 1;
  pool.parallel_for(ca + cb, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      // Inline (an MoE expert's gate and up on the thread that claimed it) the chunks run in order on this
      // thread: each asks for the next one's first block, wb's first after wa's last.
      if (c < ca) {
        const int64_t b1 = std::min(ga, (c + 1) * grain);
        tiles_blocks(xq, ldq, n, wa, ya, ldya, c * grain, b1, !in_order ? nullptr : b1 < ga ? ta + b1 * ka : tb);
      } else {
        const int64_t b1 = std::min(gb, (c - ca + 1) * grain);
        tiles_blocks(xq, ldq, n, wb, yb, ldyb, (c - ca) * grain, b1, in_order && b1 < gb ? tb + b1 * kb : nullptr);
      }
    }
  });
}

}  // namespace latent::cpu
