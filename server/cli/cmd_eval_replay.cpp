// latent eval replay: the editor's completions replayed over a git history (server/eval/replay.h).
#include <cstdio>
#include <optional>
#include <ctime>
#include <fstream>
#include <sstream>

#include "server/cli/eval_common.h"
#include "server/eval/http_backend.h"
#include "server/eval/progress.h"
#include "server/eval/replay.h"
#include "server/eval/report.h"

namespace latent::cli {
namespace {

std::vector<OptionSpec> replay_options() {
  std::vector<OptionSpec> o = {
      {"repo", "PATH", "the git repository to replay", ""},
      {"rev", "RANGE", "revisions, as git log takes them (HEAD~100.., v1..v2)", "HEAD"},
      {"files", "GLOB", "only paths matching GLOB (fnmatch, '*' crosses '/'); default: files with a grammar", ""},
      {"limit", "N", "cursor points to replay (one per sampled hunk)", "100"},
      {"max-commits", "N", "most commits of the range to read", "2000"},
      {"max-file-kb", "N", "skip (and count) files bigger than this", "256"},
      {"seed", "N", "sampling seed", "1"},
      {"modes", "LIST", "context settings, comma-separated: none, file, cross", "none,file,cross"},
  };
  for (auto& s : model_option_specs()) o.push_back(s);
  o.push_back({"server", "URL", "measure a running latentd (http://HOST:PORT) instead of loading --model", ""});
  o.push_back({"token-file", "FILE", "bearer token for --server (as latentd --token-file)", ""});
  o.push_back({"out", "DIR", "write replay.json and report.html there (required)", ""});
  o.push_back({"help", "", "print this help and exit", ""});
  return o;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

}  // namespace

int run_replay(int argc, char** argv) {
  const auto specs = replay_options();
  auto args = Args::parse(argc, argv, 3, specs);
  if (!args.ok()) {
    std::fprintf(stderr, "latent eval replay: %s\n", args.error().message.c_str());
    return 2;
  }
  if (args->has("help") || !args->positional().empty() || !args->has("repo") || !args->has("out")) {
    if (!args->has("help")) std::fprintf(stderr, "latent eval replay: expected --repo PATH and --out DIR\n");
    std::printf("%s", format_help("latent eval replay --repo PATH [--model DIR | --server URL] [--rev RANGE] [--files GLOB] "
                                  "[--limit N] --out DIR",
                                  "Replays a repository's history: at sampled points of added lines, asks for the "
                                  "completion the editor would show and compares it with what the author wrote, "
                                  "without context, with the file, and with the file and the repository.",
                                  specs)
                          .c_str());
    return args->has("help") ? 0 : 2;
  }
  eval::ReplayOptions options;
  options.repo = args->get("repo");
  options.rev = args->get("rev", "HEAD");
  options.files = args->get("files");
  auto limit = args->get_int("limit", 100);
  auto max_commits = args->get_int("max-commits", 2000);
  auto max_kb = args->get_int("max-file-kb", 256);
  auto seed = args->get_int("seed", 1);
  if (!limit.ok() || *limit <= 0 || !max_commits.ok() || *max_commits <= 0 || !max_kb.ok() || *max_kb <= 0 ||
      !seed.ok() || *seed < 0) {
    std::fprintf(stderr, "latent eval replay: expected positive numbers for --limit, --max-commits, --max-file-kb "
                         "and a seed >= 0\n");
    return 2;
  }
  options.limit = static_cast<size_t>(*limit);
  options.max_commits = static_cast<size_t>(*max_commits);
  options.max_file_bytes = static_cast<size_t>(*max_kb) << 10;
  options.seed = static_cast<uint64_t>(*seed);
  options.modes.clear();
  std::stringstream ms(args->get("modes", "none,file,cross"));
  for (std::string m; std::getline(ms, m, ',');) {
    if (m != "none" && m != "file" && m != "cross") {
      std::fprintf(stderr, "latent eval replay: --modes: expected none, file or cross, found '%s'\n", m.c_str());
      return 2;
    }
    options.modes.push_back(m);
  }
  if (options.modes.empty()) {
    std::fprintf(stderr, "latent eval replay: --modes: expected at least one of none, file, cross\n");
    return 2;
  }
  // The history first: a bad repository or range is reported before the model loads.
  auto plan = eval::plan_replay(options);
  if (!plan.ok()) {
    std::fprintf(stderr, "latent eval replay: %s\n", plan.error().message.c_str());
    return 1;
  }
  const auto& c = plan->counts;
  std::fprintf(stderr,
               "latent eval replay: %zu points from %zu commits (%zu hunks with added lines; skipped: %zu binary, "
               "%zu over %lld KiB, %zu outside --files, %zu quoted paths)\n",
               plan->points.size(), c.commits, c.hunks, c.skipped_binary, c.skipped_huge,
               static_cast<long long>(*max_kb), c.skipped_filtered, c.skipped_quoted);
  // The completions: a model loaded here, or a running latentd (--server).
  std::optional<LoadedModel> model;
  std::unique_ptr<eval::HttpCompletionBackend> remote;
  lsp::CompletionBackend* backend = nullptr;
  lsp::AssistantOptions assistant;
  std::string describe;
  nlohmann::json settings;
  if (args->has("server")) {
    if (args->has("model")) {
      std::fprintf(stderr, "latent eval replay: expected --model or --server, found both\n");
      return 2;
    }
    auto target = eval::parse_http_url(args->get("server"));
    if (!target.ok()) {
      std::fprintf(stderr, "latent eval replay: %s\n", target.error().message.c_str());
      return 2;
    }
    std::string token;
    if (args->has("token-file")) {
      token = read_file(args->get("token-file"));
      while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
      if (token.empty()) {
        std::fprintf(stderr, "latent eval replay: --token-file: expected a token in %s, found none\n",
                     args->get("token-file").c_str());
        return 2;
      }
    }
    remote = std::make_unique<eval::HttpCompletionBackend>(*target, token);
    auto id = remote->model_id();
    if (!id.ok()) {
      std::fprintf(stderr, "latent eval replay: %s\n", id.error().message.c_str());
      return 1;
    }
    auto budget = args->get_int("context-tokens", 2048);
    auto max_tokens = args->get_int("max-tokens", 128);
    auto budget_ms = args->get_int("completion-budget-ms", 3000);
    if (!budget.ok() || *budget <= 0 || !max_tokens.ok() || *max_tokens <= 0 || !budget_ms.ok() || *budget_ms <= 0) {
      std::fprintf(stderr, "latent eval replay: expected positive --context-tokens, --max-tokens and "
                           "--completion-budget-ms\n");
      return 2;
    }
    assistant = eval::eval_assistant_options(static_cast<size_t>(*budget), static_cast<int>(*max_tokens),
                                             std::chrono::milliseconds(*budget_ms));
    backend = remote.get();
    describe = *id + " via " + remote->describe();
    settings = {{"server", args->get("server")},
                {"context_tokens", assistant.context.budget_tokens},
                {"token_count", "estimate (no tokenizer on this side)"},
                {"max_tokens", assistant.max_tokens},
                {"completion_budget_ms", assistant.time_budget.count()}};
  } else {
    auto m = load_model(*args, "latent eval replay");
    if (!m.ok()) {
      std::fprintf(stderr, "latent eval replay: %s\n", m.error().message.c_str());
      return 1;
    }
    model.emplace(std::move(*m));
    backend = model->backend.get();
    assistant = model->assistant;
    describe = model->describe;
    settings = model->settings_json();
  }
  eval::ProgressBar bar("replay");
  auto results = eval::run_replay(*plan, options, backend, assistant,
                                  [&](size_t d, size_t t, const std::string& w) { bar.update(d, t, w); });
  if (!results.ok()) {
    std::fprintf(stderr, "latent eval replay: %s\n", results.error().message.c_str());
    return 1;
  }
  nlohmann::json report = eval::replay_summary(*results, options);
  report["mode_order"] = options.modes;
  report["repo"] = plan->repo;
  report["rev"] = options.rev;
  report["files"] = options.files;
  report["seed"] = options.seed;
  report["model"] = describe;
  report["settings"] = settings;
  report["counts"] = {{"commits", c.commits},           {"hunks", c.hunks},
                      {"points", plan->points.size()},  {"skipped_binary", c.skipped_binary},
                      {"skipped_huge", c.skipped_huge}, {"skipped_filtered", c.skipped_filtered},
                      {"skipped_quoted", c.skipped_quoted}};
  report["written"] = now_utc();
  const std::string out_dir = args->get("out");
  const char* env_chart = std::getenv("LATENT_CHARTJS");
  const std::string chart_path = env_chart && *env_chart ? env_chart : LATENT_CHARTJS_FILE;
  std::string chartjs = read_file(chart_path);
  if (chartjs.empty()) {
    std::fprintf(stderr, "latent eval replay: Chart.js not found at %s (scripts/setup-web installs it): the report "
                         "has tables only\n", chart_path.c_str());
  }
  auto st = write_text_file(out_dir, "replay.json",
                            report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (st.ok()) st = write_text_file(out_dir, "report.html", eval::replay_report_html(report, chartjs));
  if (!st.ok()) {
    std::fprintf(stderr, "latent eval replay: %s\n", st.error().message.c_str());
    return 1;
  }
  std::printf("%-6s %8s %8s %7s %9s %8s %7s %9s\n", "mode", "samples", "exact%", "chrF", "accepted", "empty%",
              "errors", "p50 ms");
  for (const auto& m : options.modes) {
    const auto& s = report["modes"][m];
    std::printf("%-6s %8zu %8.1f %7.1f %9.1f %8.1f %7zu %9.0f\n", m.c_str(), s["samples"].get<size_t>(),
                100 * s["exact_match"].get<double>(), s["chrf"].get<double>(), s["accepted_chars"].get<double>(),
                100 * s["empty_rate"].get<double>(), s["errors"].get<size_t>(),
                s["latency_ms"]["p50"].get<double>());
  }
  std::printf("wrote %s/replay.json and %s/report.html\n", out_dir.c_str(), out_dir.c_str());
  return 0;
}

}  // namespace latent::cli
