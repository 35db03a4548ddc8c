// latent eval replay's pieces on a tiny git repository made here: history reading and sampling, bad input,
// the three context settings (with the scripted backend, whose recorded prompts show what each setting saw),
// the metrics and the HTML report.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "lsp/scripted_backend.h"
#include "server/eval/editor_session.h"
#include "server/eval/metrics.h"
#include "server/eval/process.h"
#include "server/eval/replay.h"
#include "server/eval/report.h"

namespace latent::eval {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "latent-replay-test-XXXXXX").string();
    EXPECT_NE(mkdtemp(t.data()), nullptr);
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

void git(const std::string& repo, std::vector<std::string> args) {
  std::vector<std::string> argv = {"git", "-C", repo, "-c", "user.name=Test", "-c", "user.email=test@example.com",
                                   "-c", "commit.gpgsign=false"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_process(argv);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->err;
}

// Three commits: util.py and main.py; main.py's body calls util (and a binary and a big file come along);
// then a change to util.py.
void make_repo(const std::string& repo) {
  fs::create_directories(repo);
  git(repo, {"init", "-q", "-b", "main"});
  write(repo + "/util.py", "def parse_header_line(text):\n    key, value = text.split(\":\", 1)\n"
                           "    return key.strip(), value.strip()\n");
  write(repo + "/main.py", "import util\n\n\ndef main():\n    pass\n");
  git(repo, {"add", "-A"});
  git(repo, {"commit", "-q", "-m", "first"});
  write(repo + "/main.py", "import util\n\n\ndef main(lines):\n    pairs = [util.parse_header_line(l) for l in lines]\n"
                           "    return dict(pairs)\n");
  write(repo + "/data.bin", std::string("\x00\x01\x02 binary\n\x00", 11));
  std::string big = "# generated\n";
  while (big.size() < 6000) big += "VALUE_" + std::to_string(big.size()) + " = 1\n";
  write(repo + "/big.py", big);
  git(repo, {"add", "-A"});
  git(repo, {"commit", "-q", "-m", "second"});
  write(repo + "/util.py", "def parse_header_line(text):\n    key, value = text.split(\":\", 1)\n"
                           "    return key.strip().lower(), value.strip()\n");
  git(repo, {"commit", "-q", "-am", "third"});
}

ReplayOptions options_for(const std::string& repo) {
  ReplayOptions o;
  o.repo = repo;
  o.limit = 100;
  o.max_file_bytes = 4096;
  return o;
}

TEST(EvalReplay, PlansPointsFromTheHistory) {
  TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  make_repo(repo);
  auto plan = plan_replay(options_for(repo));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->counts.commits, 3u);
  EXPECT_GE(plan->counts.skipped_binary, 1u);  // data.bin
  EXPECT_EQ(plan->counts.skipped_huge, 1u);    // big.py, over 4 KiB
  // One point per hunk with added lines: util.py and main.py (first), main.py (second), util.py (third).
  ASSERT_EQ(plan->points.size(), 4u);
  bool saw_call = false;
  for (const auto& p : plan->points) {
    EXPECT_TRUE(p.path == "util.py" || p.path == "main.py") << p.path;
    // The buffer ends at the cursor line's indentation; the target is the author's text from there.
    ASSERT_FALSE(p.target.empty());
    EXPECT_EQ(p.before.substr(p.before.size() - p.indent.size()), p.indent);
    EXPECT_EQ(p.after.substr(0, 1), "\n");
    // The target is not in the buffer (what was written later in the hunk is not there either).
    EXPECT_EQ((p.before + p.after).find(first_line(p.target)), std::string::npos) << p.target;
    saw_call |= p.target.rfind("pairs = [util.parse_header_line(l)", 0) == 0 || p.target == "return dict(pairs)";
  }
  EXPECT_TRUE(saw_call);
  // The same seed, the same points.
  auto again = plan_replay(options_for(repo));
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->points.size(), plan->points.size());
  for (size_t i = 0; i < plan->points.size(); ++i) EXPECT_EQ(again->points[i].target, plan->points[i].target);
}

TEST(EvalReplay, BadRepositoriesAndRangesAreClearErrors) {
  TempDir tmp;
  auto missing = plan_replay(options_for(tmp.path() + "/nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no such directory"), std::string::npos) << missing.error().message;

  fs::create_directories(tmp.path() + "/plain");
  auto plain = plan_replay(options_for(tmp.path() + "/plain"));
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.error().message.find("expected a git repository"), std::string::npos) << plain.error().message;

  const std::string empty = tmp.path() + "/empty";
  fs::create_directories(empty);
  git(empty, {"init", "-q"});
  auto none = plan_replay(options_for(empty));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("found no commits"), std::string::npos) << none.error().message;

  const std::string repo = tmp.path() + "/repo";
  make_repo(repo);
  auto o = options_for(repo);
  o.rev = "no-such-branch";
  auto bad = plan_replay(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("--rev: expected a revision or range git knows, found 'no-such-branch'"),
            std::string::npos)
      << bad.error().message;
  o.rev = "--output=/tmp/x";
  EXPECT_FALSE(plan_replay(o).ok());
  o.rev = "HEAD";
  o.files = "*.rs";
  auto nothing = plan_replay(o);
  ASSERT_FALSE(nothing.ok());
  EXPECT_NE(nothing.error().message.find("found none"), std::string::npos) << nothing.error().message;
}

