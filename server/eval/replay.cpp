#include "server/eval/replay.h"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>

#include "lsp/languages.h"
#include "server/eval/editor_session.h"
#include "server/eval/metrics.h"
#include "server/eval/process.h"

namespace latent::eval {
namespace {

namespace fs = std::filesystem;

std::string trim_git_message(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Result<ProcessResult> git(const std::string& repo, std::vector<std::string> args, size_t max_out = size_t(64) << 20) {
  std::vector<std::string> argv = {"git", "-C", repo, "-c", "core.quotePath=false", "--no-pager"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, max_out);
}

struct Hunk {
  size_t commit = 0;  // index into the commit list
  std::string path;
  uint32_t new_start = 0;  // 1-based
  uint32_t new_count = 0;
  std::vector<std::string> added;  // the added lines, without "+" and newline
};

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

bool wanted(const std::string& path, const std::string& glob) {
  if (!glob.empty()) return fnmatch(glob.c_str(), path.c_str(), 0) == 0;
  return lsp::language_by_path(path) != nullptr;
}

// "@@ -a,b +c,d @@": c and d (d defaults to 1).
bool parse_hunk_header(std::string_view line, uint32_t* start, uint32_t* count) {
  size_t plus = line.find(" +");
  if (plus == std::string_view::npos) return false;
  const char* p = line.data() + plus + 2;
  const char* end = line.data() + line.size();
  char* q = nullptr;
  unsigned long s = std::strtoul(p, &q, 10);
  if (q == p || q > end) return false;
  unsigned long c = 1;
  if (q < end && *q == ',') {
    const char* r = q + 1;
    c = std::strtoul(r, &q, 10);
    if (q == r) return false;
  }
  *start = static_cast<uint32_t>(s);
  *count = static_cast<uint32_t>(c);
  return true;
}

// Parses `git log --format='commit %H' -p -U0` output into hunks with added lines.
void parse_log(const std::string& text, const std::string& glob, std::vector<std::string>* commits,
               std::vector<Hunk>* hunks, ReplayCounts* counts) {
  std::string path;
  bool file_ok = false;
  Hunk* cur = nullptr;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("commit ", 0) == 0) {
      commits->push_back(std::string(line.substr(7)));
      cur = nullptr;
      file_ok = false;
    } else if (line.rfind("diff --git ", 0) == 0) {
      cur = nullptr;
      file_ok = false;
      path.clear();
    } else if (line.rfind("Binary files ", 0) == 0) {
      ++counts->skipped_binary;
    } else if (line.rfind("+++ ", 0) == 0) {
      std::string_view p = line.substr(4);
      if (p == "/dev/null") continue;  // deleted
      if (!p.empty() && p[0] == '"') {
        ++counts->skipped_quoted;
        continue;
      }
      if (p.rfind("b/", 0) == 0) p.remove_prefix(2);
      path = std::string(p);
      file_ok = !commits->empty() && wanted(path, glob);
      if (!file_ok) ++counts->skipped_filtered;
    } else if (line.rfind("@@ ", 0) == 0) {
      cur = nullptr;
      if (!file_ok) continue;
      Hunk h;
      if (!parse_hunk_header(line, &h.new_start, &h.new_count) || h.new_count == 0) continue;
      h.commit = commits->size() - 1;
      h.path = path;
      hunks->push_back(std::move(h));
      cur = &hunks->back();
    } else if (cur && !line.empty() && line[0] == '+') {
      cur->added.emplace_back(line.substr(1));
    }
  }
  // Keep hunks with something to predict.
  std::erase_if(*hunks, [](const Hunk& h) {
    return std::all_of(h.added.begin(), h.added.end(), [](const std::string& l) { return blank(l); });
  });
  counts->commits = commits->size();
  counts->hunks = hunks->size();
}

std::vector<std::string> split_lines(const std::string& text) {  // each with its newline
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string::npos ? text.size() : nl + 1;
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

// The point on line `k` of hunk `h` in `file` (the file as of the commit), or nullopt when the file does not
// hold the hunk where git said (it cannot, short of a bug; counted as filtered).
std::optional<ReplayPoint> make_point(const Hunk& h, size_t k, const std::string& file, size_t max_target_lines) {
  auto lines = split_lines(file);
  const size_t s = h.new_start - 1, e = s + h.new_count, L = s + k;
  if (e > lines.size() || L >= e) return std::nullopt;
  ReplayPoint p;
  p.path = h.path;
  p.line = static_cast<uint32_t>(L);
  const std::string& cur = lines[L];
  size_t ind = cur.find_first_not_of(" \t");
  if (ind == std::string::npos) return std::nullopt;
  p.indent = cur.substr(0, ind);
  for (size_t i = 0; i < L; ++i) p.before += lines[i];
  p.before += p.indent;
  p.after = "\n";
  for (size_t i = e; i < lines.size(); ++i) p.after += lines[i];
  std::string target = cur.substr(ind);
  for (size_t i = L + 1; i < e && i < L + max_target_lines; ++i) target += lines[i];
  while (!target.empty() && (target.back() == '\n' || target.back() == '\r')) target.pop_back();
  p.target = std::move(target);
  return p;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

Result<ReplayPlan> plan_replay(const ReplayOptions& options) {
  ReplayPlan plan;
  std::error_code ec;
  if (options.repo.empty() || !fs::is_directory(options.repo, ec)) {
    return make_error(ErrorCode::kNotFound, "--repo: expected a directory with a git repository, found '" +
                                                options.repo + "' (no such directory)");
  }
  plan.repo = fs::canonical(options.repo, ec).string();
  LATENT_ASSIGN_OR_RETURN(auto top, git(plan.repo, {"rev-parse", "--show-toplevel"}));
  if (top.exit_code != 0) {
    return make_error(ErrorCode::kInvalidArgument, "--repo: expected a git repository, found '" + options.repo +
                                                       "': " + trim_git_message(top.err));
  }
  LATENT_ASSIGN_OR_RETURN(auto head, git(plan.repo, {"rev-parse", "--verify", "--quiet", "HEAD^{commit}"}));
  if (head.exit_code != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--repo: expected a repository with history, found no commits in '" + options.repo + "'");
  }
  if (options.rev.empty() || options.rev[0] == '-') {
    return make_error(ErrorCode::kInvalidArgument, "--rev: expected a revision or range, found '" + options.rev + "'");
  }
  LATENT_ASSIGN_OR_RETURN(auto check, git(plan.repo, {"rev-list", "--max-count=1", options.rev, "--"}));
  if (check.exit_code != 0) {
    return make_error(ErrorCode::kInvalidArgument, "--rev: expected a revision or range git knows, found '" +
                                                       options.rev + "': " + trim_git_message(check.err));
  }
  LATENT_ASSIGN_OR_RETURN(
      auto log, git(plan.repo,
                    {"log", "--no-merges", "--no-color", "--no-renames", "--no-ext-diff", "--format=commit %H", "-p",
                     "-U0", "--max-count=" + std::to_string(options.max_commits), options.rev, "--"},
                    size_t(512) << 20));
  if (log.exit_code != 0) {
    return make_error(ErrorCode::kInvalidArgument, "git log " + options.rev + ": " + trim_git_message(log.err));
  }
  std::vector<std::string> commits;
  std::vector<Hunk> hunks;
  parse_log(log.out, options.files, &commits, &hunks, &plan.counts);
  if (commits.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "--rev: expected commits in '" + options.rev + "', found none");
  }

  // A seeded shuffle of the hunks, one point per hunk (a random non-blank added line), until the limit.
  std::mt19937_64 rng(options.seed);
  std::vector<size_t> order(hunks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::map<std::pair<size_t, std::string>, std::optional<std::string>> files;  // (commit, path) -> text or skip
  for (size_t idx : order) {
    if (plan.points.size() >= options.limit) break;
    const Hunk& h = hunks[idx];
    const std::string& commit = commits[h.commit];
    auto key = std::make_pair(h.commit, h.path);
    auto it = files.find(key);
    if (it == files.end()) {
      std::optional<std::string> text;
      auto size = git(plan.repo, {"cat-file", "-s", commit + ":" + h.path});
      if (size.ok() && size->exit_code == 0) {
        size_t bytes = std::strtoull(size->out.c_str(), nullptr, 10);
        if (bytes > options.max_file_bytes) {
          ++plan.counts.skipped_huge;
        } else if (auto blob = git(plan.repo, {"cat-file", "blob", commit + ":" + h.path}); blob.ok() &&
                                                                                             blob->exit_code == 0) {
          if (blob->out.find('\0') != std::string::npos) {
            ++plan.counts.skipped_binary;
          } else {
            text = std::move(blob->out);
          }
        }
      }
      it = files.emplace(key, std::move(text)).first;
    }
    if (!it->second) continue;
    std::vector<size_t> lines;
    for (size_t k = 0; k < h.added.size(); ++k) {
      if (!blank(h.added[k])) lines.push_back(k);
    }
    size_t k = lines[std::uniform_int_distribution<size_t>(0, lines.size() - 1)(rng)];
    auto p = make_point(h, k, *it->second, options.max_target_lines);
    if (!p) {
      ++plan.counts.skipped_filtered;
      continue;
    }
    p->commit = commit;
    plan.points.push_back(std::move(*p));
  }
  if (plan.points.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "expected added lines to replay in " + options.rev + " (" + std::to_string(commits.size()) +
                          " commits), found none: " + std::to_string(plan.counts.skipped_filtered) +
                          " file changes outside --files or without a grammar, " +
                          std::to_string(plan.counts.skipped_binary) + " binary, " +
                          std::to_string(plan.counts.skipped_huge) + " over the size limit");
  }
  // Commit by commit (each cross-mode tree is extracted once), in the sampled order otherwise.
  std::stable_sort(plan.points.begin(), plan.points.end(),
                   [](const ReplayPoint& a, const ReplayPoint& b) { return a.commit < b.commit; });
  return plan;
}

ReplayScore score_completion(const std::string& completion, const std::string& target) {
  ReplayScore s;
  s.completion = completion;
  s.empty = blank(completion) || completion.find_first_not_of(" \t\r\n") == std::string::npos;
  s.exact = !s.empty && first_line(completion) == first_line(target);
  const size_t n = std::max<size_t>(1, line_count(completion));
  s.chrf = s.empty ? 0.0 : chrf(completion, first_lines(target, n));
  s.accepted = common_prefix(completion, target);
  return s;
}

Result<std::vector<ReplayResult>> run_replay(const ReplayPlan& plan, const ReplayOptions& options,
                                             lsp::CompletionBackend* backend, const lsp::AssistantOptions& assistant,
                                             const Progress& progress) {
  std::string tmpl = (fs::temp_directory_path() / "latent-replay-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) return make_error(ErrorCode::kIo, "cannot create a temporary directory");
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{fs::canonical(tmpl).string()};
  const bool cross = std::find(options.modes.begin(), options.modes.end(), "cross") != options.modes.end();
  EditorSession bare(backend, assistant, "");  // none and file: nothing on disk, nothing kept between calls

  std::vector<ReplayResult> out;
  std::unique_ptr<EditorSession> session;
  std::string tree_commit, tree;
  const size_t total = plan.points.size() * options.modes.size();
  size_t done = 0;
  for (const ReplayPoint& p : plan.points) {
    if (p.commit != tree_commit) {
      session.reset();
      std::error_code ec;
      if (!tree.empty()) fs::remove_all(tree, ec);
      tree_commit = p.commit;
      tree = cleanup.dir + "/" + p.commit.substr(0, 12);
      fs::create_directories(tree, ec);
      if (cross) {
        // The repository as of the commit, for the workspace index.
        const std::string tar = cleanup.dir + "/tree.tar";
        LATENT_ASSIGN_OR_RETURN(auto a, run_process({"git", "-C", plan.repo, "archive", "--format=tar", p.commit},
                                                    0, tar));
        if (a.exit_code != 0) {
          return make_error(ErrorCode::kIo, "git archive " + p.commit + ": " + trim_git_message(a.err));
        }
        LATENT_ASSIGN_OR_RETURN(auto x, run_process({"tar", "-xf", tar, "-C", tree}));
        fs::remove(tar, ec);
        if (x.exit_code != 0) return make_error(ErrorCode::kIo, "tar: " + trim_git_message(x.err));
        session = std::make_unique<EditorSession>(backend, assistant, tree);
      }
    }
    ReplayResult r;
    r.point = p;
    const std::string path = tree + "/" + p.path;
    for (const std::string& mode : options.modes) {
      Result<Suggestion> s = make_error(ErrorCode::kInternal, "unknown mode " + mode);
      if (mode == "none") {
        s = bare.complete(path, p.indent, p.indent.size());
      } else if (mode == "file") {
        s = bare.complete(path, p.before + p.after, p.before.size());
      } else if (mode == "cross") {
        s = session->complete(path, p.before + p.after, p.before.size());
      }
      ReplayScore score;
      if (s.ok()) {
        score = score_completion(s->text, p.target);
        score.milliseconds = s->milliseconds;
        score.prompt_tokens = s->prompt_tokens;
      } else {
        score.error = s.error().message;
      }
      r.scores.push_back(std::move(score));
      if (progress) progress(++done, total, p.path + ":" + std::to_string(p.line + 1) + " " + mode);
    }
    out.push_back(std::move(r));
  }
  return out;
}

nlohmann::json replay_summary(const std::vector<ReplayResult>& results, const ReplayOptions& options) {
  nlohmann::json modes = nlohmann::json::object();
  for (size_t m = 0; m < options.modes.size(); ++m) {
    size_t n = 0, exact = 0, empty = 0, errors = 0, accepted = 0, target_chars = 0, prompt_tokens = 0;
    double chrf_sum = 0;  // empty suggestions score 0; chrf_shown averages over the suggestions shown
    std::vector<double> ms;
    for (const auto& r : results) {
      const ReplayScore& s = r.scores[m];
      ++n;
      target_chars += r.point.target.size();
      if (!s.error.empty()) {
        ++errors;
        continue;
      }
      exact += s.exact;
      empty += s.empty;
      accepted += s.accepted;
      chrf_sum += s.chrf;
      prompt_tokens += s.prompt_tokens;
      ms.push_back(s.milliseconds);
    }
    const double dn = n ? static_cast<double>(n) : 1.0;
    double mean_ms = 0;
    for (double v : ms) mean_ms += v;
    mean_ms = ms.empty() ? 0 : mean_ms / static_cast<double>(ms.size());
    modes[options.modes[m]] = {
        {"samples", n},
        {"exact_match", exact / dn},
        {"exact_count", exact},
        {"chrf", chrf_sum / dn},
        {"chrf_shown", ms.size() > empty ? chrf_sum / static_cast<double>(ms.size() - empty) : 0.0},
        {"accepted_chars", static_cast<double>(accepted) / dn},
        {"accepted_share", target_chars ? static_cast<double>(accepted) / static_cast<double>(target_chars) : 0.0},
        {"empty_rate", empty / dn},
        {"errors", errors},
        {"prompt_tokens", ms.empty() ? 0.0 : static_cast<double>(prompt_tokens) / static_cast<double>(ms.size())},
        {"latency_ms", {{"mean", mean_ms}, {"p50", percentile(ms, 0.5)}, {"p90", percentile(ms, 0.9)}}},
    };
  }
  nlohmann::json samples = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json by_mode = nlohmann::json::object();
    for (size_t m = 0; m < options.modes.size(); ++m) {
      const ReplayScore& s = r.scores[m];
      by_mode[options.modes[m]] = {{"completion", s.completion}, {"exact", s.exact}, {"chrf", s.chrf},
                                   {"accepted", s.accepted},     {"empty", s.empty}, {"ms", s.milliseconds},
                                   {"prompt_tokens", s.prompt_tokens}, {"error", s.error}};
    }
    samples.push_back({{"commit", r.point.commit}, {"path", r.point.path}, {"line", r.point.line + 1},
                       {"target", r.point.target}, {"modes", by_mode}});
  }
  return {{"modes", modes}, {"samples", samples}};
}

}  // namespace latent::eval
