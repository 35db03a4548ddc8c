// `latent logits|generate --tp N --ep M` through the built binary: in-process ranks against the single-rank
// output on every golden model, and `mpirun -np 2` (OpenMPI, installed by scripts/setup) writing the same file
// as the in-process run. Skips only when the binary or mpirun is truly absent.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
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

std::string find_mpirun() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin"}) {
    const std::string p = std::string(dir) + "/mpirun";
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

// mpirun as root (CI containers) needs both allow variables; --oversubscribe: 2 ranks on a 1-core runner.
std::string mpirun(int np) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp "
         "OMPI_MCA_btl_tcp_if_include=lo timeout 240 " + find_mpirun() + " -np " + std::to_string(np) +
         " --oversubscribe ";
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::vector<uint8_t> b;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return b;
  int c;
  while ((c = std::fgetc(f)) != EOF) b.push_back(static_cast<uint8_t>(c));
  std::fclose(f);
  return b;
}

void expect_same_npy(const std::string& a, const std::string& b, const std::string& what) {
  auto x = read_npy(a), y = read_npy(b);
  ASSERT_TRUE(x.ok()) << what << ": " << a;
  ASSERT_TRUE(y.ok()) << what << ": " << b;
  ASSERT_EQ(x->shape, y->shape) << what;
  test::expect_close(x->f32.data(), y->f32.data(), y->f32.size(), 1e-5, 0, what);
}

class MultiRankCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(latent_bin())) GTEST_SKIP() << latent_bin() << " not built";
  }
  std::string logits(const std::string& model, const std::string& ids, const std::string& out, bool mtp,
                     const std::string& extra, const std::string& launcher = "") {
    int rc = -1;
    const std::string cmd = launcher + latent_bin() + " logits --model " + test::golden_dir(model) + " --ids " + ids +
                            " --out " + out + ".npy" + (mtp ? " --mtp " + out + ".mtp.npy" : "") + " " + extra;
    std::string o = test::run_command(cmd, &rc);
    EXPECT_EQ(rc, 0) << cmd << "\n" << o;
    return o;
  }
};

TEST_F(MultiRankCli, LogitsWithTwoAndFourRanksEqualSingleRank) {
  for (std::string model : {"v2lite-tiny", "v3-tiny", "v3-tiny-bf16"}) {
    const auto p = test::golden_manifest(model)["prompts"][2];
    const std::string ids = join(p["full_sequence_ids"].get<std::vector<int32_t>>(), ",");
    const bool mtp = model != "v2lite-tiny";
    test::TempDir d("mr_logits");
    logits(model, ids, d / "one", mtp, "");
    for (int n : {2, 4}) {
      const std::string tag = d / ("tp" + std::to_string(n));
      logits(model, ids, tag, mtp, "--tp " + std::to_string(n) + " --ep " + std::to_string(n));
      expect_same_npy(tag + ".npy", d / "one.npy", model + " --tp " + std::to_string(n) + " logits");
      if (mtp) expect_same_npy(tag + ".mtp.npy", d / "one.mtp.npy", model + " --tp " + std::to_string(n) + " MTP");
    }
  }
}

TEST_F(MultiRankCli, GenerateGreedyAndDecodeLogitsEqualSingleRank) {
  for (std::string model : {"v3-tiny", "v2lite-tiny"}) {
    const auto p = test::golden_manifest(model)["prompts"][0];
    const std::string ids = join(p["prompt_ids"].get<std::vector<int32_t>>(), ",");
    test::TempDir d("mr_gen");
    const std::string base = latent_bin() + " generate --model " + test::golden_dir(model) + " --ids " + ids +
                             " -n 8 --greedy --dump-logits ";
    int rc = -1;
    const std::string one = test::run_command(base + (d / "one.npy"), &rc);
    ASSERT_EQ(rc, 0) << one;
    const std::string two = test::run_command(base + (d / "two.npy") + " --tp 2 --ep 2", &rc);
    ASSERT_EQ(rc, 0) << two;
    EXPECT_EQ(two.substr(two.rfind('\n', two.size() - 2) + 1), one.substr(one.rfind('\n', one.size() - 2) + 1))
        << model << ": greedy ids";
    expect_same_npy(d / "two.npy", d / "one.npy", model + " decode logits --tp 2");
    // Through the Scheduler with MTP drafts (v3-tiny has an MTP module): the same greedy ids.
    if (model == "v3-tiny") {
      const std::string sched = latent_bin() + " generate --model " + test::golden_dir(model) + " --ids " + ids +
                                " -n 8 --greedy --spec mtp";
      const std::string s1 = test::run_command(sched, &rc);
      ASSERT_EQ(rc, 0) << s1;
      const std::string s2 = test::run_command(sched + " --tp 2 --ep 1", &rc);
      ASSERT_EQ(rc, 0) << s2;
      EXPECT_EQ(s2.substr(s2.rfind('\n', s2.size() - 2) + 1), s1.substr(s1.rfind('\n', s1.size() - 2) + 1));
    }
  }
}

