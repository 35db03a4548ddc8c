#include "lsp/agent/workspace_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace latent::lsp::agent {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxPathBytes = 4096;

Error invalid(std::string_view path, const std::string& found) {
  return make_error(ErrorCode::kInvalidArgument,
                    "path '" + std::string(path.substr(0, 200)) + "': expected a path inside the workspace, found " + found);
}

// `p` lies in `root` (both canonical): root's components are a prefix of p's.
bool inside(const fs::path& root, const fs::path& p) {
  auto r = root.begin(), q = p.begin();
  for (; r != root.end(); ++r, ++q) {
    if (q == p.end() || *r != *q) return false;
  }
  return true;
}

}  // namespace

Result<ConfinedPath> confine_path(const std::vector<std::string>& roots, std::string_view path) {
  if (roots.empty()) return make_error(ErrorCode::kInvalidArgument, "no workspace root is open");
  if (path.empty()) return invalid(path, "an empty path");
  if (path.size() > kMaxPathBytes) return invalid(path, std::to_string(path.size()) + " bytes (at most 4096)");
  if (path.find('\0') != std::string_view::npos) return invalid(path, "a NUL byte");
  for (size_t start = 0; start <= path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (path.substr(start, slash - start) == "..") return invalid(path, "a '..' component");
    start = slash + 1;
  }
  for (const auto& root_text : roots) {
    std::error_code ec;
    fs::path root = fs::canonical(root_text, ec);
    if (ec || !fs::is_directory(root, ec)) continue;
    fs::path candidate = fs::path(path).is_absolute() ? fs::path(path) : root / fs::path(path);
    fs::path resolved = fs::weakly_canonical(candidate, ec);
    if (ec) return invalid(path, "a path that cannot be resolved (" + ec.message() + ")");
    if (!inside(root, resolved)) {
      if (fs::path(path).is_absolute()) continue;  // perhaps under another root
      return invalid(path, "a symlink leading outside it, to '" + resolved.string() + "'");
    }
    // weakly_canonical resolved every symlink that exists; one left is dangling, and creating the file would
    // follow it wherever it points.
    for (fs::path p = resolved; inside(root, p) && p != root; p = p.parent_path()) {
      if (fs::is_symlink(fs::symlink_status(p, ec))) {
        return invalid(path, "a symlink whose target does not exist ('" + p.string() + "')");
      }
    }
    ConfinedPath out;
    out.root = root.string();
    out.absolute = resolved.string();
    out.relative = resolved.lexically_relative(root).generic_string();
    if (out.relative == ".") out.relative.clear();
    return out;
  }
  if (fs::path(path).is_absolute()) return invalid(path, "an absolute path outside every workspace root");
  return make_error(ErrorCode::kNotFound, "workspace root '" + roots.front() + "' does not exist");
}

Result<std::string> read_text_file(const std::string& absolute, size_t max_bytes) {
  std::error_code ec;
  auto st = fs::status(absolute, ec);
  if (ec || !fs::exists(st)) return make_error(ErrorCode::kNotFound, "file '" + absolute + "' does not exist");
  if (!fs::is_regular_file(st)) {
    return make_error(ErrorCode::kInvalidArgument, "'" + absolute + "': expected a regular file, found " +
                                                       (fs::is_directory(st) ? "a directory" : "another kind of file"));
  }
  auto size = fs::file_size(absolute, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot stat '" + absolute + "': " + ec.message());
  if (size > max_bytes) {
    return make_error(ErrorCode::kInvalidArgument, "'" + absolute + "': expected at most " + std::to_string(max_bytes) +
                                                       " bytes, found " + std::to_string(size));
  }
  std::ifstream in(absolute, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot open '" + absolute + "': " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_file_atomic(const std::string& absolute, std::string_view content, const std::string* expected_current) {
  fs::path target(absolute);
  std::string tmpl = (target.parent_path() / ("." + target.filename().string() + ".latent-XXXXXX")).string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) return make_error(ErrorCode::kIo, "cannot create a temporary file next to '" + absolute + "': " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    return make_error(ErrorCode::kIo, what + " '" + tmpl + "': " + std::strerror(err));
  };
  struct stat st {};
  mode_t mode = 0;
  if (::stat(absolute.c_str(), &st) == 0) {
    mode = st.st_mode & 07777;
  } else {
    mode_t mask = ::umask(0);
    ::umask(mask);
    mode = 0644 & ~mask;
  }
  if (::fchmod(fd, mode) != 0) return fail("cannot set the mode of");
  for (size_t done = 0; done < content.size();) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot flush");
  if (::close(fd) != 0) {
    ::unlink(tmpl.c_str());
    return make_error(ErrorCode::kIo, "cannot close '" + tmpl + "': " + std::strerror(errno));
  }
  if (expected_current) {
    auto now = read_text_file(absolute);
    if (!now.ok() || *now != *expected_current) {
      ::unlink(tmpl.c_str());
      return make_error(ErrorCode::kCancelled, "'" + absolute + "' changed on disk while the edit was being checked");
    }
  }
  if (::rename(tmpl.c_str(), absolute.c_str()) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    return make_error(ErrorCode::kIo, "cannot rename '" + tmpl + "' to '" + absolute + "': " + std::strerror(err));
  }
  return Status::Ok();
}

std::string content_version(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[24];
  std::snprintf(buf, sizeof(buf), "h:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace latent::lsp::agent
