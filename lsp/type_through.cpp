#include "lsp/type_through.h"

namespace latent::lsp {

std::optional<std::string> inserted_at(std::string_view before, size_t offset, std::string_view now) {
  if (offset > before.size() || now.size() < before.size()) return std::nullopt;
  const size_t n = now.size() - before.size();
  if (now.compare(0, offset, before.substr(0, offset)) != 0) return std::nullopt;
  if (now.compare(offset + n, std::string_view::npos, before.substr(offset)) != 0) return std::nullopt;
  return std::string(now.substr(offset, n));
}

}  // namespace latent::lsp
