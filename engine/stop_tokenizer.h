#pragma once
// The real tokenizer as a TokenTextSource: text deltas and text stops for requests that carry one.
#include <memory>

#include "engine/stop.h"
#include "engine/tokenizer/tokenizer.h"

namespace latent {

// Shares ownership of the tokenizer so that it outlives every request that uses it.
std::shared_ptr<const TokenTextSource> token_text_source(std::shared_ptr<const Tokenizer> tokenizer,
                                                         bool skip_special_tokens = true);

}  // namespace latent
