// latent eval: offline evaluation of the editor's completions (docs/evaluation.md).
//   latent eval infill --suite humaneval-single-line|humaneval-multi-line [--model DIR] [--limit N] [--out DIR]
//   latent eval replay --repo PATH [--model DIR] [--rev RANGE] [--files GLOB] [--limit N] --out DIR
// Both ask for completions through the same AssistantCore latentd serves editors with (server/eval).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kernels/base/log.h"
#include "server/args.h"
#include "server/cli/command.h"
#include "server/cli/eval_common.h"
#include "server/eval/infill.h"
#include "server/eval/progress.h"

namespace latent::cli {
namespace {

std::vector<OptionSpec> infill_options() {
  std::vector<OptionSpec> o = {
      {"suite", "NAME", "humaneval-single-line or humaneval-multi-line", "humaneval-single-line"},
      {"data", "FILE", "problems file (.jsonl or .jsonl.gz) instead of the suite's shipped one", ""},
      {"limit", "N", "only the first N problems (0: all)", "0"},
      {"canonical", "", "check the benchmark's own solutions instead of the model's (the harness must pass them all)",
       ""},
      {"timeout-s", "N", "wall-time limit per program, in seconds", "15"},
      {"memory-mb", "N", "address-space limit per program", "1024"},
      {"jobs", "N", "programs checked at once (after all completions)", "2"},
  };
  for (auto& s : model_option_specs()) o.push_back(s);
  o.push_back({"out", "DIR", "write infill.json there", ""});
  o.push_back({"help", "", "print this help and exit", ""});
  return o;
}

int run_infill(int argc, char** argv) {
  const auto specs = infill_options();
  auto args = Args::parse(argc, argv, 3, specs);
  if (!args.ok()) {
    std::fprintf(stderr, "latent eval infill: %s\n", args.error().message.c_str());
    return 2;
  }
  if (args->has("help") || !args->positional().empty()) {
    std::printf("%s", format_help("latent eval infill --suite humaneval-single-line [--model DIR] [--limit N]",
                                  "HumanEval infilling (Bavarian et al. 2022): each hole completed as the editor "
                                  "would, each program run in a sandbox; prints pass@1.",
                                  specs)
                          .c_str());
    return args->has("help") ? 0 : 2;
  }
  std::string file = args->get("data");
  const std::string suite = args->get("suite", "humaneval-single-line");
  if (file.empty()) {
    auto f = eval::infill_suite_file(suite, LATENT_EVAL_DATA_DIR);
    if (!f.ok()) {
      std::fprintf(stderr, "latent eval infill: %s\n", f.error().message.c_str());
      return 2;
    }
    file = *f;
  } else if (suite != "humaneval-single-line" && suite != "humaneval-multi-line") {
    std::fprintf(stderr, "latent eval infill: --suite: expected humaneval-single-line or humaneval-multi-line, "
                         "found '%s'\n", suite.c_str());
    return 2;
  }
  auto limit = args->get_int("limit", 0);
  auto timeout = args->get_int("timeout-s", 15);
  auto memory = args->get_int("memory-mb", 1024);
  auto jobs = args->get_int("jobs", 2);
  if (!limit.ok() || *limit < 0 || !timeout.ok() || *timeout <= 0 || !memory.ok() || *memory < 64 || !jobs.ok() ||
      *jobs < 1 || *jobs > 64) {
    std::fprintf(stderr, "latent eval infill: expected --limit >= 0, --timeout-s >= 1, --memory-mb >= 64 and "
                         "--jobs in 1..64\n");
    return 2;
  }
  auto problems = eval::load_infill_problems(file);
  if (!problems.ok()) {
    std::fprintf(stderr, "latent eval infill: %s\n", problems.error().message.c_str());
    return 1;
  }
  if (*limit > 0 && problems->size() > static_cast<size_t>(*limit)) problems->resize(static_cast<size_t>(*limit));

  const auto& caps = eval::sandbox_capabilities();
  for (const auto& w : caps.warnings) std::fprintf(stderr, "latent eval infill: sandbox warning: %s\n", w.c_str());
  if (caps.interpreter.empty()) {
    std::fprintf(stderr, "latent eval infill: expected python3 on PATH to run the benchmark's tests, found none\n");
    return 1;
  }
  eval::InfillOptions options;
  options.single_line = suite == "humaneval-single-line";
  options.canonical = args->has("canonical");
  options.limits.wall = std::chrono::seconds(*timeout);
  options.limits.cpu_seconds = static_cast<int>(*timeout);
  options.limits.memory_bytes = static_cast<size_t>(*memory) << 20;
  options.jobs = static_cast<size_t>(*jobs);

  std::optional<LoadedModel> model;
  std::unique_ptr<eval::EditorSession> session;
  if (!options.canonical) {
    auto m = load_model(*args, "latent eval infill");
    if (!m.ok()) {
      std::fprintf(stderr, "latent eval infill: %s\n", m.error().message.c_str());
      return 1;
    }
    model.emplace(std::move(*m));
    session = std::make_unique<eval::EditorSession>(model->backend.get(), model->assistant, "");
  }
  eval::ProgressBar bar("infill");
  auto results = eval::run_infill(*problems, session.get(), options,
                                  [&](size_t d, size_t t, const std::string& w) { bar.update(d, t, w); });
  bar.update(results.size(), results.size(), "");
  nlohmann::json summary = eval::infill_summary(results);
  nlohmann::json out = {{"suite", suite},
                        {"data", file},
                        {"model", options.canonical ? "canonical solutions" : model->describe},
                        {"settings", options.canonical ? nlohmann::json::object() : model->settings_json()},
                        {"sandbox", sandbox_json()}};
  out.update(summary);
  if (args->has("out")) {
    auto st = write_text_file(args->get("out"), "infill.json", out.dump(2, ' ', false,
                                                                          nlohmann::json::error_handler_t::replace));
    if (!st.ok()) {
      std::fprintf(stderr, "latent eval infill: %s\n", st.error().message.c_str());
      return 1;
    }
  }
  std::printf("%s: pass@1 %.4f (%zu of %zu passed; %zu failed, %zu timed out, %zu errors; %zu empty completions)\n",
              suite.c_str(), summary["pass_at_1"].get<double>(), summary["passed"].get<size_t>(),
              summary["problems"].get<size_t>(), summary["failed"].get<size_t>(), summary["timeout"].get<size_t>(),
              summary["errors"].get<size_t>(), summary["empty"].get<size_t>());
  return summary["errors"].get<size_t>() == results.size() && !results.empty() ? 1 : 0;
}

int run_eval(int argc, char** argv) {
  // The engine's and the index's info lines would interleave with the progress bar: warnings only, unless
  // LATENT_LOG asks for more.
  if (const char* env = std::getenv("LATENT_LOG"); !env || !*env) set_log_level(LogLevel::kWarn);
  const std::string sub = argc > 2 ? argv[2] : "";
  if (sub == "infill") return run_infill(argc, argv);
  if (sub == "replay") return run_replay(argc, argv);
  const bool help = sub == "--help" || sub == "-h" || sub == "help";
  std::FILE* f = help ? stdout : stderr;
  if (!help) std::fprintf(f, "latent eval: expected a subcommand, infill or replay, found '%s'\n\n", sub.c_str());
  std::fprintf(f,
               "usage: latent eval infill --suite humaneval-single-line|humaneval-multi-line [--model DIR] [--limit N]\n"
               "       latent eval replay --repo PATH [--model DIR] [--rev RANGE] [--files GLOB] [--limit N] --out DIR\n"
               "  latent eval infill --help, latent eval replay --help: their options (docs/evaluation.md)\n");
  return help ? 0 : 2;
}

const CommandRegistration kReg{"eval", "offline evaluation: HumanEval infilling, replay of a git history",
                               run_eval};

}  // namespace
}  // namespace latent::cli
