#pragma once
// The agent's tools over the workspace: the files on disk (or the editor's live buffer when a file is open),
// the workspace index, and edits checked by edit_checker.h. Every path goes through confine_path.
//   read_file {path, startLine?, endLine?}          1-based, inclusive; returns the text and its version
//   list_files {path?, maxResults?}                 respecting .gitignore
//   search_text {query, path?, maxResults?}         literal text, respecting .gitignore
//   find_symbol {name}                              definitions in the workspace index
//   definition {name}                               the definition's text
//   references {name}                               the identifier's occurrences (textual, word-bounded)
//   edit {path, symbol|old, new, version?}          checked now, applied after the user approves
//   create_file {path, content}                     a new file (refused when it exists)
//   run_command {command, cwd?, timeoutMs?}         run by the editor after the user approves, never here
//
// Thread-safety: run_tool only reads (the document store and the index are thread-safe).
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/chat/deepseek_chat.h"
#include "lsp/agent/edit_checker.h"
#include "lsp/document_store.h"
#include "lsp/workspace_index.h"

namespace latent::lsp::agent {

using Json = nlohmann::json;

struct ToolContext {
  std::vector<std::string> roots;
  const DocumentStore* documents = nullptr;  // live buffers; may be null
  const WorkspaceIndex* index = nullptr;     // may be null
};

// A file's current text: the open buffer when the editor has it, else the disk.
struct FileText {
  std::string absolute, relative, uri;
  std::string text;
  CurrentVersion version;  // number set when open
  bool exists = true;
};
Result<FileText> current_text(const ToolContext& ctx, std::string_view path);

// An edit that passed every check and waits for approval.
struct ProposedEdit {
  std::string relative, absolute, uri;
  bool create = false;
  uint32_t start_byte = 0, end_byte = 0;  // in `before`
  std::string before, after;              // the whole file
  std::string old_text, new_text;         // the target range's text, and what replaces it
  std::string description;
  std::optional<int> editor_version;
};

struct ToolOutput {
  bool ok = true;
  Json result;                          // for the model (as JSON text) and the client
  std::optional<ProposedEdit> edit;     // edit, create_file
  std::optional<Json> command;          // run_command: the request for the client
};

ToolOutput run_tool(const ToolContext& ctx, const std::string& name, const Json& args);

// The tools' names, descriptions and JSON Schemas, for the chat template.
const std::vector<chat::Tool>& tool_definitions();

constexpr int kMaxReadLines = 400;
constexpr int kMaxListed = 500;
constexpr int kMaxMatches = 100;

}  // namespace latent::lsp::agent
