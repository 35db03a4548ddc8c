// The benchmark sandbox (server/eval/sandbox.h) and HumanEval loading: real python3 subprocesses.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "server/eval/humaneval.h"
#include "server/eval/infill.h"
#include "server/eval/sandbox.h"
#include "tests/test_paths.h"

namespace latent::eval {
namespace {

const std::string kFixture = std::string(LATENT_TEST_DATA) + "/eval/humaneval-5.jsonl";

SandboxLimits quick(int wall_s) {
  SandboxLimits l;
  l.wall = std::chrono::seconds(wall_s);
  l.cpu_seconds = wall_s;
  return l;
}

TEST(EvalSandbox, ExitCodeIsTheVerdict) {
  if (sandbox_capabilities().interpreter.empty()) GTEST_SKIP() << "no python3";
  auto ok = run_python_sandboxed("print('hello')\n", quick(120));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->outcome, SandboxOutcome::kPassed) << ok->output;
  EXPECT_EQ(ok->output, "hello\n");
  auto bad = run_python_sandboxed("assert 1 == 2, 'nope'\n", quick(120));
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->outcome, SandboxOutcome::kFailed);
  EXPECT_NE(bad->output.find("AssertionError: nope"), std::string::npos) << bad->output;
}

TEST(EvalSandbox, HangingProgramIsKilledAtTheWallLimit) {
  if (sandbox_capabilities().interpreter.empty()) GTEST_SKIP() << "no python3";
  // Sleeping uses no CPU: only the wall limit ends it. Its child (same process group) goes with it.
  auto r = run_python_sandboxed("import os, time\nif os.fork() == 0:\n    time.sleep(1000)\ntime.sleep(1000)\n",
                                quick(1));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->outcome, SandboxOutcome::kTimeout);
  EXPECT_EQ(r->signal, SIGKILL);
  auto spin = run_python_sandboxed("while True:\n    pass\n", quick(1));
  ASSERT_TRUE(spin.ok());
  EXPECT_EQ(spin->outcome, SandboxOutcome::kTimeout);
}

TEST(EvalSandbox, MemoryLimitEndsAGreedyProgram) {
  if (sandbox_capabilities().interpreter.empty()) GTEST_SKIP() << "no python3";
  SandboxLimits l = quick(120);
  l.memory_bytes = size_t(256) << 20;
  auto r = run_python_sandboxed("x = bytearray(2 << 30)\nprint('allocated')\n", l);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, SandboxOutcome::kFailed);
  EXPECT_NE(r->output.find("MemoryError"), std::string::npos) << r->output;
}

TEST(EvalSandbox, WritesOnlyInsideItsDirectory) {
  const auto& caps = sandbox_capabilities();
  if (caps.interpreter.empty()) GTEST_SKIP() << "no python3";
  if (caps.landlock_abi == 0) GTEST_SKIP() << "no Landlock on this kernel: writes are not confined";
  const std::string outside = (std::filesystem::temp_directory_path() /
                               ("latent-escape-" + std::to_string(getpid()))).string();
  std::filesystem::remove(outside);
  auto r = run_python_sandboxed("open('inside.txt', 'w').write('ok')\n"
                                "import os\nos.mkdir('sub')\nopen('sub/x', 'w').write('ok')\n"
                                "open('" + outside + "', 'w').write('escaped')\n",
                                quick(120));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, SandboxOutcome::kFailed);
  EXPECT_NE(r->output.find("PermissionError"), std::string::npos) << r->output;
  EXPECT_FALSE(std::filesystem::exists(outside));
  // Deleting outside is refused too: a file the test owns survives.
  std::ofstream(outside) << "keep";
  auto del = run_python_sandboxed("import os\nos.remove('" + outside + "')\n", quick(120));
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->outcome, SandboxOutcome::kFailed) << del->output;
  EXPECT_TRUE(std::filesystem::exists(outside));
  std::filesystem::remove(outside);
}

