// An FP8 (E4M3, 128x128 block scales) copy of a golden model matches the same model whose weights are
// the dequantized FP8 values stored as F32: the FP8 path reads q * scale_inv exactly.
#include <gtest/gtest.h>

#include <algorithm>

#include "kernels/cpu/dtype.h"
#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

using test::Checkpoint;

// Quantizes a [rows, cols] F32 tensor per 128x128 block (DeepSeek-V3 release layout): q = fp8(w / s),
// scale_inv = s = amax / 448. Returns the FP8 tensor, its scale_inv and the dequantized F32 copy.
struct Quantized {
  Checkpoint::Tensor q, scale_inv, dequant;
};

Quantized quantize(const Checkpoint::Tensor& t) {
  const int64_t rows = t.shape[0], cols = t.shape[1], B = 128;
  const int64_t br = (rows + B - 1) / B, bc = (cols + B - 1) / B;
  std::vector<float> w = t.f32(), scale(static_cast<size_t>(br * bc)), deq(w.size());
  std::vector<uint8_t> q(w.size());
  for (int64_t i = 0; i < br; ++i) {
    for (int64_t j = 0; j < bc; ++j) {
      float amax = 0;
      for (int64_t r = i * B; r < std::min(rows, (i + 1) * B); ++r) {
        for (int64_t c = j * B; c < std::min(cols, (j + 1) * B); ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
      }
      const float s = amax > 0 ? amax / 448.f : 1.f;
      scale[i * bc + j] = s;
      for (int64_t r = i * B; r < std::min(rows, (i + 1) * B); ++r) {
        for (int64_t c = j * B; c < std::min(cols, (j + 1) * B); ++c) {
          q[r * cols + c] = f32_to_fp8e4m3(w[r * cols + c] / s);
          deq[r * cols + c] = fp8e4m3_to_f32(q[r * cols + c]) * s;
        }
      }
    }
  }
  Quantized out;
  out.q = Checkpoint::Tensor{DType::kF8E4M3, t.shape, q};
  out.scale_inv.shape = {br, bc};
  out.scale_inv.set_f32(scale);
  out.dequant.shape = t.shape;
  out.dequant.set_f32(deq);
  return out;
}

bool quantized_in_release(const std::string& name) {
  // The V3 FP8 release quantizes the linear layers; embeddings, norms, router and heads stay high precision.
  auto ends = [&](const std::string& s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  return ends("_proj.weight") || ends("proj_with_mqa.weight");
}

TEST(Fp8, BlockQuantizedCopyMatchesDequantizedF32) {
  Checkpoint fp8 = Checkpoint::read(test::golden_dir("v3-tiny"));
  Checkpoint f32 = fp8;
  int n_quantized = 0;
  for (auto& [name, t] : f32.tensors) {
    if (!quantized_in_release(name)) continue;
    ASSERT_EQ(t.shape.size(), 2u) << name;
    Quantized qz = quantize(t);
    t = qz.dequant;
    fp8.tensors[name] = qz.q;
    fp8.tensors[name + "_scale_inv"] = qz.scale_inv;
    ++n_quantized;
  }
  ASSERT_GT(n_quantized, 50);
  fp8.config["quantization_config"] = {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"},
                                       {"quant_method", "fp8"}, {"weight_block_size", {128, 128}}};
  test::TempDir d8("fp8"), d32("fp8_deq");
  fp8.write(d8.path());
  f32.write(d32.path());

  auto m8 = test::load_model(d8.path());
  auto m32 = test::load_model(d32.path());
  ASSERT_TRUE(m8 && m32);
  EXPECT_TRUE(m8->config().quantization_config.fp8);
  EXPECT_EQ(m8->weights().find("model.layers.1.self_attn.kv_b_proj.weight")->dtype, DType::kF8E4M3);

  auto manifest = test::golden_manifest("v3-tiny");
  auto full = manifest["prompts"][2]["full_sequence_ids"].get<std::vector<int32_t>>();
  const int64_t N = static_cast<int64_t>(full.size()), V = 512;
  auto c8 = KvCache::for_model(m8->config(), 2);
  auto c32 = KvCache::for_model(m32->config(), 2);
  ASSERT_TRUE(c8.ok() && c32.ok());
  test::SequenceRunner s8(*m8, *c8, N), s32(*m32, *c32, N);
  ForwardResult r8 = s8.feed(full, true, nullptr, true), r32 = s32.feed(full, true, nullptr, true);
  ASSERT_EQ(r8.logits.size(), static_cast<size_t>(N * V));
  test::expect_close(r8.logits.data(), r32.logits.data(), r8.logits.size(), 1e-4, 0, "FP8 vs dequantized F32 logits");
  // The quantization really changed the model (else this test could not fail).
  auto golden = test::golden_npy("v3-tiny", manifest["prompts"][2]["files"]["prefill_logits"]["file"]);
  double diff = 0;
  for (size_t i = 0; i < golden.f32.size(); ++i) diff = std::max(diff, std::fabs(static_cast<double>(r8.logits[i]) - golden.f32[i]));
  EXPECT_GT(diff, 1e-3);

  std::vector<int32_t> next(full.begin() + 1, full.end());
  ForwardResult d8r = s8.feed_mtp(next, r8.hidden.data()), d32r = s32.feed_mtp(next, r32.hidden.data());
  test::expect_close(d8r.logits.data(), d32r.logits.data(), d8r.logits.size(), 1e-4, 0, "FP8 vs F32 MTP logits");
}

TEST(Fp8, MissingScaleInvIsAClearError) {
  Checkpoint c = Checkpoint::read(test::golden_dir("v3-tiny"));
  const std::string name = "model.layers.0.self_attn.o_proj.weight";
  Quantized qz = quantize(c.tensors[name]);
  c.tensors[name] = qz.q;  // no _scale_inv beside it
  test::TempDir d("fp8_noscale");
  c.write(d.path());
  auto m = DeepseekModel::load(d.path());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find(name + "_scale_inv"), std::string::npos) << m.error().message;
}

}  // namespace
}  // namespace latent
