#include "server/eval/infill.h"

#include <atomic>
#include <mutex>
#include <thread>

namespace latent::eval {

InfillDocument infill_document(const InfillProblem& p) {
  InfillDocument d;
  // The hole starts a line (the suites' prompts end with a newline): the editor's cursor sits on an empty line.
  const bool line_start = !p.prompt.empty() && p.prompt.back() == '\n';
  d.text = p.prompt + (line_start ? "\n" : "") + p.suffix;
  d.cursor = p.prompt.size();
  return d;
}

std::string infill_completion(const InfillProblem& p, const std::string& suggestion, bool single_line) {
  std::string c = suggestion;
  if (single_line) {
    size_t nl = c.find('\n');
    if (nl != std::string::npos) c.resize(nl);
  }
  while (!c.empty() && c.back() == '\n') c.pop_back();
  const bool line_start = !p.prompt.empty() && p.prompt.back() == '\n';
  return line_start ? c + "\n" : c;
}

std::vector<InfillResult> run_infill(const std::vector<InfillProblem>& problems, EditorSession* session,
                                     const InfillOptions& options, const Progress& progress) {
  // First every completion, one at a time as an editor asks; then the programs, `jobs` at once.
  const size_t total = problems.size();
  std::vector<InfillResult> out(total);
  for (size_t i = 0; i < total; ++i) {
    const InfillProblem& p = problems[i];
    InfillResult& r = out[i];
    r.task_id = p.task_id;
    if (options.canonical) {
      r.completion = p.canonical_solution;
      continue;
    }
    InfillDocument d = infill_document(p);
    // A path of its own per problem: nothing of one problem is context for another.
    std::string path = "/latent-eval/humaneval/" + std::to_string(i) + "/solution.py";
    auto s = session->complete(path, d.text, d.cursor);
    if (!s.ok()) {
      r.outcome = "error";
      r.detail = "completion: " + s.error().message;
    } else {
      r.completion_ms = s->milliseconds;
      r.completion = infill_completion(p, s->text, options.single_line);
    }
    if (progress) progress(i + 1, 2 * total, "completed " + p.task_id);
  }
  std::atomic<size_t> next{0}, done{0};
  std::mutex progress_mu;
  auto worker = [&] {
    for (size_t i; (i = next++) < total;) {
      InfillResult& r = out[i];
      if (r.outcome != "error") {
        auto run = run_python_sandboxed(infill_program(problems[i], r.completion), options.limits);
        if (!run.ok()) {
          r.outcome = "error";
          r.detail = "sandbox: " + run.error().message;
        } else {
          r.outcome = sandbox_outcome_name(run->outcome);
          r.run_ms = run->milliseconds;
          if (run->outcome != SandboxOutcome::kPassed) r.detail = run->output;
        }
      }
      std::lock_guard<std::mutex> lock(progress_mu);
      if (progress) progress(total + ++done, 2 * total, "checked " + r.task_id);
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::max<size_t>(1, options.jobs); ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return out;
}

nlohmann::json infill_summary(const std::vector<InfillResult>& results) {
  size_t passed = 0, failed = 0, timeout = 0, errors = 0, empty = 0;
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    passed += r.outcome == "passed";
    failed += r.outcome == "failed";
    timeout += r.outcome == "timeout";
    errors += r.outcome == "error";
    empty += r.outcome != "error" && r.completion.find_first_not_of(" \t\n") == std::string::npos;
    rows.push_back({{"task_id", r.task_id}, {"outcome", r.outcome}, {"completion", r.completion},
                    {"detail", r.detail}, {"completion_ms", r.completion_ms}, {"run_ms", r.run_ms}});
  }
  const size_t n = results.size();
  return {{"problems", n},
          {"passed", passed},
          {"pass_at_1", n ? static_cast<double>(passed) / static_cast<double>(n) : 0.0},
          {"failed", failed},
          {"timeout", timeout},
          {"errors", errors},
          {"empty", empty},
          {"results", rows}};
}

}  // namespace latent::eval