TEST(EvalSandbox, NoNetwork) {
  const auto& caps = sandbox_capabilities();
  if (caps.interpreter.empty()) GTEST_SKIP() << "no python3";
  if (!caps.network_namespace && caps.landlock_abi < 4) GTEST_SKIP() << "neither namespaces nor Landlock TCP rules";
  // A listening socket on loopback: the sandboxed program must not reach it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const int port = ntohs(a.sin_port);
  auto r = run_python_sandboxed("import socket\ns = socket.create_connection(('127.0.0.1', " + std::to_string(port) +
                                    "), timeout=5)\nprint('connected')\n",
                                quick(120));
  close(fd);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, SandboxOutcome::kFailed) << r->output;
  EXPECT_EQ(r->output.find("connected"), std::string::npos) << r->output;
}

TEST(EvalHumanEval, LoadsTheFixtureAndItsCanonicalSolutionsPass) {
  if (sandbox_capabilities().interpreter.empty()) GTEST_SKIP() << "no python3";
  auto problems = load_infill_problems(kFixture);
  ASSERT_TRUE(problems.ok()) << problems.error().message;
  ASSERT_EQ(problems->size(), 5u);
  InfillOptions o;
  o.canonical = true;
  o.limits = quick(120);
  o.jobs = 2;
  auto results = run_infill(*problems, nullptr, o, nullptr);
  auto summary = infill_summary(results);
  EXPECT_EQ(summary["passed"], 5) << summary.dump(2);
  EXPECT_EQ(summary["pass_at_1"], 1.0);
}

TEST(EvalHumanEval, WrongSolutionsFail) {
  if (sandbox_capabilities().interpreter.empty()) GTEST_SKIP() << "no python3";
  auto problems = load_infill_problems(kFixture);
  ASSERT_TRUE(problems.ok());
  const InfillProblem& p = (*problems)[1];  // truncate_number: return number % 1.0
  auto wrong = run_python_sandboxed(infill_program(p, "    return number\n"), quick(120));
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->outcome, SandboxOutcome::kFailed);
  auto hang = run_python_sandboxed(infill_program(p, "    while True: pass\n"), quick(1));
  ASSERT_TRUE(hang.ok());
  EXPECT_EQ(hang->outcome, SandboxOutcome::kTimeout);
}

TEST(EvalHumanEval, EditorDocumentAndCompletionShape) {
  InfillProblem p;
  p.prompt = "def f(x):\n";
  p.suffix = "    return y\n";
  auto d = infill_document(p);
  EXPECT_EQ(d.text, "def f(x):\n\n    return y\n");
  EXPECT_EQ(d.cursor, p.prompt.size());
  EXPECT_EQ(infill_completion(p, "    y = x\n    z = 1\n", true), "    y = x\n");
  EXPECT_EQ(infill_completion(p, "    y = x\n    z = 1", false), "    y = x\n    z = 1\n");
  EXPECT_EQ(infill_completion(p, "", true), "\n");
}

TEST(EvalHumanEval, BadFilesAreClearErrors) {
  auto missing = load_infill_problems("/nonexistent/problems.jsonl");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/problems.jsonl"), std::string::npos);
  const std::string bad = (std::filesystem::temp_directory_path() / ("latent-bad-" + std::to_string(getpid()))).string();
  std::ofstream(bad) << "{\"task_id\": \"x\"}\n";
  auto r = load_infill_problems(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(":1: expected a string field 'entry_point', found none"), std::string::npos)
      << r.error().message;
  std::ofstream(bad) << "not json\n";
  r = load_infill_problems(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expected a JSON object"), std::string::npos);
  std::filesystem::remove(bad);
  auto suite = infill_suite_file("humaneval-random", "/d");
  ASSERT_FALSE(suite.ok());
  EXPECT_NE(suite.error().message.find("humaneval-single-line"), std::string::npos);
}

TEST(EvalHumanEval, ShippedSuitesLoad) {
  for (auto [suite, n] : {std::pair{"humaneval-single-line", 1033u}, {"humaneval-multi-line", 5815u}}) {
    auto f = infill_suite_file(suite, std::string(LATENT_SOURCE_DIR) + "/bench/data/human-eval-infilling");
    ASSERT_TRUE(f.ok());
    auto p = load_infill_problems(*f);
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(p->size(), n);
  }
}

}  // namespace
}  // namespace latent::eval
