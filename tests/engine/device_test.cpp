// The device interface (engine/device.h): --device parsing, a KvCache whose rows live in other storage
// (copy-on-write through KvStorage::copy), the choice of device at load, and `latent generate|logits` /
// `latentd` with --device through the built binaries. The CPU device's numbers are the golden tests'.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/deepseek_model.h"
#include "engine/device.h"
#include "engine/local_ranks.h"
#include "tests/engine/model_test_util.h"
#include "tests/test_paths.h"

namespace latent {
namespace {

TEST(DeviceSpec, ParsesEveryFormAndNamesWhatItExpected) {
  EXPECT_EQ(DeviceSpec::parse("cpu")->kind, DeviceSpec::Kind::kCpu);
  EXPECT_EQ(DeviceSpec::parse("auto")->kind, DeviceSpec::Kind::kAuto);
  auto c = DeviceSpec::parse("cuda");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, DeviceSpec::Kind::kCuda);
  EXPECT_EQ(c->index, 0);
  auto c3 = DeviceSpec::parse("cuda:3");
  ASSERT_TRUE(c3.ok());
  EXPECT_EQ(c3->index, 3);
  EXPECT_EQ(c3->name(), "cuda:3");
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:1x", "CPU", ""}) {
    auto r = DeviceSpec::parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("expected cpu, cuda, cuda:N (N >= 0) or auto, found '" + std::string(bad) + "'"),
              std::string::npos)
        << r.error().message;
  }
}

// Rows in a separate host allocation, standing in for device memory: the cache must reach them only through
// block_ptr() and KvStorage::copy().
class HeapStorage final : public KvStorage {
 public:
  explicit HeapStorage(size_t bytes) : bytes_(bytes, 0) {}
  void* base() override { return bytes_.data(); }
  Status copy(size_t dst, size_t src, size_t n) override {
    ++copies;
    std::memcpy(bytes_.data() + dst, bytes_.data() + src, n);
    return Status::Ok();
  }
  std::string where() const override { return "heap"; }
  int copies = 0;

 private:
  std::vector<char> bytes_;
};

TEST(KvStorage, CopyOnWriteGoesThroughTheStorage) {
  const int64_t layers = 3, R = 8, P = 4, blocks = 4;
  auto owned = std::make_unique<HeapStorage>(KvCache::bytes_for(layers, R + P, blocks, DType::kF32));
  HeapStorage* storage = owned.get();
  KvCache cache(layers, R, P, blocks, DType::kF32, std::move(owned));
  EXPECT_FALSE(cache.on_host());
  EXPECT_EQ(cache.where(), "heap");
  EXPECT_EQ(cache.bytes(), KvCache::bytes_for(layers, R + P, blocks, DType::kF32));
  auto b = cache.allocate(2);
  ASSERT_TRUE(b.ok());
  const BlockId src = (*b)[0], dst = (*b)[1];
  for (int64_t l = 0; l < layers; ++l) {
    float* rows = static_cast<float*>(cache.block_ptr(l, src));
    EXPECT_GE(reinterpret_cast<char*>(rows), static_cast<char*>(storage->base()));
    for (int64_t i = 0; i < KvCache::kBlockSize * (R + P); ++i) rows[i] = static_cast<float>(l * 1000 + i);
  }
  ASSERT_TRUE(cache.copy_block(src, dst, 5).ok());
  EXPECT_EQ(storage->copies, layers);  // one storage copy per layer
  for (int64_t l = 0; l < layers; ++l) {
    const float* rows = static_cast<const float*>(cache.block_ptr(l, dst));
    for (int64_t i = 0; i < 5 * (R + P); ++i) ASSERT_EQ(rows[i], static_cast<float>(l * 1000 + i)) << l << " " << i;
    EXPECT_EQ(rows[5 * (R + P)], 0.f);  // slots past n_slots untouched
  }
  EXPECT_FALSE(cache.copy_block(src, 3).ok());  // block 3 not allocated: an error, no copy
  EXPECT_EQ(storage->copies, layers);
}

TEST(DeviceChoice, CpuAndAutoRunTheReferenceCudaSaysWhatIsMissing) {
  const std::string dir = test::golden_dir("v3-tiny");
  ModelOptions o;
  o.device = *DeviceSpec::parse("auto");
  auto m = DeepseekModel::load(dir, o);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  if (cuda_device_count() == 0) {
    EXPECT_EQ((*m)->device().name(), "cpu");
  }
  auto cache = (*m)->make_cache(4);
  ASSERT_TRUE(cache.ok());
  if ((*m)->device().is_host()) {
    EXPECT_TRUE(cache->on_host());
  }

  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present: the no-GPU message is not reachable";
  o.device = *DeviceSpec::parse("cuda:1");
  auto g = DeepseekModel::load(dir, o);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, ErrorCode::kUnsupported);
  const std::string& msg = g.error().message;
  EXPECT_NE(msg.find("--device cuda:1: expected "), std::string::npos) << msg;
  EXPECT_TRUE(msg.find("found none") != std::string::npos || msg.find("found a build without") != std::string::npos)
      << msg;
}