// Pipeline stages (--pp 2: v3-tiny's 3 layers as 2 + 1, v2lite-tiny's 4 as 2 + 2), alone and with --tp 2 in each
// stage, and data-parallel attention (one sequence: rank 0 attends it, rank 1 attends nothing and still runs
// its share of the MoE): prefill, MTP and (generate --dump-logits) decode logits equal the single-rank ones.
TEST_F(MultiRankCli, PipelineStagesAndDpAttentionEqualSingleRank) {
  for (std::string model : {"v2lite-tiny", "v3-tiny", "v3-tiny-bf16"}) {
    const auto p = test::golden_manifest(model)["prompts"][2];
    const std::string ids = join(p["full_sequence_ids"].get<std::vector<int32_t>>(), ",");
    const bool mtp = model != "v2lite-tiny";
    test::TempDir d("mr_pp");
    logits(model, ids, d / "one", mtp, "");
    for (const std::string layout : {"--pp 2", "--pp 2 --tp 2 --ep 2", "--pp 2 --tp 2 --ep 1", "--tp 2 --ep 2 --dp-attention",
                                     "--pp 2 --tp 2 --ep 1 --dp-attention"}) {
      const std::string tag = d / "pp";
      logits(model, ids, tag, mtp, layout);
      expect_same_npy(tag + ".npy", d / "one.npy", model + " " + layout + " logits");
      if (mtp) expect_same_npy(tag + ".mtp.npy", d / "one.mtp.npy", model + " " + layout + " MTP");
    }
  }
  const auto p = test::golden_manifest("v3-tiny")["prompts"][0];
  test::TempDir d("mr_pp_gen");
  const std::string gen = latent_bin() + " generate --model " + test::golden_dir("v3-tiny") + " --ids " +
                          join(p["prompt_ids"].get<std::vector<int32_t>>(), ",") + " -n 8 --greedy --dump-logits ";
  int rc = -1;
  const std::string one = test::run_command(gen + (d / "one.npy"), &rc);
  ASSERT_EQ(rc, 0) << one;
  const std::string two = test::run_command(gen + (d / "pp.npy") + " --pp 2 --tp 2 --ep 2", &rc);
  ASSERT_EQ(rc, 0) << two;
  EXPECT_EQ(two.substr(two.rfind('\n', two.size() - 2) + 1), one.substr(one.rfind('\n', one.size() - 2) + 1));
  expect_same_npy(d / "pp.npy", d / "one.npy", "v3-tiny --pp 2 --tp 2 decode logits");
}

