// MLA on the device against kernels/cpu/attention.h: absorption, paged attention (decode rows with different
// context lengths, long enough to be split and merged; causal prefill) and W_UV.
#include "kernels/cuda/mla.h"

#include <gtest/gtest.h>

#include <vector>

#include "kernels/cpu/attention.h"
#include "tests/cuda/cuda_test_util.h"

namespace latent::cuda {
namespace {

using testing::HostWeight;
using testing::random_floats;
using testing::rel_err;

constexpr int64_t kBlock = 64;

// A cache in the engine's layout [n_blocks, n_layers, 64, R + P] with random rows.
struct Cache {
  int64_t n_blocks, n_layers, dim;
  std::vector<float> data;
  Cache(int64_t blocks, int64_t layers, int64_t d)
      : n_blocks(blocks), n_layers(layers), dim(d), data(random_floats(blocks * layers * kBlock * d, 17)) {}
  const float* block(int64_t layer, int64_t b) const { return data.data() + ((b * n_layers + layer) * kBlock) * dim; }
};

struct Dims {
  int64_t H, nope, R, P, v;
};

// plan_ctx > 0: the split plan is made for that many tokens, fewer than the longest row holds (its last split
// must run to the row's end).
// cache_dtype kBF16: the rows rounded to BF16 on both sides (the CPU reads the same rounded rows).
void check_decode(const Dims& m, const std::vector<int32_t>& ctx, int32_t plan_ctx = 0, DType cache_dtype = DType::kF32) {
  const int64_t n = static_cast<int64_t>(ctx.size()), dim = m.R + m.P, layer = 1, layers = 2, q_stride = m.H * (m.nope + m.P);
  const int64_t max_blocks = 40;
  Cache cache(n * max_blocks + 3, layers, dim);
  std::vector<uint16_t> half(cache.data.size());
  for (size_t i = 0; i < half.size(); ++i) half[i] = f32_to_bf16(cache.data[i]);
  const bool bf16 = cache_dtype == DType::kBF16;
  const auto host_block = [&](int64_t b) -> const void* {
    return bf16 ? static_cast<const void*>(half.data() + ((b * layers + layer) * kBlock) * dim) : cache.block(layer, b);
  };
  // Row i's table: blocks in a scrambled order so paging is really exercised.
  std::vector<int32_t> tables(static_cast<size_t>(n * max_blocks));
  for (int64_t i = 0; i < n * max_blocks; ++i) tables[static_cast<size_t>(i)] = static_cast<int32_t>((i * 37 + 3) % (n * max_blocks + 3));
  const std::vector<float> q = random_floats(n * q_stride, 21), q_lat = random_floats(n * m.H * m.R, 22);
  const float scale = 0.07f;
  std::vector<float> want(static_cast<size_t>(n * m.H * m.R));
  int32_t max_ctx = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<const void*> blocks;
    for (int64_t b = 0; b < max_blocks; ++b) blocks.push_back(host_block(tables[static_cast<size_t>(i * max_blocks + b)]));
    cpu::mla_attention(q_lat.data() + i * m.H * m.R, q.data() + i * q_stride, q_stride, 1, m.H, m.nope, m.R, m.P,
                       ctx[static_cast<size_t>(i)] - 1, blocks.data(), cache_dtype, kBlock, scale, want.data() + i * m.H * m.R);
    max_ctx = std::max(max_ctx, ctx[static_cast<size_t>(i)]);
  }
  DeviceArray<float> dcache(cache.data), dq(q), dql(q_lat), out(n * m.H * m.R);
  DeviceArray<int32_t> dtables(tables), dctx(ctx);
  MlaAttentionArgs a;
  a.q_lat = dql.data(), a.q = dq.data(), a.q_stride = q_stride, a.nope = m.nope;
  a.n = n, a.n_heads = m.H, a.R = m.R, a.P = m.P, a.scale = scale, a.ctx_lens = dctx.data();
  a.max_ctx = plan_ctx > 0 ? plan_ctx : max_ctx;
  a.o_lat = out.data();
  DeviceArray<uint16_t> dhalf(half);
  const void* base = bf16 ? static_cast<const void*>(dhalf.data() + layer * kBlock * dim)
                          : static_cast<const void*>(dcache.data() + layer * kBlock * dim);
  const PagedLatentCache pc{base, layers * kBlock * dim, dtables.data(), max_blocks, cache_dtype};
  DeviceArray<float> ws(mla_attention_workspace(a));
  const Status st = mla_attention(a, pc, ws.data(), nullptr);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_LT(rel_err(out.to_host(), want), 1e-5);
}

TEST(CudaMla, DecodeMatchesCpuOverPagedCacheCoderV2LiteShape) {
  LATENT_REQUIRE_GPU();
  check_decode({16, 128, 512, 64, 128}, {1, 65, 700, 2500});  // 2500 tokens: several splits merged
}

TEST(CudaMla, DecodeMatchesCpuOverABf16Cache) {
  LATENT_REQUIRE_GPU();
  check_decode({16, 128, 512, 64, 128}, {1, 65, 2500}, 0, DType::kBF16);
}

TEST(CudaMla, DecodeMatchesCpuWithFewHeads) {
  LATENT_REQUIRE_GPU();
  check_decode({2, 16, 64, 16, 16}, {3, 130, 1000});  // few heads, few CTAs: head groups of 2
}

TEST(CudaMla, DecodeMatchesCpuWithHeadGroups) {
  LATENT_REQUIRE_GPU();
  check_decode({40, 16, 64, 16, 16}, {77, 2000});  // 40 heads, long context: groups of 16, 16 and 8
}

TEST(CudaMla, RowsLongerThanThePlanAreAttendedInFull) {
  LATENT_REQUIRE_GPU();
  check_decode({16, 128, 512, 64, 128}, {100, 2500}, 256);  // planned for 256 tokens: 2500 must not be cut
}

TEST(CudaMla, CausalPrefillMatchesCpu) {
  LATENT_REQUIRE_GPU();
  const int64_t H = 4, nope = 32, R = 128, P = 32, n = 9, start = 70, dim = R + P, q_stride = H * (nope + P);
  Cache cache(4, 1, dim);
  const std::vector<int32_t> table = {2, 0, 3};
  const std::vector<float> q = random_floats(n * q_stride, 31), q_lat = random_floats(n * H * R, 32);
  std::vector<const void*> blocks;
  for (int32_t b : table) blocks.push_back(cache.block(0, b));
  std::vector<float> want(static_cast<size_t>(n * H * R));
  cpu::mla_attention(q_lat.data(), q.data(), q_stride, n, H, nope, R, P, start, blocks.data(), DType::kF32, kBlock, 0.1f, want.data());
  DeviceArray<float> dcache(cache.data), dq(q), dql(q_lat), out(n * H * R);
  DeviceArray<int32_t> dtable(table);
  MlaAttentionArgs a;
  a.q_lat = dql.data(), a.q = dq.data(), a.q_stride = q_stride, a.nope = nope, a.n = n, a.n_heads = H, a.R = R;
  a.P = P, a.scale = 0.1f, a.start_pos = start, a.max_ctx = start + n, a.o_lat = out.data();
  DeviceArray<float> ws(mla_attention_workspace(a));
  ASSERT_TRUE(mla_attention(a, {dcache.data(), kBlock * dim, dtable.data(), 0}, ws.data(), nullptr).ok());
  EXPECT_LT(rel_err(out.to_host(), want), 1e-5);
}

TEST(CudaMla, AbsorbAndApplyUvMatchCpu) {
  LATENT_REQUIRE_GPU();
  const int64_t H = 4, nope = 32, rope = 16, v = 24, R = 64, n = 3, q_stride = H * (nope + rope);
  for (DType dt : {DType::kBF16, DType::kF8E4M3}) {
    HostWeight kv_b(dt, H * (nope + v), R, 41);
    auto arena = DeviceArena::create(size_t{1} << 20);
    ASSERT_TRUE(arena.ok());
    auto dkv = arena->upload(kv_b.view);
    ASSERT_TRUE(dkv.ok());
    const std::vector<float> q = random_floats(n * q_stride, 42), o_lat = random_floats(n * H * R, 43);
    std::vector<float> want_q(static_cast<size_t>(n * H * R)), want_o(static_cast<size_t>(n * H * v));
    cpu::mla_absorb_q(q.data(), n, q_stride, kv_b.view, H, nope, rope, v, want_q.data());
    cpu::mla_apply_uv(o_lat.data(), n, kv_b.view, H, nope, v, want_o.data());
    DeviceArray<float> dq(q), dol(o_lat), got_q(n * H * R), got_o(n * H * v);
    ASSERT_TRUE(mla_absorb_q(dq.data(), n, q_stride, *dkv, H, nope, rope, v, got_q.data(), nullptr).ok());
    ASSERT_TRUE(mla_apply_uv(dol.data(), n, *dkv, H, nope, v, got_o.data(), nullptr).ok());
    EXPECT_LT(rel_err(got_q.to_host(), want_q), 1e-5) << dtype_name(dt);
    EXPECT_LT(rel_err(got_o.to_host(), want_o), 1e-5) << dtype_name(dt);
  }
}

TEST(CudaMla, CacheWriteRoundsToBf16LikeTheHostCache) {
  LATENT_REQUIRE_GPU();
  const int64_t dim = 8, layers = 2, layer = 0, n_blocks = 2;
  std::vector<uint16_t> cache(static_cast<size_t>(n_blocks * layers * kBlock * dim), 0);
  const std::vector<float> src = random_floats(2 * dim, 52);
  const std::vector<int32_t> pos = {3, 70}, tables = {1, 0};  // one table shared by both rows (stride 0)
  DeviceArray<uint16_t> dc(cache);
  DeviceArray<float> ds(src);
  DeviceArray<int32_t> dp(pos), dt(tables);
  ASSERT_TRUE(mla_cache_write(ds.data(), dim, 2, dim, dp.data(), dc.data() + layer * kBlock * dim, layers * kBlock * dim,
                              dt.data(), 0, nullptr, DType::kBF16).ok());
  const std::vector<uint16_t> got = dc.to_host();
  // row 0: position 3 -> block 1 slot 3; row 1: position 70 -> block 0 slot 6
  const int64_t blocks[2] = {1, 0}, slots[2] = {3, 6};
  for (int64_t i = 0; i < 2; ++i) {
    const uint16_t* row = got.data() + ((blocks[i] * layers + layer) * kBlock + slots[i]) * dim;
    for (int64_t c = 0; c < dim; ++c) EXPECT_EQ(row[c], f32_to_bf16(src[static_cast<size_t>(i * dim + c)])) << i << " " << c;
  }
  EXPECT_FALSE(mla_cache_write(ds.data(), dim, 2, dim, dp.data(), dc.data(), layers * kBlock * dim, dt.data(), 0, nullptr,
                               DType::kF8E4M3).ok());
}

TEST(CudaMla, CacheWritePlacesRowsThroughBlockTables) {
  LATENT_REQUIRE_GPU();
  const int64_t dim = 8, layers = 2, layer = 1, n_blocks = 3;
  std::vector<float> cache(static_cast<size_t>(n_blocks * layers * kBlock * dim), -1.f);
  const std::vector<float> src = random_floats(3 * 12, 51);  // 3 rows, ld 12 (only 8 copied)
  const std::vector<int32_t> pos = {0, 65, 127}, tables = {2, 0, 1, 2, 0, 1};  // one table per row, stride 2
  DeviceArray<float> dc(cache), ds(src);
  DeviceArray<int32_t> dp(pos), dt(tables);
  ASSERT_TRUE(mla_cache_write(ds.data(), 12, 3, dim, dp.data(), dc.data() + layer * kBlock * dim, layers * kBlock * dim,
                              dt.data(), 2, nullptr).ok());
  const std::vector<float> got = dc.to_host();
  auto row = [&](int64_t block, int64_t slot) { return got.data() + ((block * layers + layer) * kBlock + slot) * dim; };
  // row 0: table {2, 0}, pos 0 -> block 2 slot 0; row 1: table {1, 2}, pos 65 -> block 2 slot 1;
  // row 2: table {0, 1}, pos 127 -> block 1 slot 63.
  const int64_t blocks[3] = {2, 2, 1}, slots[3] = {0, 1, 63};
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t c = 0; c < dim; ++c) EXPECT_EQ(row(blocks[i], slots[i])[c], src[static_cast<size_t>(i * 12 + c)]) << i;
  }
  EXPECT_EQ(row(0, 0)[0], -1.f);  // untouched
  EXPECT_EQ(got[0], -1.f);        // layer 0 untouched
}

}  // namespace
}  // namespace latent::cuda
