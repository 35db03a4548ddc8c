// `latent logits` and `latent generate` against the golden data, through the built binary
// (skipped when build/bin/latent has not been built alongside this test).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "tests/engine/model_test_util.h"
#include "tests/test_paths.h"

namespace latent {
namespace {

std::string latent_bin() { return std::string(LATENT_BIN_DIR) + "/latent"; }

std::string join(const std::vector<int32_t>& ids, const char* sep) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? sep : "") + std::to_string(ids[i]);
  return s;
}

class GoldenCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(latent_bin())) GTEST_SKIP() << latent_bin() << " not built";
  }
};

TEST_F(GoldenCli, LogitsWritesEveryPositionAndMtpRows) {
  auto manifest = test::golden_manifest("v3-tiny");
  auto p = manifest["prompts"][1];
  auto ids = p["prompt_ids"].get<std::vector<int32_t>>();
  test::TempDir d("cli_logits");
  int rc = -1;
  std::string out = test::run_command(latent_bin() + " logits --model " + test::golden_dir("v3-tiny") + " --ids " + join(ids, ",") +
                            " --out " + (d / "l.npy") + " --mtp " + (d / "m.npy"),
                        &rc);
  ASSERT_EQ(rc, 0) << out;
  auto l = read_npy(d / "l.npy");
  auto m = read_npy(d / "m.npy");
  ASSERT_TRUE(l.ok() && m.ok());
  auto ref = test::golden_npy("v3-tiny", p["files"]["prefill_logits"]["file"]);
  ASSERT_EQ(l->shape, ref.shape);
  test::expect_close(l->f32.data(), ref.f32.data(), ref.f32.size(), 1e-4, 0, "latent logits");
  // MTP slot i depends only on tokens <= i+1, so the prompt's slots equal the golden full-sequence rows.
  auto mtp = test::golden_npy("v3-tiny", p["files"]["mtp_logits"]["file"]);
  ASSERT_EQ(m->shape, (std::vector<int64_t>{static_cast<int64_t>(ids.size()) - 1, 512}));
  test::expect_close(m->f32.data(), mtp.f32.data(), m->f32.size(), 1e-4, 0, "latent logits --mtp");
}

TEST_F(GoldenCli, GenerateGreedyReproducesGoldenIdsAndDecodeLogits) {
  for (std::string model : {"v2lite-tiny", "v3-tiny-bf16"}) {
    auto p = test::golden_manifest(model)["prompts"][2];
    test::TempDir d("cli_gen");
    int rc = -1;
    std::string out = test::run_command(latent_bin() + " generate --model " + test::golden_dir(model) + " --ids " +
                              join(p["prompt_ids"].get<std::vector<int32_t>>(), ",") +
                              " -n 16 --greedy --json --dump-logits " + (d / "dl.npy"),
                          &rc);
    ASSERT_EQ(rc, 0) << out;
    auto gen = p["generated_ids"].get<std::vector<int32_t>>();
    EXPECT_NE(out.find(join(gen, " ") + "\n"), std::string::npos) << out;
    auto last = out.substr(out.rfind('{'));
    auto j = nlohmann::json::parse(last);
    EXPECT_EQ(j["ids"].get<std::vector<int32_t>>(), gen);
    EXPECT_EQ(j["prompt_tokens"], 33);
    for (const char* k : {"prefill_ms", "decode_ms", "decode_tok_s"}) EXPECT_TRUE(j[k].is_number()) << k;
    auto dl = read_npy(d / "dl.npy");
    ASSERT_TRUE(dl.ok());
    auto ref = test::golden_npy(model, p["files"]["decode_logits"]["file"]);
    ASSERT_EQ(dl->shape, ref.shape);
    test::expect_close(dl->f32.data(), ref.f32.data(), ref.f32.size(), 1e-4, 0, model + " --dump-logits");
  }
}

TEST_F(GoldenCli, SamplingIsSeededAndErrorsAreClear) {
  const std::string base = latent_bin() + " generate --model " + test::golden_dir("v3-tiny") + " --ids 1,2,3 -n 8";
  int rc1 = -1, rc2 = -1, rc3 = -1;
  std::string a = test::run_command(base + " --temperature 1.5 --top-p 0.9 --seed 11", &rc1);
  std::string b = test::run_command(base + " --temperature 1.5 --top-p 0.9 --seed 11", &rc2);
  ASSERT_EQ(rc1, 0) << a;
  EXPECT_EQ(a, b);
  std::string e = test::run_command(latent_bin() + " generate --model /nonexistent --ids 1", &rc3);
  EXPECT_NE(rc3, 0);
  EXPECT_NE(e.find("/nonexistent"), std::string::npos) << e;
  e = test::run_command(latent_bin() + " logits --model " + test::golden_dir("v3-tiny") + " --ids 1,x --out /dev/null", &rc3);
  EXPECT_NE(rc3, 0);
  EXPECT_NE(e.find("--ids: expected comma-separated token ids, found 'x'"), std::string::npos) << e;
  e = test::run_command(latent_bin() + " logits --help", &rc3);
  EXPECT_EQ(rc3, 0);
  EXPECT_NE(e.find("--mtp FILE.npy"), std::string::npos) << e;
}

}  // namespace
}  // namespace latent
