#include "lsp/fim_format.h"

namespace latent::lsp {

FimPrompt make_fim(std::vector<FimFile> context_files, std::string path, std::string_view header,
                   std::string_view prefix, std::string_view suffix) {
  FimPrompt p;
  p.context = std::move(context_files);
  p.path = std::move(path);
  p.prefix = std::string(header);
  if (!p.prefix.empty() && p.prefix.back() != '\n') p.prefix += '\n';
  p.prefix += prefix;
  p.suffix = std::string(suffix);
  return p;
}

}  // namespace latent::lsp
