// Broken checkpoints fail to load with messages that name the tensor or field, what was expected and what
// was found: truncated files, header/data mismatches, wrong shapes and dtypes, missing tensors and shards,
// bad config values.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

using test::Checkpoint;
namespace fs = std::filesystem;

std::string load_error(const std::string& dir) {
  auto m = DeepseekModel::load(dir);
  EXPECT_FALSE(m.ok()) << "expected " << dir << " to fail to load";
  return m.ok() ? "" : m.error().message;
}

TEST(BadCheckpoint, TruncatedFile) {
  test::TempDir d("trunc");
  fs::copy_file(test::golden_dir("v2lite-tiny") + "/config.json", d / "config.json");
  fs::copy_file(test::golden_dir("v2lite-tiny") + "/model.safetensors", d / "model.safetensors");
  fs::resize_file(d / "model.safetensors", fs::file_size(d / "model.safetensors") - 100);
  std::string e = load_error(d.path());
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  EXPECT_NE(e.find("model.safetensors"), std::string::npos) << e;

  fs::resize_file(d / "model.safetensors", 5);
  e = load_error(d.path());
  EXPECT_NE(e.find("truncated: expected at least 8 bytes"), std::string::npos) << e;
}

TEST(BadCheckpoint, HeaderAndDataSizeMismatch) {
  test::TempDir d("extra");
  fs::copy_file(test::golden_dir("v2lite-tiny") + "/config.json", d / "config.json");
  fs::copy_file(test::golden_dir("v2lite-tiny") + "/model.safetensors", d / "model.safetensors");
  std::ofstream(d / "model.safetensors", std::ios::app) << "trailing";
  std::string e = load_error(d.path());
  EXPECT_NE(e.find("header describes"), std::string::npos) << e;
  EXPECT_NE(e.find("file has"), std::string::npos) << e;
}

TEST(BadCheckpoint, WrongShapeNamesTensorExpectedAndFound) {
  Checkpoint c = Checkpoint::read(test::golden_dir("v3-tiny"));
  auto& t = c.tensors["model.layers.1.self_attn.kv_b_proj.weight"];  // [256, 32] -> keep 16 columns
  std::vector<float> w = t.f32(), cut;
  for (int64_t r = 0; r < 256; ++r) cut.insert(cut.end(), w.begin() + r * 32, w.begin() + r * 32 + 16);
  t.set_f32(cut);
  t.shape = {256, 16};
  test::TempDir d("shape");
  c.write(d.path());
  EXPECT_EQ(load_error(d.path()), "model.layers.1.self_attn.kv_b_proj.weight: expected [256, 32], got [256, 16]");
}

TEST(BadCheckpoint, WrongDtype) {
  Checkpoint c = Checkpoint::read(test::golden_dir("v3-tiny"));
  auto& t = c.tensors["model.norm.weight"];  // 64 F32 -> 64 F8_E4M3 bytes
  t.dtype = DType::kF8E4M3;
  t.bytes.resize(64);
  test::TempDir d("dtype");
  c.write(d.path());
  EXPECT_EQ(load_error(d.path()), "model.norm.weight: expected dtype F32, BF16 or F16, got F8_E4M3");
}

TEST(BadCheckpoint, UnsupportedStorageDtype) {
  test::TempDir d("i32");
  fs::copy_file(test::golden_dir("v3-tiny") + "/config.json", d / "config.json");
  std::vector<int32_t> v(4);
  // write_safetensors only knows our dtypes: patch the header text to I32.
  ASSERT_TRUE(write_safetensors(d / "model.safetensors", {{"x", DType::kF32, {4}, v.data()}}).ok());
  std::fstream f(d / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(f)), {});
  all.replace(all.find("\"F32\""), 5, "\"I32\"");
  f.seekp(0);
  f << all;
  f.close();
  std::string e = load_error(d.path());
  EXPECT_NE(e.find("tensor x: dtype: expected F32, BF16, F16 or F8_E4M3, found I32"), std::string::npos) << e;
}

TEST(BadCheckpoint, MissingTensor) {
  Checkpoint c = Checkpoint::read(test::golden_dir("v3-tiny"));
  c.tensors.erase("model.layers.2.mlp.experts.5.up_proj.weight");
  test::TempDir d("missing");
  c.write(d.path());
  EXPECT_EQ(load_error(d.path()),
            "model.layers.2.mlp.experts.5.up_proj.weight: expected a tensor of shape [32, 64], found none in the checkpoint");
}

TEST(BadCheckpoint, MissingShardFile) {
  Checkpoint c = Checkpoint::read(test::golden_dir("v2lite-tiny"));
  test::TempDir d("shard");
  c.write(d.path());
  fs::rename(d / "model.safetensors", d / "model-00001-of-00002.safetensors");
  nlohmann::json index = {{"metadata", {}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [name, t] : c.tensors) {
    index["weight_map"][name] = name.find("layers.3") != std::string::npos ? "model-00002-of-00002.safetensors"
                                                                          : "model-00001-of-00002.safetensors";
  }
  std::ofstream(d / "model.safetensors.index.json") << index.dump();
  std::string e = load_error(d.path());
  EXPECT_NE(e.find("lists shard model-00002-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
}

TEST(BadCheckpoint, BadConfigValue) {
  Checkpoint c = Checkpoint::read(test::golden_dir("v3-tiny"));
  c.config["topk_method"] = "best_of_three";
  test::TempDir d("config");
  c.write(d.path());
  std::string e = load_error(d.path());
  EXPECT_NE(e.find("topk_method: expected greedy, group_limited_greedy or noaux_tc, found \"best_of_three\""),
            std::string::npos) << e;
  EXPECT_NE(e.find("config.json"), std::string::npos) << e;
}

TEST(BadCheckpoint, NoCheckpointAtAll) {
  test::TempDir d("empty");
  EXPECT_NE(load_error(d.path()).find("config.json: cannot open"), std::string::npos);
  fs::copy_file(test::golden_dir("v3-tiny") + "/config.json", d / "config.json");
  EXPECT_NE(load_error(d.path()).find("expected model.safetensors or model.safetensors.index.json"), std::string::npos);
}

}  // namespace
}  // namespace latent
