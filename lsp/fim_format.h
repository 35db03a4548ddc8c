#pragma once
// The prompt of a completion in the DeepSeek-Coder family's repository-level fill-in-the-middle format. The
// rendering itself is the tokenizer library's (engine/tokenizer/prompt_format.h: render_fim, and encode_fim,
// which keeps code that contains "<｜fim▁hole｜>" from injecting the token); this file only assembles the
// parts the context builder chose:
//   <｜fim▁begin｜># other.py\n<chunks>\n\n# current.py\n<imports, scope headers><prefix><｜fim▁hole｜><suffix><｜fim▁end｜>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/prompt_format.h"

namespace latent::lsp {

// `context_files`: other files, least relevant first (nearest the cursor = most relevant); `header`: text of
// the current file from outside the window (imports, enclosing scope headers), placed before the prefix.
FimPrompt make_fim(std::vector<FimFile> context_files, std::string path, std::string_view header,
                   std::string_view prefix, std::string_view suffix);

}  // namespace latent::lsp
