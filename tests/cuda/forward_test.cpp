// The whole forward pass on the GPU: DeepseekModel (engine/deepseek_model.cpp, the one model file) driven with
// the CUDA device (engine/cuda/device_cuda.cpp), against the golden logits of tests/data/golden and against
// the same model on the CPU device: a prefill of each prompt, then 16 single-token decode steps through the
// device cache; a batch mixing sequences, prefill chunks and decodes; MTP; copy-on-write of a device block.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "engine/deepseek_model.h"
#include "engine/npy.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/device.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_paths.h"

namespace latent::cuda {
namespace {

// $LATENT_TEST_DATA first: binaries built here run on the GPU machine from another checkout path.
std::string golden_dir(const std::string& model) {
  const char* env = std::getenv("LATENT_TEST_DATA");
  return std::string(env && *env ? env : LATENT_TEST_DATA) + "/golden/" + model;
}

// NaN when a difference is (std::max would drop it: NaN logits would pass).
double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (std::isnan(d)) return d;  // kept: a later finite difference must not replace it
    m = std::max(m, d);
  }
  return m;
}

std::unique_ptr<DeepseekModel> load(const std::string& dir, const char* device) {
  cpu::set_linear_precision(cpu::LinearPrecision::kExact);  // float32 linears on both devices (golden tolerance)
  ModelOptions o;
  o.device = *DeviceSpec::parse(device);
  auto m = DeepseekModel::load(dir, o);
  EXPECT_TRUE(m.ok()) << device << ": " << m.error().to_string();
  return m.ok() ? std::move(*m) : nullptr;
}

