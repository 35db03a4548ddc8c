#pragma once
// `latent eval infill`: each problem's hole is completed through the editor path (EditorSession) and the
// program is checked in the sandbox. The document is what an editor would hold: prompt, an empty line at the
// hole (the cursor at its start), suffix. Single-line suites keep the suggestion's first line, multi-line suites
// all of it; the program is prompt + completion + "\n" + suffix + test, as the benchmark's harness runs it.
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/eval/editor_session.h"
#include "server/eval/humaneval.h"
#include "server/eval/sandbox.h"

namespace latent::eval {

struct InfillOptions {
  bool single_line = true;
  bool canonical = false;  // check the benchmark's own solutions instead of asking the model (harness check)
  SandboxLimits limits;
  size_t jobs = 1;  // programs checked at once
};

struct InfillResult {
  std::string task_id;
  std::string completion;
  std::string outcome;  // passed, failed, timeout, error (the completion or the sandbox failed)
  std::string detail;   // the error, or the tail of the program's output when it did not pass
  double completion_ms = 0;
  double run_ms = 0;
};

// The document and cursor an editor would hold for the problem, and the completion cut to the suite's shape.
struct InfillDocument {
  std::string text;
  size_t cursor = 0;
};
InfillDocument infill_document(const InfillProblem& p);
std::string infill_completion(const InfillProblem& p, const std::string& suggestion, bool single_line);

using Progress = std::function<void(size_t done, size_t total, const std::string& what)>;

// `session` may be null only with options.canonical.
std::vector<InfillResult> run_infill(const std::vector<InfillProblem>& problems, EditorSession* session,
                                     const InfillOptions& options, const Progress& progress);

// {"problems", "passed", "pass_at_1", "failed", "timeout", "errors", "empty", "results": [...]}.
nlohmann::json infill_summary(const std::vector<InfillResult>& results);

}  // namespace latent::eval
