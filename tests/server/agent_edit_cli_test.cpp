// `latent agent-edit` through the built binary: exit 0 and the file edited, or exit 2, {"error": {"code",
// "message"}} on stdout and the file byte-for-byte unchanged (skipped when build/bin/latent is not built).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/lsp/test_files.h"
#include "tests/test_paths.h"

namespace latent {
namespace {

std::string latent_bin() { return std::string(LATENT_BIN_DIR) + "/latent"; }

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Run {
  int exit_code = -1;
  std::string out;
};

Run run(const std::string& args) {
  Run r;
  std::FILE* p = ::popen((latent_bin() + " agent-edit " + args + " 2>/dev/null").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AgentEditCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(latent_bin())) GTEST_SKIP() << latent_bin() << " not built";
  }
  lsp::testing::TempTree tree;
};

constexpr const char* kSource = "class Box:\n    def size(self):\n        return 1\n\n    def name(self):\n        return 'box'\n";

TEST_F(AgentEditCli, AppliesASymbolEdit) {
  std::string f = tree.write("pkg/box.py", kSource);
  auto r = run("--root " + quote(tree.root()) + " --edit " +
               quote(R"({"path":"pkg/box.py","symbol":"Box.size","new":"def size(self):\n        return 2"})"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["range"]["startLine"], 1);
  EXPECT_EQ(slurp(f), "class Box:\n    def size(self):\n        return 2\n\n    def name(self):\n        return 'box'\n");
}

TEST_F(AgentEditCli, RefusalsExitTwoWithACodeAndLeaveTheFile) {
  std::string f = tree.write("box.py", kSource);
  struct Case {
    std::string edit, code;
  } cases[] = {
      {R"({"path":"box.py","old":"return","new":"yield"})", "ambiguous"},
      {R"({"path":"box.py","old":"return 1","new":"return (1"})", "syntax"},
      {R"({"path":"../box.py","old":"return 1","new":"x"})", "path"},
      {R"({"path":"box.py","symbol":"Box.missing","new":"x"})", "not_found"},
      {R"({"path":"box.py","old":"return 1","new":"x","version":"h:0000000000000000"})", "stale"},
      {R"({"path":"box.py","old":"return 1"})", "malformed"},
      {R"(not json)", "malformed"},
  };
  for (const auto& c : cases) {
    auto r = run("--root " + quote(tree.root()) + " --edit " + quote(c.edit));
    EXPECT_EQ(r.exit_code, 2) << c.edit << " -> " << r.out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.out;
    EXPECT_EQ(j["error"]["code"], c.code) << r.out;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
    EXPECT_EQ(slurp(f), kSource) << c.edit;
  }
  auto missing = run("--root " + quote(tree.root()));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(nlohmann::json::parse(missing.out)["error"]["code"], "malformed");
}

TEST_F(AgentEditCli, ReadsTheEditFromStdinOrAFile) {
  std::string f = tree.write("box.py", kSource);
  std::string edit = tree.write("edit.json", R"({"path":"box.py","old":"'box'","new":"'crate'"})");
  auto r = run("--root " + quote(tree.root()) + " --edit @" + quote(edit));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(slurp(f).find("'crate'"), std::string::npos);
  auto s = run("--root " + quote(tree.root()) + " --edit - < " + quote(edit));
  EXPECT_EQ(s.exit_code, 2) << s.out;  // 'box' is gone now
  EXPECT_EQ(nlohmann::json::parse(s.out)["error"]["code"], "not_found");
}

}  // namespace
}  // namespace latent