class CudaForward : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaForward, MatchesGoldenPrefillAndDecodeLogits) {
  LATENT_REQUIRE_GPU();
  const std::string dir = golden_dir(GetParam());
  auto model = load(dir, "cuda");
  ASSERT_TRUE(model);
  EXPECT_FALSE(model->device().is_host());
  auto cache = model->make_cache(8);
  ASSERT_TRUE(cache.ok()) << cache.error().to_string();
  EXPECT_FALSE(cache->on_host());
  ASSERT_TRUE(cache->allocate(8).ok());
  const std::vector<BlockId> table = {3, 0, 5, 1};  // scrambled blocks: paging is exercised
  std::ifstream in(dir + "/golden/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(in);
  const int64_t V = model->config().vocab_size;
  int prompt = 0;
  for (const auto& p : manifest["prompts"]) {
    const std::string tag = GetParam() + " p" + std::to_string(prompt++);
    const std::vector<int32_t> ids = p["prompt_ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> gen = p["generated_ids"].get<std::vector<int32_t>>();
    auto pre = read_npy(dir + "/golden/" + p["files"]["prefill_logits"]["file"].get<std::string>());
    auto dec = read_npy(dir + "/golden/" + p["files"]["decode_logits"]["file"].get<std::string>());
    ASSERT_TRUE(pre.ok() && dec.ok()) << tag;
    SequenceInput s{ids, 0, table, /*all_logits=*/true};
    auto logits = model->forward(std::span<const SequenceInput>(&s, 1), *cache);
    ASSERT_TRUE(logits.ok()) << logits.error().to_string();
    ASSERT_EQ(logits->logits.size(), pre->f32.size()) << tag;
    EXPECT_LT(max_abs_diff(logits->logits.data(), pre->f32.data(), pre->f32.size()), 1e-4) << tag << " prefill";
    const int64_t L = static_cast<int64_t>(ids.size());
    for (size_t j = 0; j < gen.size(); ++j) {
      const std::vector<int32_t> one = {gen[j]};
      SequenceInput d{one, L + static_cast<int64_t>(j), table, false};
      auto step = model->forward(std::span<const SequenceInput>(&d, 1), *cache);
      ASSERT_TRUE(step.ok()) << step.error().to_string();
      ASSERT_EQ(step->logits.size(), static_cast<size_t>(V));
      EXPECT_LT(max_abs_diff(step->logits.data(), dec->f32.data() + j * V, static_cast<size_t>(V)), 1e-4)
          << tag << " decode step " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, CudaForward, ::testing::Values("v2lite-tiny", "v3-tiny", "v3-tiny-bf16"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) if (ch == '-') ch = '_';
                           return s;
                         });

// The scheduler's kind of steps, on both devices: two sequences prefilled together (one in two chunks), then
// a batch of a decode and a prefill chunk; hidden states, MTP drafts and a copied block. Logits within 1e-4.
TEST(CudaForward, MixedBatchesMtpAndCopiedBlocksMatchTheCpu) {
  LATENT_REQUIRE_GPU();
  const std::string dir = golden_dir("v3-tiny");  // has an MTP module
  auto gpu = load(dir, "cuda");
  auto cpu_model = load(dir, "cpu");
  ASSERT_TRUE(gpu && cpu_model);
  ASSERT_TRUE(gpu->has_mtp());
  struct Side {
    DeepseekModel* m;
    KvCache cache;
  };
  auto gc = gpu->make_cache(12);
  auto cc = cpu_model->make_cache(12);
  ASSERT_TRUE(gc.ok() && cc.ok());
  std::vector<Side> sides;
  sides.push_back({gpu.get(), std::move(*gc)});
  sides.push_back({cpu_model.get(), std::move(*cc)});
  std::vector<int32_t> a(70), b(40);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int32_t>((i * 37 + 5) % 500);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int32_t>((i * 11 + 3) % 500);
  std::vector<ForwardResult> results[2];
  for (size_t k = 0; k < 2; ++k) {
    Side& s = sides[k];
    ASSERT_TRUE(s.cache.allocate(12).ok());
    const std::vector<BlockId> ta = {7, 2}, tb = {4, 9}, tc = {7, 11};  // tc: a's first block, then a copy
    ForwardOptions fo;
    fo.return_hidden = true;
    // step 1: a's first 50 tokens and b's first 30, every logit and hidden state
    std::vector<SequenceInput> s1 = {{std::span(a).first(50), 0, ta, true}, {std::span(b).first(30), 0, tb, true}};
    auto r1 = s.m->forward(s1, s.cache, fo);
    ASSERT_TRUE(r1.ok()) << r1.error().to_string();
    results[k].push_back(*r1);
    // step 2: a's remaining 20 (crossing into its second block) beside b's next token (a decode)
    std::vector<SequenceInput> s2 = {{std::span(a).subspan(50), 50, ta, false}, {std::span(b).subspan(30, 1), 30, tb, false}};
    auto r2 = s.m->forward(s2, s.cache, fo);
    ASSERT_TRUE(r2.ok()) << r2.error().to_string();
    results[k].push_back(*r2);
    // MTP over a's first 50 positions from step 1's hidden states
    std::vector<MtpSequenceInput> m1 = {{std::span(a).subspan(1, 49), r1->hidden.data(), 0, ta, true}};
    auto r3 = s.m->forward_mtp(m1, s.cache);
    ASSERT_TRUE(r3.ok()) << r3.error().to_string();
    results[k].push_back(*r3);
    // copy-on-write: a's second block (6 tokens: 64..69) into block 11; decode position 70 over the copy
    ASSERT_TRUE(s.cache.copy_block(2, 11, 6).ok());
    const std::vector<int32_t> next = {123};
    std::vector<SequenceInput> s4 = {{next, 70, tc, false}};
    auto r4 = s.m->forward(s4, s.cache);
    ASSERT_TRUE(r4.ok()) << r4.error().to_string();
    results[k].push_back(*r4);
  }
  const char* names[] = {"mixed prefill", "prefill chunk + decode", "MTP", "decode over a copied block"};
  for (size_t i = 0; i < results[0].size(); ++i) {
    const ForwardResult& g = results[0][i];
    const ForwardResult& c = results[1][i];
    ASSERT_EQ(g.logits.size(), c.logits.size()) << names[i];
    EXPECT_EQ(g.logit_offset, c.logit_offset) << names[i];
    EXPECT_LT(max_abs_diff(g.logits.data(), c.logits.data(), c.logits.size()), 1e-4) << names[i];
    ASSERT_EQ(g.hidden.size(), c.hidden.size()) << names[i];
    EXPECT_LT(max_abs_diff(g.hidden.data(), c.hidden.data(), c.hidden.size()), 1e-4) << names[i] << " hidden";
  }
}

// YaRN's cos/sin magnitude (rope_scaling.mscale != mscale_all_dim; released configs have them equal): v3-tiny
// with mscale 1.5, so ModelConfig::rope_mscale() is about 1.04, on both devices: a prefill of 40 tokens, then 3
// decodes. Logits within 1e-4 of the CPU's (the reference for mscale: tests/engine/mscale_test.cpp).
TEST(CudaForward, YarnMscaleMatchesTheCpu) {
  LATENT_REQUIRE_GPU();
  namespace fs = std::filesystem;
  const fs::path src = golden_dir("v3-tiny");
  const fs::path dir = fs::temp_directory_path() / ("latent_cuda_mscale_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(src)) {
    if (e.is_regular_file() && e.path().filename() != "config.json") fs::create_symlink(e.path(), dir / e.path().filename());
  }
  nlohmann::json config = nlohmann::json::parse(std::ifstream(src / "config.json"));
  ASSERT_TRUE(config.contains("rope_scaling"));
  config["rope_scaling"]["mscale"] = 1.5;
  std::ofstream(dir / "config.json") << config.dump(2);
  auto gpu = load(dir.string(), "cuda");
  auto cpu_model = load(dir.string(), "cpu");
  ASSERT_TRUE(gpu && cpu_model);
  ASSERT_GT(gpu->config().rope_mscale(), 1.01);
  std::vector<int32_t> prompt(40);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 29 + 7) % 500);
  const std::vector<BlockId> table = {1, 0};
  std::vector<std::vector<float>> logits[2];
  DeepseekModel* models[2] = {gpu.get(), cpu_model.get()};
  for (int k = 0; k < 2; ++k) {
    auto cache = models[k]->make_cache(2);
    ASSERT_TRUE(cache.ok()) << cache.error().to_string();
    ASSERT_TRUE(cache->allocate(2).ok());
    std::vector<int32_t> fed = prompt;
    int64_t cached = 0;
    for (int step = 0; step < 4; ++step) {
      const std::span<const int32_t> tokens = std::span(fed).subspan(static_cast<size_t>(cached));
      SequenceInput s{tokens, cached, table, false};
      auto r = models[k]->forward(std::span<const SequenceInput>(&s, 1), *cache);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      logits[k].push_back(r->logits);
      cached = static_cast<int64_t>(fed.size());
      fed.push_back(static_cast<int32_t>((step * 97 + 13) % 500));  // the same next token on both devices
    }
  }
  fs::remove_all(dir);
  for (size_t i = 0; i < logits[1].size(); ++i) {
    ASSERT_EQ(logits[0][i].size(), logits[1][i].size()) << "step " << i;
    EXPECT_LT(max_abs_diff(logits[0][i].data(), logits[1][i].data(), logits[1][i].size()), 1e-4) << "step " << i;
  }
}

TEST(CudaForward, ACacheInHostMemoryIsAnErrorNotACrash) {
  LATENT_REQUIRE_GPU();
  auto gpu = load(golden_dir("v2lite-tiny"), "cuda");
  ASSERT_TRUE(gpu);
  auto host = KvCache::for_model(gpu->config(), 2);
  ASSERT_TRUE(host.ok());
  auto blocks = host->allocate(1);
  ASSERT_TRUE(blocks.ok());
  const std::vector<int32_t> ids = {1, 2};
  SequenceInput s{ids, 0, *blocks, false};
  auto r = gpu->forward(std::span<const SequenceInput>(&s, 1), *host);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expected a float32 or BF16 latent cache in device memory"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace latent::cuda
