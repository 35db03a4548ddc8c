#pragma once
// HumanEval infilling problems (Bavarian et al. 2022, github.com/openai/human-eval-infilling, MIT): JSON lines,
// gzip-compressed or not, each {task_id, entry_point, prompt, suffix, canonical_solution, test}. The hole lies
// between `prompt` and `suffix`; a completion passes when prompt + completion + suffix + test + check() exits 0.
#include <string>
#include <vector>

#include "kernels/base/result.h"

namespace latent::eval {

struct InfillProblem {
  std::string task_id;
  std::string entry_point;
  std::string prompt;
  std::string suffix;
  std::string canonical_solution;
  std::string test;
};

// Reads a .jsonl or .jsonl.gz file. Errors name the file and the line (a missing field, a line that is not JSON).
Result<std::vector<InfillProblem>> load_infill_problems(const std::string& path);

// The program the sandbox runs, as the benchmark's own harness builds it (execution.py).
std::string infill_program(const InfillProblem& p, const std::string& completion);

// The suite's file under `data_dir` ("humaneval-single-line" or "humaneval-multi-line"); an error lists the suites.
Result<std::string> infill_suite_file(const std::string& suite, const std::string& data_dir);

}  // namespace latent::eval
