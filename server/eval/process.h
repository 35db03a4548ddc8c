#pragma once
// Running a helper program (git, tar) without a shell: argv as given, stdout captured up to a limit (or sent to
// a file), stderr captured for the error message. posix_spawn, so it is safe beside the engine's threads.
#include <string>
#include <vector>

#include "kernels/base/result.h"

namespace latent::eval {

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;  // at most 64 KiB
};

// Fails only when the program cannot be started or its stdout exceeds `max_out` bytes; a non-zero exit is a
// result (the caller names what it expected). `stdout_file`: write stdout there instead of capturing it.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, size_t max_out = size_t(64) << 20,
                                  const std::string& stdout_file = "");

}  // namespace latent::eval
