// Weights: sharded checkpoints via model.safetensors.index.json, lookups with dtype and shape, views that
// point into the mapping (no copies).
#include "engine/weights.h"

#include <gtest/gtest.h>

#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

using test::Checkpoint;

TEST(Weights, OpensTheGoldenFileAndViewsTheMapping) {
  auto w = Weights::open(test::golden_dir("v3-tiny-bf16"));
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  const TensorInfo* t = w->find("model.layers.1.mlp.gate.e_score_correction_bias");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::kF32);  // mixed dtypes in one file
  auto m = w->matrix("model.layers.0.self_attn.kv_b_proj.weight", 256, 32);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->dtype, DType::kBF16);
  EXPECT_EQ(m->data, w->find("model.layers.0.self_attn.kv_b_proj.weight")->data);  // into the mapping
  auto bad = w->matrix("model.layers.0.self_attn.kv_b_proj.weight", 256, 16);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "model.layers.0.self_attn.kv_b_proj.weight: expected [256, 16], got [256, 32]");
  auto dt = w->get("model.norm.weight", {DType::kF32}, {64});
  ASSERT_FALSE(dt.ok());
  EXPECT_EQ(dt.error().message, "model.norm.weight: expected dtype F32, got BF16");
  EXPECT_FALSE(w->has("nope"));
  EXPECT_GT(w->total_bytes(), 0u);
}

// release (for tensors repacked at load): only whole pages inside the tensor, only memory of the mapping; the
// bytes read the same if something touches them again (they come back from the file), and touch_pages still
// walks the files (skipping what was given back).
TEST(Weights, ReleaseGivesBackWholePagesOfTheMappingOnly) {
  auto w = Weights::open(std::string(LATENT_SOURCE_DIR) + "/models/demo");
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  const TensorInfo* big = nullptr;
  for (const std::string& name : w->names()) {
    const TensorInfo* t = w->find(name);
    if (!big || t->nbytes > big->nbytes) big = t;
  }
  ASSERT_NE(big, nullptr);
  ASSERT_GT(big->nbytes, size_t{3} * 4096);
  const auto* p = static_cast<const uint8_t*>(big->data);
  const std::vector<uint8_t> before(p, p + big->nbytes);
  std::vector<uint8_t> heap(size_t{4} << 12, 7);
  EXPECT_FALSE(w->maps(heap.data(), heap.size()));
  w->release(heap.data(), heap.size());  // not the mapping's: ignored
  EXPECT_EQ(w->released_bytes(), 0u);
  EXPECT_EQ(heap, std::vector<uint8_t>(heap.size(), 7));
  ASSERT_TRUE(w->maps(p, big->nbytes));
  w->release(p, big->nbytes);
  const uintptr_t b = reinterpret_cast<uintptr_t>(p), page = 4096;
  EXPECT_EQ(w->released_bytes(), (b + big->nbytes) / page * page - (b + page - 1) / page * page);
  EXPECT_EQ(std::vector<uint8_t>(p, p + big->nbytes), before);
  EXPECT_EQ(w->touch_pages(), w->file_bytes());
}

TEST(Weights, ShardedCheckpointLoadsLikeOneFile) {
  Checkpoint c = Checkpoint::read(test::golden_dir("v3-tiny"));
  test::TempDir d("sharded");
  std::ofstream(d / "config.json") << c.config.dump();
  std::vector<std::string> s1, s2;
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [name, t] : c.tensors) {
    bool second = name.find("layers.2") != std::string::npos || name.find("layers.3") != std::string::npos;
    (second ? s2 : s1).push_back(name);
    index["weight_map"][name] = second ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
  }
  ASSERT_TRUE(write_safetensors(d / "model-00001-of-00002.safetensors", c.to_write(s1)).ok());
  ASSERT_TRUE(write_safetensors(d / "model-00002-of-00002.safetensors", c.to_write(s2)).ok());
  std::ofstream(d / "model.safetensors.index.json") << index.dump();
  WeightsOptions opt;
  opt.prefault = true;
  auto w = Weights::open(d.path(), opt);
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  EXPECT_EQ(w->size(), c.tensors.size());

  auto sharded = test::load_model(d.path());
  auto single = test::load_model(test::golden_dir("v3-tiny"));
  ASSERT_TRUE(sharded && single);
  auto c1 = KvCache::for_model(sharded->config(), 1), c2 = KvCache::for_model(single->config(), 1);
  test::SequenceRunner r1(*sharded, *c1, 8), r2(*single, *c2, 8);
  std::vector<int32_t> ids = {1, 2, 3, 4, 5};
  auto a = r1.feed(ids), b = r2.feed(ids);
  ASSERT_EQ(a.logits.size(), b.logits.size());
  EXPECT_EQ(a.logits, b.logits);
}

}  // namespace
}  // namespace latent
