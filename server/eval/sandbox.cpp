#include "server/eval/sandbox.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

namespace latent::eval {
namespace {

namespace fs = std::filesystem;

// Landlock's ABI grows: v4 added network rules (handled_access_net), v6 scopes. Debian 12's header predates
// both, so the attribute struct is spelled out here with the kernel's layout.
struct RulesetAttr {
  uint64_t handled_access_fs = 0;
  uint64_t handled_access_net = 0;
  uint64_t scoped = 0;
};
struct NetPortAttr {
  uint64_t allowed_access;
  uint64_t port;
};
constexpr uint64_t kNetBindTcp = 1ULL << 0;
constexpr uint64_t kNetConnectTcp = 1ULL << 1;
constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;
constexpr uint64_t kScopeSignal = 1ULL << 1;
constexpr uint64_t kFsRefer = 1ULL << 13;
constexpr uint64_t kFsTruncate = 1ULL << 14;

long ll_create(const RulesetAttr* attr, size_t size, uint32_t flags) {
  return syscall(SYS_landlock_create_ruleset, attr, size, flags);
}
long ll_add_rule(int fd, int type, const void* attr) { return syscall(SYS_landlock_add_rule, fd, type, attr, 0); }
long ll_restrict(int fd) { return syscall(SYS_landlock_restrict_self, fd, 0); }

int landlock_abi() {
  long abi = ll_create(nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

// Every right that changes the file system: writing, truncating, creating, removing, linking across dirs.
uint64_t write_rights(int abi) {
  uint64_t r = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
               LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
               LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
               LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2) r |= kFsRefer;
  if (abi >= 3) r |= kFsTruncate;
  return r;
}

// A ruleset (fd) allowing writes only beneath `dir` and to /dev/null, TCP bind/connect nowhere (ABI >= 4),
// no signals or abstract sockets outside the sandbox (ABI >= 6). -1 when Landlock is missing or refuses.
int make_ruleset(int abi, const std::string& dir) {
  if (abi <= 0) return -1;
  RulesetAttr attr;
  attr.handled_access_fs = write_rights(abi);
  size_t size = sizeof(uint64_t);
  if (abi >= 4) {
    attr.handled_access_net = kNetBindTcp | kNetConnectTcp;
    size = 2 * sizeof(uint64_t);
  }
  if (abi >= 6) {
    attr.scoped = kScopeAbstractUnixSocket | kScopeSignal;
    size = sizeof(RulesetAttr);
  }
  int fd = static_cast<int>(ll_create(&attr, size, 0));
  if (fd < 0) return -1;
  auto allow = [&](const char* path, uint64_t rights) {
    int pfd = open(path, O_PATH | O_CLOEXEC);
    if (pfd < 0) return false;
    struct landlock_path_beneath_attr pb = {};
    pb.allowed_access = rights;
    pb.parent_fd = pfd;
    bool ok = ll_add_rule(fd, LANDLOCK_RULE_PATH_BENEATH, &pb) == 0;
    close(pfd);
    return ok;
  };
  uint64_t file_rights = LANDLOCK_ACCESS_FS_WRITE_FILE | (abi >= 3 ? kFsTruncate : 0);
  if (!allow(dir.c_str(), write_rights(abi)) || !allow("/dev/null", file_rights)) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

SandboxCapabilities probe() {
  SandboxCapabilities caps;
  caps.interpreter = find_on_path("python3");
  caps.landlock_abi = landlock_abi();
  pid_t pid = fork();
  if (pid == 0) _exit(unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0 ? 0 : 1);
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid) {
    caps.network_namespace = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  if (caps.interpreter.empty()) caps.warnings.push_back("no python3 on PATH: benchmark programs cannot run");
  if (!caps.network_namespace) {
    caps.warnings.push_back(caps.landlock_abi >= 4
                                ? "no network namespace (unshare refused): TCP bind/connect are denied by Landlock, "
                                  "other sockets (UDP) are not"
                                : "no network namespace (unshare refused) and no Landlock network rules: programs "
                                  "can reach the network");
  }
  if (caps.landlock_abi == 0) {
    caps.warnings.push_back("no Landlock: programs can write wherever this user can (only RLIMIT_FSIZE limits "
                            "file sizes); run the benchmark as an unprivileged user or in a container");
  }
  return caps;
}

void set_limit(int resource, rlim_t value, rlim_t hard = 0) {
  struct rlimit rl = {value, hard ? hard : value};
  setrlimit(resource, &rl);
}

std::string read_tail(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  std::streamoff size = in.tellg();
  std::streamoff start = size > static_cast<std::streamoff>(n) ? size - static_cast<std::streamoff>(n) : 0;
  in.seekg(start);
  std::string out(static_cast<size_t>(size - start), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

// Waits for `pid` until the deadline; true when it ended (status in *status). pidfd + poll where the kernel
// has it, else short waitpid(WNOHANG) polls.
bool wait_until(pid_t pid, std::chrono::steady_clock::time_point deadline, int* status) {
  int pfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) {
      if (pfd >= 0) close(pfd);
      return true;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (pfd >= 0) close(pfd);
      return false;
    }
    if (pfd >= 0) {
      struct pollfd p = {pfd, POLLIN, 0};
      poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    } else {
      usleep(static_cast<useconds_t>(std::min<long long>(left.count(), 20) * 1000));
    }
  }
}

}  // namespace

const SandboxCapabilities& sandbox_capabilities() {
  static const SandboxCapabilities caps = probe();
  return caps;
}

const char* sandbox_outcome_name(SandboxOutcome o) {
  switch (o) {
    case SandboxOutcome::kPassed: return "passed";
    case SandboxOutcome::kFailed: return "failed";
    case SandboxOutcome::kTimeout: return "timeout";
  }
  return "?";
}

Result<SandboxResult> run_python_sandboxed(const std::string& program, const SandboxLimits& limits) {
  const SandboxCapabilities& caps = sandbox_capabilities();
  if (caps.interpreter.empty()) {
    return make_error(ErrorCode::kNotFound, "sandbox: expected python3 on PATH, found none");
  }
  std::string tmpl = (fs::temp_directory_path() / "latent-sandbox-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) {
    return make_error(ErrorCode::kIo, std::string("sandbox: cannot create a temporary directory: ") +
                                          std::strerror(errno));
  }
  const std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};
  const std::string script = dir + "/program.py";
  const std::string out_path = dir + "/output.txt";
  {
    std::ofstream f(script, std::ios::binary);
    f << program;
    if (!f) return make_error(ErrorCode::kIo, "sandbox: cannot write " + script);
  }
  int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out_fd < 0 || null_fd < 0) {
    if (out_fd >= 0) close(out_fd);
    if (null_fd >= 0) close(null_fd);
    return make_error(ErrorCode::kIo, "sandbox: cannot open the output file in " + dir);
  }
  const int ruleset = make_ruleset(caps.landlock_abi, dir);
  const bool netns = caps.network_namespace;

