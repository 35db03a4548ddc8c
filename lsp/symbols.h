#pragma once
// What tree-sitter tells us about a file's structure: symbol definitions (from one query per language),
// the headers of the scopes around a byte offset, and the import lines.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/base/result.h"
#include "lsp/languages.h"

struct TSTree;
struct TSQuery;

namespace latent::lsp {

enum class SymbolKind { kFunction, kMethod, kClass, kStruct, kInterface, kType, kEnum, kModule };
const char* symbol_kind_name(SymbolKind kind);

struct Symbol {
  std::string name;       // last component: "bar" for "Foo::bar"
  SymbolKind kind = SymbolKind::kFunction;
  std::string path;
  uint32_t line = 0;      // 0-based, of the definition's first line
  uint32_t end_line = 0;
  uint32_t start_byte = 0;
  uint32_t end_byte = 0;
  std::string signature;  // the definition up to its body, on one line ("def add(a, b):")
  std::string preview;    // the definition's first lines as written (at most kPreviewLines, kPreviewBytes)
};
constexpr int kPreviewLines = 12;
constexpr size_t kPreviewBytes = 800;

// The compiled symbol query of a language (nullptr for languages without one, e.g. JSON). Compiled once and
// cached; TSQuery is safe to share between threads (each use takes its own cursor).
const TSQuery* symbol_query(const LanguageInfo& language);
// Compiles every language's query; the error names the language and the offset of the problem.
Status check_symbol_queries();

std::vector<Symbol> extract_symbols(const LanguageInfo& language, const TSTree* tree, std::string_view text,
                                    const std::string& path);

// A scope around the cursor: its header text (up to its body) and where it starts.
struct ScopeHeader {
  uint32_t line = 0;
  uint32_t start_byte = 0;
  std::string text;
};
// Outermost first. A scope is a node with a `body` field (functions, classes, impls, namespaces, ...) whose
// body contains the offset.
std::vector<ScopeHeader> enclosing_scopes(const TSTree* tree, std::string_view text, uint32_t byte_offset);

// Top-level import statements (import, from-import, #include, use, Go/Java imports), in file order.
struct ImportLine {
  uint32_t line = 0;
  uint32_t start_byte = 0;
  uint32_t end_byte = 0;
  std::string text;
};
std::vector<ImportLine> imports(const TSTree* tree, std::string_view text);

// The text of [start, end) up to the first `body` child of the node spanning it, collapsed to one line.
std::string header_text(std::string_view text, uint32_t start_byte, uint32_t body_start_byte);

}  // namespace latent::lsp
