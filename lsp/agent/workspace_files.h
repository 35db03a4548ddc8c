#pragma once
// Files the agent may touch: every path is confined to the workspace roots (no `..` component, no symlink
// that leads outside a root, no NUL byte), and every write is atomic (a temporary file in the same directory,
// the original's mode, fsync, rename), so a crash or a refused check never leaves a half-written file.
//
// Thread-safety: free functions without shared state.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/base/result.h"

namespace latent::lsp::agent {

struct ConfinedPath {
  std::string root;      // the canonical root that holds it
  std::string absolute;  // canonical (symlinks resolved; the last component may not exist yet)
  std::string relative;  // '/'-separated, relative to root
};

// Resolves `path` (relative to the first root, or absolute) inside one of `roots`. Errors (kInvalidArgument)
// say what was expected and what was found: "path '../x': expected a path inside the workspace, found a '..'
// component". `roots` need not be canonical.
Result<ConfinedPath> confine_path(const std::vector<std::string>& roots, std::string_view path);

// Reads a regular file (at most `max_bytes`); kNotFound, kInvalidArgument (a directory, too big) or kIo.
Result<std::string> read_text_file(const std::string& absolute, size_t max_bytes = 8u << 20);

// Replaces `absolute` with `content` atomically. When `expected_current` is given, the file is re-read just
// before the rename and the write is abandoned (kCancelled, file untouched) if it changed meanwhile. A new file
// gets mode 0644 (less the umask); an existing one keeps its mode.
Status write_file_atomic(const std::string& absolute, std::string_view content,
                         const std::string* expected_current = nullptr);

// A short, stable fingerprint of a text ("h:" + 16 hex digits of FNV-1a 64), the version of a file that is not
// open in the editor.
std::string content_version(std::string_view text);

}  // namespace latent::lsp::agent
