#pragma once
// Definitions addressed by qualified name, for edits and the agent's find_symbol: `Outer.inner` (or
// `Outer::inner`) names `inner` defined inside `Outer`. A definition's range runs from its first character to
// its last, decorators and attributes included (Python's decorated_definition, Rust's #[...] items, a
// decorated `export` statement in TypeScript).
//
// Thread-safety: free functions; the tree is only read.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lsp/languages.h"
#include "lsp/symbols.h"

struct TSTree;

namespace latent::lsp::agent {

struct SymbolTarget {
  std::vector<std::string> parts;  // {"Outer", "inner"}: the enclosing definitions' names, then its own
  std::string qualified;           // "Outer.inner"
  SymbolKind kind = SymbolKind::kFunction;
  uint32_t start_byte = 0;  // decorators included
  uint32_t end_byte = 0;
  uint32_t line = 0;        // 0-based, of start_byte
  uint32_t end_line = 0;
};

// Every definition the language's symbol query finds, in file order.
std::vector<SymbolTarget> symbol_targets(const LanguageInfo& language, const TSTree* tree, std::string_view text);

// The same for a text that is not parsed yet (it is parsed here, on this thread).
std::vector<SymbolTarget> symbol_targets(const LanguageInfo& language, std::string_view text);

// "Outer.inner" / "Outer::inner" -> {"Outer", "inner"}; empty parts (a leading '.', "a..b") give {}.
std::vector<std::string> split_qualified(std::string_view name);

// The targets whose qualified name ends with `parts` (so `inner` finds Outer.inner when it is the only one).
std::vector<const SymbolTarget*> match_symbol(const std::vector<SymbolTarget>& targets,
                                              const std::vector<std::string>& parts);

// ERROR and MISSING nodes in the tree (0 for a clean parse).
int count_syntax_errors(const TSTree* tree);

}  // namespace latent::lsp::agent
