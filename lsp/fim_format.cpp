#include "lsp/fim_format.h"

namespace latent::lsp {

std::string_view comment_leader(std::string_view language_id) {
  if (language_id == "python" || language_id == "shellscript" || language_id.empty()) return "#";
  return "//";
}

std::string render_fim(const std::vector<FimFile>& context_files, const FimFile& current_header,
                       std::string_view prefix, std::string_view suffix) {
  std::string out(kFimBegin);
  for (const auto& f : context_files) {
    out += comment_leader(f.language_id);
    out += ' ';
    out += f.path;
    out += '\n';
    out += f.text;
    if (!f.text.empty() && f.text.back() != '\n') out += '\n';
  }
  out += comment_leader(current_header.language_id);
  out += ' ';
  out += current_header.path;
  out += '\n';
  out += current_header.text;  // imports and scope headers from outside the window, when any
  if (!current_header.text.empty() && current_header.text.back() != '\n') out += '\n';
  out += prefix;
  out += kFimHole;
  out += suffix;
  out += kFimEnd;
  return out;
}

}  // namespace latent::lsp