TEST_F(MultiRankCli, BadRankCountsAreClearErrors) {
  int rc = -1;
  std::string o = test::run_command(latent_bin() + " logits --model " + test::golden_dir("v3-tiny") + " --ids 1,2 --out /dev/null --tp 3 --ep 3", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(o.find("num_attention_heads (4) divisible"), std::string::npos) << o;
  o = test::run_command(latent_bin() + " logits --model " + test::golden_dir("v3-tiny") + " --ids 1,2 --out /dev/null --tp 2 --ep 4", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(o.find("--ep"), std::string::npos) << o;
  o = test::run_command(latent_bin() + " logits --model " + test::golden_dir("v3-tiny") + " --ids 1,2 --out /dev/null --pp 4", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(o.find("--pp 4: expected at most num_hidden_layers (3) pipeline stages, found 4"), std::string::npos) << o;
  o = test::run_command(latent_bin() + " logits --model " + test::golden_dir("v3-tiny") + " --ids 1,2 --out /dev/null --dp-attention", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(o.find("--dp-attention: expected --tp of at least 2"), std::string::npos) << o;
}

// A rank that fails mid-run (LATENT_TEST_RANK_FAIL: rank 1 fails on its 2nd step) ends `latent generate` and
// `latent logits` with a non-zero status and an error naming rank 1, through the model and the Scheduler.
TEST_F(MultiRankCli, ARankThatFailsMidRunEndsTheCommandNamingIt) {
  const std::string m = test::golden_dir("v3-tiny");
  test::TempDir d("mr_fail");
  for (const std::string& cmd : {" generate --model " + m + " --ids 1,2,3 -n 6 --greedy --tp 2 --ep 2",
                                " generate --model " + m + " --ids 1,2,3 -n 6 --greedy --spec mtp --tp 2 --ep 1",
                                " logits --model " + m + " --ids 1,2,3 --out " + (d / "x.npy") + " --mtp " +
                                    (d / "x.mtp.npy") + " --tp 2 --ep 2"}) {
    int rc = -1;
    const std::string out = test::run_command("LATENT_TEST_RANK_FAIL=1:2 " + latent_bin() + cmd, &rc);
    ASSERT_GE(rc, 0) << "did not exit normally\n" << cmd << "\n" << out;
    EXPECT_NE(rc, 0) << cmd << "\n" << out;
    EXPECT_NE(out.find("rank 1 stopped: LATENT_TEST_RANK_FAIL: rank 1 fails at step 2"), std::string::npos)
        << cmd << "\n" << out;
  }
}

class MpiCli : public MultiRankCli {
 protected:
  void SetUp() override {
    MultiRankCli::SetUp();
    if (IsSkipped()) return;
    if (find_mpirun().empty()) GTEST_SKIP() << "mpirun not installed (scripts/setup installs openmpi-bin)";
  }
};

TEST_F(MpiCli, MpirunTwoRanksWritesTheSameFilesAsInProcess) {
  const std::string model = "v3-tiny";
  const std::string ids = join(test::golden_manifest(model)["prompts"][1]["full_sequence_ids"].get<std::vector<int32_t>>(), ",");
  test::TempDir d("mr_mpi");
  logits(model, ids, d / "threads", true, "--tp 2 --ep 2");
  logits(model, ids, d / "mpi", true, "--tp 2 --ep 2", mpirun(2));
  EXPECT_EQ(file_bytes(d / "mpi.npy"), file_bytes(d / "threads.npy")) << "logits: mpirun vs in-process";
  EXPECT_EQ(file_bytes(d / "mpi.mtp.npy"), file_bytes(d / "threads.mtp.npy")) << "MTP: mpirun vs in-process";
  EXPECT_FALSE(file_bytes(d / "mpi.npy").empty());
  logits(model, ids, d / "one", true, "");
  expect_same_npy(d / "mpi.npy", d / "one.npy", "mpirun logits vs single rank");

  // generate --dump-logits (prefill + decode) under mpirun, greedy ids as single rank.
  int rc = -1;
  const std::string gen = latent_bin() + " generate --model " + test::golden_dir(model) + " --ids " + ids +
                          " -n 6 --greedy --dump-logits ";
  const std::string one = test::run_command(gen + (d / "g1.npy"), &rc);
  ASSERT_EQ(rc, 0) << one;
  const std::string two = test::run_command(mpirun(2) + gen + (d / "g2.npy") + " --tp 2 --ep 2", &rc);
  ASSERT_EQ(rc, 0) << two;
  EXPECT_NE(two.find(one.substr(0, one.find('\n') + 1)), std::string::npos) << one << "\nvs\n" << two;
  expect_same_npy(d / "g2.npy", d / "g1.npy", "mpirun generate decode logits");
}

// mpirun -np 2 with two pipeline stages (one process each, the hidden state sent over MPI): the same files as
// the in-process stages, and the single-rank logits.
TEST_F(MpiCli, MpirunTwoStagesWriteTheSameFilesAsInProcess) {
  const std::string model = "v3-tiny";
  const std::string ids = join(test::golden_manifest(model)["prompts"][1]["full_sequence_ids"].get<std::vector<int32_t>>(), ",");
  test::TempDir d("mr_mpi_pp");
  logits(model, ids, d / "threads", true, "--pp 2");
  logits(model, ids, d / "mpi", true, "--pp 2", mpirun(2));
  EXPECT_FALSE(file_bytes(d / "mpi.npy").empty());
  EXPECT_EQ(file_bytes(d / "mpi.npy"), file_bytes(d / "threads.npy")) << "logits: mpirun vs in-process";
  EXPECT_EQ(file_bytes(d / "mpi.mtp.npy"), file_bytes(d / "threads.mtp.npy")) << "MTP: mpirun vs in-process";
  logits(model, ids, d / "one", true, "");
  expect_same_npy(d / "mpi.npy", d / "one.npy", "mpirun --pp 2 logits vs single rank");
  expect_same_npy(d / "mpi.mtp.npy", d / "one.mtp.npy", "mpirun --pp 2 MTP vs single rank");
  logits(model, ids, d / "dp_threads", true, "--tp 2 --ep 2 --dp-attention");
  logits(model, ids, d / "dp_mpi", true, "--tp 2 --ep 2 --dp-attention", mpirun(2));
  EXPECT_EQ(file_bytes(d / "dp_mpi.npy"), file_bytes(d / "dp_threads.npy")) << "--dp-attention: mpirun vs in-process";
  expect_same_npy(d / "dp_mpi.npy", d / "one.npy", "mpirun --dp-attention logits vs single rank");
  int rc = -1;
  const std::string o = test::run_command(mpirun(2) + latent_bin() + " logits --model " + test::golden_dir(model) +
                                " --ids 1,2 --out /dev/null --pp 2 --tp 2", &rc);
  EXPECT_NE(rc, 0) << o;
  EXPECT_NE(o.find("expected the 2 ranks that mpirun started (-np), found 4"), std::string::npos) << o;
}

TEST_F(MpiCli, ARankThatDiesEndsTheRunWithAnErrorNamingIt) {
  // Rank 1 gets a checkpoint that does not exist and exits with an error; the job ends (no hang: the outer
  // timeout would give 124) with a non-zero status and a message naming rank 1.
  test::TempDir d("mr_death");
  int rc = -1;
  const std::string cmd = mpirun(2) + "sh -c 'm=" + test::golden_dir("v3-tiny") +
                          "; [ \"$OMPI_COMM_WORLD_RANK\" = 1 ] && m=/nonexistent/model; exec " + latent_bin() +
                          " logits --model $m --ids 1,2,3 --out " + (d / "x.npy") + " --tp 2 --ep 2'";
  const std::string out = test::run_command(cmd, &rc);
  ASSERT_GE(rc, 0) << "did not exit normally\n" << out;
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(rc, 124) << "timed out: a hang\n" << out;
  EXPECT_NE(out.find("rank 1"), std::string::npos) << out;
}

TEST_F(MpiCli, ARankThatFailsMidRunEndsTheJobNamingIt) {
  int rc = -1;
  const std::string cmd = "LATENT_TEST_RANK_FAIL=1:2 " + mpirun(2) + latent_bin() + " generate --model " +
                          test::golden_dir("v3-tiny") + " --ids 1,2,3 -n 6 --greedy --tp 2 --ep 2";
  const std::string out = test::run_command(cmd, &rc);
  ASSERT_GE(rc, 0) << "did not exit normally\n" << out;
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(rc, 124) << "timed out: a hang\n" << out;
  EXPECT_NE(out.find("MPI rank 1 of 2: LATENT_TEST_RANK_FAIL: rank 1 fails at step 2"), std::string::npos) << out;
}

}  // namespace
}  // namespace latent
