#pragma once
// The prompt format of the DeepSeek-Coder family: repo-level fill-in-the-middle, other files first, each
// under a path comment, then the current file with the hole at the cursor:
//   <｜fim▁begin｜># utils.py\n<text>\n# main.py\n<prefix><｜fim▁hole｜><suffix><｜fim▁end｜>
// This is the one place that spells the special tokens; when the tokenizer library grows a prompt-format
// function this file should call it.
#include <string>
#include <string_view>
#include <vector>

namespace latent::lsp {

inline constexpr std::string_view kFimBegin = "<｜fim▁begin｜>";
inline constexpr std::string_view kFimHole = "<｜fim▁hole｜>";
inline constexpr std::string_view kFimEnd = "<｜fim▁end｜>";

struct FimFile {
  std::string path;       // relative to the workspace root when known
  std::string language_id;
  std::string text;       // the chunks chosen from that file, joined
};

// The line-comment leader for a language ("#" for Python and shell, "//" otherwise).
std::string_view comment_leader(std::string_view language_id);

std::string render_fim(const std::vector<FimFile>& context_files, const FimFile& current_header,
                       std::string_view prefix, std::string_view suffix);

}  // namespace latent::lsp