  // Everything the child needs, prepared before the fork.
  std::vector<std::string> args = {caps.interpreter, "-I", "-B", script};
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir,
                                  "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1", "PYTHONHASHSEED=0"};
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const rlim_t mem = static_cast<rlim_t>(limits.memory_bytes);
  const rlim_t fsize = static_cast<rlim_t>(limits.file_bytes);
  const rlim_t cpu = static_cast<rlim_t>(std::max(1, limits.cpu_seconds));

  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(out_fd);
    close(null_fd);
    if (ruleset >= 0) close(ruleset);
    return make_error(ErrorCode::kInternal, std::string("sandbox: fork failed: ") + std::strerror(e));
  }
  if (pid == 0) {
    // The child: syscalls only. Exit 125 means the sandbox could not be set up (never the program's verdict).
    setpgid(0, 0);
    if (netns && unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) _exit(125);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(125);
    if (ruleset >= 0 && ll_restrict(ruleset) != 0) _exit(125);
    set_limit(RLIMIT_AS, mem);
    set_limit(RLIMIT_CPU, cpu, cpu + 1);  // SIGXCPU at the soft limit (a timeout), SIGKILL a second later
    set_limit(RLIMIT_FSIZE, fsize);
    set_limit(RLIMIT_NPROC, 64);
    set_limit(RLIMIT_CORE, 0);
    if (chdir(dir.c_str()) != 0) _exit(125);
    if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) _exit(125);
    execve(argv[0], argv.data(), envp.data());
    _exit(125);
  }
  close(out_fd);
  close(null_fd);
  if (ruleset >= 0) close(ruleset);
  setpgid(pid, pid);  // also from the parent, so that the kill below reaches the group whoever runs first

  SandboxResult result;
  int status = 0;
  const bool ended = wait_until(pid, t0 + limits.wall, &status);
  kill(-pid, SIGKILL);  // the program and anything it started in its group
  if (!ended) {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  result.milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  result.output = read_tail(out_path, limits.output_tail);
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
    if (result.exit_code == 125 && result.output.empty()) {
      return make_error(ErrorCode::kInternal, "sandbox: the child could not set up its limits (exit 125)");
    }
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  if (!ended || result.signal == SIGXCPU || (result.signal == SIGKILL && result.milliseconds >= 1000.0 * cpu)) {
    result.outcome = SandboxOutcome::kTimeout;
  } else {
    result.outcome = result.exit_code == 0 ? SandboxOutcome::kPassed : SandboxOutcome::kFailed;
  }
  return result;
}

}  // namespace latent::eval
