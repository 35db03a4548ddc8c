#include "lsp/languages.h"

#include <tree_sitter/api.h>

extern "C" {
const TSLanguage* tree_sitter_python();
const TSLanguage* tree_sitter_javascript();
const TSLanguage* tree_sitter_typescript();
const TSLanguage* tree_sitter_tsx();
const TSLanguage* tree_sitter_c();
const TSLanguage* tree_sitter_cpp();
const TSLanguage* tree_sitter_go();
const TSLanguage* tree_sitter_rust();
const TSLanguage* tree_sitter_java();
const TSLanguage* tree_sitter_json();
const TSLanguage* tree_sitter_bash();
}

namespace latent::lsp {

const std::vector<LanguageInfo>& languages() {
  static const std::vector<LanguageInfo> all = {
      {"python", {".py", ".pyi", ".pyw"}, tree_sitter_python},
      {"javascript", {".js", ".mjs", ".cjs", ".jsx"}, tree_sitter_javascript},
      {"javascriptreact", {}, tree_sitter_javascript},
      {"typescript", {".ts", ".mts", ".cts"}, tree_sitter_typescript},
      {"typescriptreact", {".tsx"}, tree_sitter_tsx},
      {"c", {".c", ".h"}, tree_sitter_c},
      {"cpp", {".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".ipp"}, tree_sitter_cpp},
      {"go", {".go"}, tree_sitter_go},
      {"rust", {".rs"}, tree_sitter_rust},
      {"java", {".java"}, tree_sitter_java},
      {"json", {".json", ".jsonc"}, tree_sitter_json},
      {"shellscript", {".sh", ".bash"}, tree_sitter_bash},
  };
  return all;
}

const LanguageInfo* language_by_id(std::string_view language_id) {
  for (const auto& l : languages()) {
    if (l.id == language_id) return &l;
  }
  return nullptr;
}

const LanguageInfo* language_by_path(std::string_view path) {
  auto dot = path.rfind('.');
  auto slash = path.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) return nullptr;
  std::string_view ext = path.substr(dot);
  for (const auto& l : languages()) {
    for (const auto& e : l.extensions) {
      if (e == ext) return &l;
    }
  }
  return nullptr;
}

}  // namespace latent::lsp
