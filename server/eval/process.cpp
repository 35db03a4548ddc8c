#include "server/eval/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace latent::eval {

Result<ProcessResult> run_process(const std::vector<std::string>& args, size_t max_out,
                                  const std::string& stdout_file) {
  if (args.empty()) return make_error(ErrorCode::kInvalidArgument, "run_process: expected a program, found none");
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  if (pipe2(err_pipe, O_CLOEXEC) != 0 || (stdout_file.empty() && pipe2(out_pipe, O_CLOEXEC) != 0)) {
    return make_error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (stdout_file.empty()) {
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  }
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (out_pipe[1] >= 0) close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    close(err_pipe[0]);
    return make_error(ErrorCode::kNotFound, "cannot run " + args[0] + ": " + std::strerror(rc));
  }
  ProcessResult r;
  bool too_big = false;
  std::vector<pollfd> fds;
  if (out_pipe[0] >= 0) fds.push_back({out_pipe[0], POLLIN, 0});
  fds.push_back({err_pipe[0], POLLIN, 0});
  char buf[1 << 16];
  while (!fds.empty()) {
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < fds.size();) {
      if (fds[i].revents == 0) {
        ++i;
        continue;
      }
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds.erase(fds.begin() + static_cast<long>(i));
        continue;
      }
      if (fds[i].fd == out_pipe[0]) {
        if (r.out.size() + static_cast<size_t>(n) > max_out) {
          too_big = true;
          kill(pid, SIGKILL);
        } else {
          r.out.append(buf, static_cast<size_t>(n));
        }
      } else if (r.err.size() < (size_t(64) << 10)) {
        r.err.append(buf, static_cast<size_t>(n));
      }
      ++i;
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (too_big) {
    return make_error(ErrorCode::kResourceExhausted,
                      args[0] + ": expected at most " + std::to_string(max_out >> 20) + " MiB of output, found more");
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return r;
}

}  // namespace latent::eval
