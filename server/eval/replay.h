#pragma once
// `latent eval replay`: the history of a git repository as a completion benchmark. Every commit's added lines
// (git log -p -U0) are candidate cursor points; a seeded sample of them is replayed. At a point on line L of an
// added hunk, the editor's buffer is the file as of that commit up to L's indentation (the cursor), an empty
// rest of the line, and the file after the hunk: the author is about to write line L and the rest of the hunk,
// which is the target. Each point is completed under three context settings:
//   none:  the buffer holds only the cursor's indentation (no code before or after it),
//   file:  the buffer above, no workspace (the context builder sees this file only),
//   cross: the buffer above, and the repository as of the commit (git archive) as the workspace folder, so
//          definitions come from the other files as they were then.
// Skipped and counted: binary files, files over max_file_bytes, paths git quotes, deleted files, files without
// a grammar (unless --files names them).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lsp/assistant_core.h"
#include "lsp/completion_backend.h"
#include "server/eval/infill.h"

namespace latent::eval {

struct ReplayOptions {
  std::string repo;
  std::string rev = "HEAD";       // a revision range for git log ("v1..HEAD", "HEAD~50..")
  std::string files;              // fnmatch glob on the path ("*.py", "src/*"); empty: files with a grammar
  size_t limit = 100;             // points to replay
  size_t max_commits = 2000;      // commits of the range to read
  size_t max_file_bytes = 256 << 10;
  size_t max_target_lines = 8;    // the target: the rest of the hunk from the cursor, at most this many lines
  uint64_t seed = 1;
  std::vector<std::string> modes = {"none", "file", "cross"};
};

struct ReplayPoint {
  std::string commit;
  std::string path;     // relative to the repository
  uint32_t line = 0;    // 0-based, in the file as of the commit
  std::string before;   // buffer up to the cursor (ends with the line's indentation)
  std::string after;    // buffer after the cursor ("\n" + the file after the hunk)
  std::string indent;
  std::string target;   // what the author wrote from the cursor on
};

struct ReplayCounts {
  size_t commits = 0;          // read from the range
  size_t hunks = 0;            // with an added non-blank line, in a file that qualifies
  size_t skipped_binary = 0;
  size_t skipped_huge = 0;
  size_t skipped_quoted = 0;   // paths git quotes (control characters, quotes)
  size_t skipped_filtered = 0; // file changes outside --files (or without a grammar)
};

struct ReplayPlan {
  std::string repo;  // absolute
  std::vector<ReplayPoint> points;
  ReplayCounts counts;
};

// Checks the repository and range (clear errors: not a repository, no commits, a revision git does not know),
// reads the history and samples the points.
Result<ReplayPlan> plan_replay(const ReplayOptions& options);

struct ReplayScore {
  std::string completion;
  std::string error;        // the completion failed (counted apart; scores 0)
  bool exact = false;       // first line == the target's first line (trailing blanks aside)
  double chrf = 0;          // vs the target cut to as many lines as the completion has (at least 1)
  size_t accepted = 0;      // common prefix with the target, bytes
  bool empty = false;       // nothing but blanks suggested
  double milliseconds = 0;
  size_t prompt_tokens = 0;
};
ReplayScore score_completion(const std::string& completion, const std::string& target);

struct ReplayResult {
  ReplayPoint point;
  std::vector<ReplayScore> scores;  // one per options.modes
};

// Replays every point in every mode through EditorSessions on `backend` with `assistant` (latentd's options).
// Errors only when a commit's tree cannot be extracted for the cross mode.
Result<std::vector<ReplayResult>> run_replay(const ReplayPlan& plan, const ReplayOptions& options,
                                             lsp::CompletionBackend* backend, const lsp::AssistantOptions& assistant,
                                             const Progress& progress);

// {"modes": {mode: {samples, exact_match, chrf (empty suggestions score 0), chrf_shown (over the non-empty ones),
//  accepted_chars, accepted_share, empty_rate, errors,
//  latency_ms: {mean, p50, p90}}}, "samples": [...]}
nlohmann::json replay_summary(const std::vector<ReplayResult>& results, const ReplayOptions& options);

}  // namespace latent::eval
