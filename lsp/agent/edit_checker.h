#pragma once
// Edits that cannot lose a line. An edit names its target in one of two ways:
//   {"path", "symbol": "Outer.inner", "new"}  the definition of that symbol (symbol_targets.h) is replaced
//   {"path", "old", "new"}                    `old` must occur exactly once, and is replaced
// plus an optional "version": the editor's document version (a number) or the content version of a file read
// from disk ("h:..." from read_file, workspace_files.h's content_version).
// Before anything is written, every check must pass, or the edit is refused with the check's code and what
// was found:
//   malformed      the request is not an object of those fields
//   path           the path is outside the workspace (or a directory, binary, too big)
//   not_found      the file, the symbol or `old` does not exist
//   ambiguous      the target resolves to more than one range (each is listed)
//   stale          the version is not the current one
//   syntax         the result has more tree-sitter errors than the original
//   outside_range  a byte outside the target range would change (a bug guard: the result is re-verified)
//   too_large      the result would exceed the size limit
//   io             the file could not be read or written
//
// Thread-safety: free functions; apply_edit_json touches only the file it edits.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lsp/languages.h"

namespace latent::lsp::agent {

struct EditRequest {
  std::string path;
  std::string symbol;                   // set for a symbol edit
  std::optional<std::string> old_text;  // set for an old/new edit
  std::string new_text;
  std::optional<int> version_number;    // the editor's document version
  std::optional<std::string> version_hash;  // a content version ("h:...")
};

// The version a document is at now: its editor version when it is open, and always its content version.
struct CurrentVersion {
  std::optional<int> number;
  std::string hash;
};

constexpr size_t kMaxEditResultBytes = 8u << 20;

struct EditOutcome {
  std::string code;     // empty: every check passed
  std::string message;  // the refusal, or a one-line description of what was done
  bool ok() const { return code.empty(); }

  // When ok: the target range of the original and what replaces it.
  std::string path;      // as requested
  uint32_t start_byte = 0, end_byte = 0;
  uint32_t line = 0, end_line = 0;  // 0-based lines of the target range
  std::string new_text;
  std::string result;    // the whole file after the edit
  int errors_before = 0, errors_after = 0;  // -1: the language has no grammar, nothing to parse
};

EditOutcome refuse(std::string code, std::string message);

// {"path", "symbol"|"old", "new", "version"?}; unknown fields are refused so that a typo ("old_text") is not
// silently ignored.
EditOutcome parse_edit_request(const nlohmann::json& j, EditRequest* out);

// Resolves and checks `req` against `text` (the file's current content, `language` its grammar or nullptr).
// Pure: reads nothing else and writes nothing.
EditOutcome check_edit(const EditRequest& req, std::string_view text, const LanguageInfo* language,
                       const CurrentVersion& current);

// The `latent agent-edit` path: parses `json_text`, confines the path to `roots`, reads the file, checks, and
// writes the result atomically. On refusal the file is left byte-for-byte unchanged.
EditOutcome apply_edit_json(const std::vector<std::string>& roots, std::string_view json_text);

// {"error": {"code", "message"}} for a refusal; {"ok": true, "path", "range", ...} otherwise.
nlohmann::json outcome_json(const EditOutcome& outcome);

}  // namespace latent::lsp::agent
