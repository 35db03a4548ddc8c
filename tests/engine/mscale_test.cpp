// rope_scaling.mscale: the reference (HF modeling_deepseek.py DeepseekV2YarnRotaryEmbedding, vLLM
// DeepseekScalingRotaryEmbedding) multiplies cos_cached and sin_cached by
// yarn_get_mscale(factor, mscale) / yarn_get_mscale(factor, mscale_all_dim); the softmax scale carries
// yarn_get_mscale(factor, mscale_all_dim)^2. Released configs set mscale == mscale_all_dim (factor 1), so the
// golden data cannot tell; these tests use a config where they differ.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/config.h"
#include "engine/rope.h"
#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

TEST(Mscale, YarnGetMscaleAndTheRopeFactor) {
  EXPECT_DOUBLE_EQ(yarn_get_mscale(1.0, 0.707), 1.0);  // no scaling: no correction
  EXPECT_NEAR(yarn_get_mscale(40.0, 1.0), 1.3688879454113936, 1e-15);
  ModelConfig c;
  c.qk_nope_head_dim = 32;
  c.qk_rope_head_dim = 16;
  EXPECT_DOUBLE_EQ(c.rope_mscale(), 1.0);  // plain RoPE
  c.rope_scaling.yarn = true;
  c.rope_scaling.factor = 40;
  c.rope_scaling.mscale = 1.0;
  c.rope_scaling.mscale_all_dim = 0.707;
  // (0.1 * 1 * ln 40 + 1) / (0.1 * 0.707 * ln 40 + 1) = 1.3688879454 / 1.2608037774
  EXPECT_NEAR(c.rope_mscale(), 1.0857263992561355, 1e-14);
  EXPECT_NEAR(c.softmax_scale(), 1.2608037774058554 * 1.2608037774058554 / std::sqrt(48.0), 1e-14);
  c.rope_scaling.mscale_all_dim = 0.0;  // HF's default: softmax untouched, the whole correction on cos/sin
  EXPECT_NEAR(c.rope_mscale(), 1.3688879454113936, 1e-14);
  EXPECT_NEAR(c.softmax_scale(), 1.0 / std::sqrt(48.0), 1e-15);
  c.rope_scaling.mscale = c.rope_scaling.mscale_all_dim = 0.707;  // V2's config
  EXPECT_DOUBLE_EQ(c.rope_mscale(), 1.0);
}

TEST(Mscale, CosSinCarryTheFactor) {
  std::vector<float> inv = rope_inv_freq(8, 1e4), plain(8), scaled(8);
  rope_cos_sin(inv, 29, plain.data());
  rope_cos_sin(inv, 29, scaled.data(), 1.25f);
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(scaled[i], plain[i] * 1.25f) << i;
}

// Scaling cos and sin by m scales the rotated q_pe and k_pe by m. RoPE is linear, so the same model results from
// scaling the weight rows that produce q_pe (q_b_proj, rope rows of each head) and k_pe (the last rope_dim rows
// of kv_a_proj_with_mqa) by m with mscale == mscale_all_dim. The two checkpoints must give the same logits.
TEST(Mscale, ModelAppliesItAsScaledRopeProjections) {
  test::Checkpoint base = test::Checkpoint::read(test::golden_dir("v3-tiny"));
  ASSERT_EQ(base.config["rope_scaling"]["mscale_all_dim"], 1.0);
  const int64_t H = base.config["num_attention_heads"], nope = base.config["qk_nope_head_dim"],
                P = base.config["qk_rope_head_dim"], R = base.config["kv_lora_rank"];
  const int64_t layers = base.config["num_hidden_layers"];

  test::Checkpoint with_mscale = base;  // mscale 1.5 vs mscale_all_dim 1.0
  with_mscale.config["rope_scaling"]["mscale"] = 1.5;
  ModelConfig mc = *ModelConfig::from_json(with_mscale.config);
  const float m = static_cast<float>(mc.rope_mscale());
  ASSERT_GT(m, 1.05f);

  test::Checkpoint folded = base;  // mscale == mscale_all_dim, rope projections scaled by m
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
    auto& qb = folded.tensors.at(p + "q_b_proj.weight");  // [H * (nope + P), q_lora_rank]
    std::vector<float> w = qb.f32();
    const int64_t cols = qb.shape[1];
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t r = h * (nope + P) + nope; r < (h + 1) * (nope + P); ++r) {
        for (int64_t k = 0; k < cols; ++k) w[static_cast<size_t>(r * cols + k)] *= m;
      }
    }
    qb.set_f32(w);
    auto& kva = folded.tensors.at(p + "kv_a_proj_with_mqa.weight");  // [R + P, hidden]
    w = kva.f32();
    const int64_t d = kva.shape[1];
    for (int64_t r = R; r < R + P; ++r) {
      for (int64_t k = 0; k < d; ++k) w[static_cast<size_t>(r * d + k)] *= m;
    }
    kva.set_f32(w);
  }
  test::TempDir da("mscale_a"), db("mscale_b"), dc("mscale_c");
  with_mscale.write(da.path());
  folded.write(db.path());
  base.write(dc.path());
  auto ma = test::load_model(da.path()), mb = test::load_model(db.path()), mc0 = test::load_model(dc.path());
  ASSERT_TRUE(ma && mb && mc0);
  const std::vector<int32_t> prompt = {5, 17, 300, 42, 7, 99, 128, 3, 250, 11, 400, 64};
  auto logits = [&](DeepseekModel& model) {
    auto cache = KvCache::for_model(model.config(), 4);
    EXPECT_TRUE(cache.ok());
    test::SequenceRunner run(model, *cache, 32);
    return run.feed(prompt).logits;
  };
  const std::vector<float> a = logits(*ma), b = logits(*mb), c = logits(*mc0);
  ASSERT_EQ(a.size(), b.size());
  test::expect_close(a.data(), b.data(), a.size(), 2e-5, 1e-5, "mscale vs folded projections");
  double diff = 0;  // and the factor is not a no-op: the base model differs
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - c[i]));
  EXPECT_GT(diff, 1e-3);
}

}  // namespace
}  // namespace latent
