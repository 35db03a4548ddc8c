#pragma once
// The tree-sitter grammars Latent ships, found by LSP languageId or by file extension.
#include <string>
#include <string_view>
#include <vector>

struct TSLanguage;

namespace latent::lsp {

struct LanguageInfo {
  std::string id;                       // LSP languageId: "python", "typescriptreact", ...
  std::vector<std::string> extensions;  // ".py", ".pyi"
  const TSLanguage* (*grammar)();
};

const std::vector<LanguageInfo>& languages();
// nullptr when unknown.
const LanguageInfo* language_by_id(std::string_view language_id);
const LanguageInfo* language_by_path(std::string_view path);

}  // namespace latent::lsp