TEST(EvalReplay, ContextSettingsSeeWhatTheySay) {
  TempDir tmp;
  const std::string repo = tmp.path() + "/repo";
  make_repo(repo);
  auto o = options_for(repo);
  auto plan = plan_replay(o);
  ASSERT_TRUE(plan.ok());
  lsp::ScriptedBackend backend({"return dict(pairs)"}, std::chrono::milliseconds(0));
  auto assistant = eval_assistant_options(1024, 32, std::chrono::milliseconds(60000));
  auto results = run_replay(*plan, o, &backend, assistant, nullptr);
  ASSERT_TRUE(results.ok()) << results.error().message;
  ASSERT_EQ(results->size(), plan->points.size());
  auto jobs = backend.jobs();
  ASSERT_EQ(jobs.size(), 3 * plan->points.size());  // none, file, cross per point, in that order
  bool cross_found_definition = false;
  for (size_t i = 0; i < results->size(); ++i) {
    const ReplayPoint& p = (*results)[i].point;
    const std::string& none = jobs[3 * i].prompt;
    const std::string& file = jobs[3 * i + 1].prompt;
    const std::string& cross = jobs[3 * i + 2].prompt;
    for (const std::string* prompt : {&none, &file, &cross}) {
      EXPECT_EQ(prompt->find(first_line(p.target)), std::string::npos) << "the target leaked into a prompt";
    }
    EXPECT_EQ(none.find("import util"), std::string::npos);
    EXPECT_EQ(none.find("def "), std::string::npos);
    if (p.path == "main.py" && p.before.find("parse_header_line") != std::string::npos) {
      EXPECT_NE(file.find("import util"), std::string::npos);
      EXPECT_EQ(file.find("def parse_header_line"), std::string::npos) << file;
      cross_found_definition |= cross.find("def parse_header_line") != std::string::npos;
    }
  }
  EXPECT_TRUE(cross_found_definition) << "the cross-file setting should bring util.py's definition";
  // The scripted suggestion is exactly right for the point on "return dict(pairs)".
  auto summary = replay_summary(*results, o);
  for (const auto& m : {"none", "file", "cross"}) {
    EXPECT_EQ(summary["modes"][m]["samples"], plan->points.size());
    EXPECT_EQ(summary["modes"][m]["errors"], 0);
    EXPECT_GE(summary["modes"][m]["chrf_shown"].get<double>(), summary["modes"][m]["chrf"].get<double>());
  }
  for (const auto& r : *results) {
    if (r.point.target == "return dict(pairs)") {
      for (const auto& s : r.scores) {
        EXPECT_TRUE(s.exact);
        EXPECT_EQ(s.accepted, r.point.target.size());
        EXPECT_DOUBLE_EQ(s.chrf, 100.0);
      }
    }
  }
}

TEST(EvalMetrics, ChrfPrefixAndLines) {
  EXPECT_DOUBLE_EQ(chrf("return x", "return x"), 100.0);
  EXPECT_DOUBLE_EQ(chrf("return x", "  return   x "), 100.0);  // whitespace does not count
  EXPECT_DOUBLE_EQ(chrf("abc", "xyz"), 0.0);
  EXPECT_DOUBLE_EQ(chrf("", ""), 100.0);
  EXPECT_DOUBLE_EQ(chrf("", "x"), 0.0);
  const double partial = chrf("return dict(pairs)", "return dict(items)");
  EXPECT_GT(partial, 40.0);
  EXPECT_LT(partial, 90.0);
  EXPECT_EQ(common_prefix("return dict(pa", "return dict(pairs)"), 14u);
  EXPECT_EQ(first_line("  a = 1  \nb"), "  a = 1");
  EXPECT_EQ(first_lines("a\nb\nc\n", 2), "a\nb");
  EXPECT_EQ(first_lines("a", 3), "a");
  EXPECT_EQ(line_count("a\nb\n"), 2u);
  EXPECT_EQ(line_count("a\nb"), 2u);
  EXPECT_EQ(line_count(""), 0u);
  auto s = score_completion("x = 1\ny = 2", "x = 1\nz = 3\nw = 4");
  EXPECT_TRUE(s.exact);
  EXPECT_EQ(s.accepted, 6u);
  EXPECT_LT(s.chrf, 100.0);
  auto e = score_completion("  \n", "x = 1");
  EXPECT_TRUE(e.empty);
  EXPECT_FALSE(e.exact);
  EXPECT_EQ(e.chrf, 0.0);
}

TEST(EvalReport, SelfContainedAndEscaped) {
  nlohmann::json r = {{"repo", "/r<script>"},
                      {"modes", {{"file", {{"samples", 1}}}}},
                      {"samples", {{{"target", "</script><b>x</b>"}}}}};
  std::string html = replay_report_html(r, "window.Chart = function(){}; /* </script> */");
  EXPECT_EQ(html.find("</script><b>"), std::string::npos);  // the data cannot end its script element
  EXPECT_EQ(html.find("/* </script> */"), std::string::npos);
  EXPECT_NE(html.find("/r&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos);  // the page may load nothing from anywhere
}

}  // namespace
}  // namespace latent::eval
