#pragma once
// Running untrusted benchmark code (a model's completion inside a HumanEval program) in a subprocess:
//   - a temporary directory is its working directory, HOME and TMPDIR, and (with Landlock) the only place it
//     may create, write, truncate or delete files (/dev/null aside);
//   - no network: a new user + network namespace (only a loopback that is down); where namespaces are refused,
//     Landlock's TCP rules (bind/connect denied); where neither exists, a warning says so;
//   - limits: wall time (the process group is killed), CPU seconds, address space, file size, processes;
//   - stdin is /dev/null, stdout and stderr go to a file of which the tail is kept.
// What the machine offers is probed once (SandboxCapabilities) and reported with every run's summary.
//
// Thread-safety: run() may be called from several threads; the child is set up with syscalls only (fork in a
// threaded process), everything else is prepared before the fork.
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "kernels/base/result.h"

namespace latent::eval {

struct SandboxLimits {
  std::chrono::milliseconds wall{15000};
  int cpu_seconds = 10;
  size_t memory_bytes = size_t(1) << 30;  // RLIMIT_AS
  size_t file_bytes = size_t(16) << 20;   // RLIMIT_FSIZE: the largest file it may write
  size_t output_tail = 4096;              // bytes of stdout+stderr kept in the result
};

struct SandboxCapabilities {
  bool network_namespace = false;  // unshare(CLONE_NEWUSER | CLONE_NEWNET) works here
  int landlock_abi = 0;            // 0: no Landlock (writes are not confined to the temporary directory)
  std::string interpreter;         // python3 found on PATH, absolute; empty: none
  std::vector<std::string> warnings;  // what is not isolated, in words
};

// Probes once (forks a child that tries the namespaces) and caches the answer.
const SandboxCapabilities& sandbox_capabilities();

enum class SandboxOutcome { kPassed, kFailed, kTimeout };
const char* sandbox_outcome_name(SandboxOutcome o);  // "passed", "failed", "timeout"

struct SandboxResult {
  SandboxOutcome outcome = SandboxOutcome::kFailed;
  int exit_code = -1;   // when it exited
  int signal = 0;       // when a signal ended it (SIGKILL at the wall limit, SIGXCPU at the CPU limit)
  double milliseconds = 0;
  std::string output;   // the tail of stdout + stderr
};

// Runs `program` with python3 (-I -B) in a fresh temporary directory (removed afterwards). Passed = exit 0
// within the limits. Errors: no python3, no temporary directory, fork failure.
Result<SandboxResult> run_python_sandboxed(const std::string& program, const SandboxLimits& limits = {});

}  // namespace latent::eval
