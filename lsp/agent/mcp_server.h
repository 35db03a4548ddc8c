#pragma once
// latentd --mcp: the workspace index as a Model Context Protocol server for other agents, over stdio
// (JSON-RPC 2.0, one message per line, as MCP's stdio transport frames it). Tools:
//   find_symbol {name}          where a function, class or type is defined (name or Outer.inner)
//   definition {name}           the definition's text
//   references {name}           word-bounded occurrences of the identifier
//   context_for {file, line}    the context Latent would give a completion at the start of that line (1-based):
//                               enclosing scopes, imports, definitions used nearby, similar snippets
// Paths are confined to the workspace roots (agent_tools.h). No model runs here.
//
// Thread-safety: one thread calls handle()/serve().
#include <iosfwd>
#include <optional>

#include <nlohmann/json.hpp>

#include "kernels/base/result.h"
#include "lsp/assistant_core.h"

namespace latent::lsp::agent {

class McpServer {
 public:
  explicit McpServer(AssistantCore& core, std::string version = "");

  // One message in, the answer out (nullopt for notifications and replies).
  std::optional<nlohmann::json> handle(const nlohmann::json& message);
  // Reads lines from `in` until EOF; writes each answer as one line to `out`.
  Status serve(std::istream& in, std::ostream& out, size_t max_line_bytes = 8u << 20);

 private:
  nlohmann::json call_tool(const std::string& name, const nlohmann::json& args);
  nlohmann::json context_for(const nlohmann::json& args);

  AssistantCore& core_;
  std::string version_;
  bool initialized_ = false;
};

}  // namespace latent::lsp::agent