TEST(DeviceChoice, RandomWeightsNeedADeviceThatMakesThem) {
  Weights w = Weights::placeholder();
  EXPECT_TRUE(w.is_placeholder());
  auto m = w.matrix("model.layers.0.mlp.gate_proj.weight", 96, 64);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->dtype, DType::kBF16);
  EXPECT_EQ(m->rows, 96);
  EXPECT_EQ(m->cols, 64);
  EXPECT_NE(m->data, nullptr);
  EXPECT_TRUE(w.has("lm_head.weight"));
  EXPECT_FALSE(w.has("model.layers.1.mlp.gate.e_score_correction_bias"));
  ModelOptions o;
  o.random_weights_seed = 7;  // on the CPU: refused before anything reads the placeholder data
  auto r = DeepseekModel::load(test::golden_dir("v3-tiny"), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("random weights: expected a device that generates them (--device cuda), found the CPU"),
            std::string::npos) << r.error().message;
  if (cuda_device_count() == 0) {
    o.device = *DeviceSpec::parse("auto");
    r = DeepseekModel::load(test::golden_dir("v3-tiny"), o);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("found the CPU"), std::string::npos) << r.error().message;
  }
}

TEST(DeviceChoice, AGpuTakesOneRank) {
  ParallelOptions p;
  p.tp = 2;
  p.device = *DeviceSpec::parse("cuda");
  Status st = p.validate();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("--device cuda:0: expected one rank"), std::string::npos) << st.error().message;
  p.device = *DeviceSpec::parse("auto");  // auto with several ranks: the CPU
  EXPECT_TRUE(p.validate().ok());
}

// ---- the binaries

std::string bin(const char* name) { return std::string(LATENT_BIN_DIR) + "/" + name; }

class DeviceCli : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* b : {"latent", "latentd"}) {
      if (!std::filesystem::exists(bin(b))) GTEST_SKIP() << bin(b) << " not built";
    }
  }
};

TEST_F(DeviceCli, GenerateOnCpuAndAutoGivesTheGoldenIds) {
  auto p = test::golden_manifest("v2lite-tiny")["prompts"][2];
  std::string ids;
  for (int32_t id : p["prompt_ids"].get<std::vector<int32_t>>()) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  std::string want;
  for (int32_t id : p["generated_ids"].get<std::vector<int32_t>>()) want += (want.empty() ? "" : " ") + std::to_string(id);
  for (const char* device : {"cpu", "auto"}) {
    int rc = -1;
    std::string out = test::run_command(bin("latent") + " generate --model " + test::golden_dir("v2lite-tiny") + " --ids " + ids +
                              " -n 16 --greedy --device " + device, &rc);
    ASSERT_EQ(rc, 0) << device << ": " << out;
    EXPECT_NE(out.find(want + "\n"), std::string::npos) << device << ": " << out;
  }
}

TEST_F(DeviceCli, CudaWithoutAGpuExitsOneSayingSo) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present";
  const std::string model = " --model " + test::golden_dir("v3-tiny");
  for (const std::string& cmd : std::vector<std::string>{bin("latent") + " generate" + model + " --ids 1,2,3 -n 2 --device cuda",
                                bin("latent") + " logits" + model + " --ids 1,2 --out /dev/null --device cuda:0",
                                bin("latentd") + " --stdio --model " + LATENT_TEST_DATA + "/openai-tiny --device cuda"}) {
    int rc = -1;
    std::string out = test::run_command(cmd, &rc);
    EXPECT_EQ(rc, 1) << cmd << "\n" << out;
    EXPECT_NE(out.find("--device cuda:0: expected "), std::string::npos) << cmd << "\n" << out;
    EXPECT_TRUE(out.find("expected a CUDA GPU, found none") != std::string::npos ||
                out.find("expected a build with the CUDA backend, found a build without") != std::string::npos)
        << cmd << "\n" << out;
  }
  int rc = -1;
  std::string out = test::run_command(bin("latentd") + " --stdio" + model + " --device tpu", &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("found 'tpu'"), std::string::npos) << out;
  out = test::run_command(bin("latent") + " generate --help", &rc);
  EXPECT_NE(out.find("--device cpu|cuda[:N]|auto"), std::string::npos) << out;
  out = test::run_command(bin("latentd") + " --help", &rc);
  EXPECT_NE(out.find("--device"), std::string::npos) << out;
}

}  // namespace
}  // namespace latent
