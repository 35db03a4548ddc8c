#pragma once
// Speculator: where draft tokens come from.
//
// Two sources, both deterministic (so Sampler::verify's one-hot rejection rule is lossless):
//  - prompt lookup (n-gram): the longest recent suffix of the sequence (>= min_match tokens) that occurred
//    earlier in the sequence or in the request's context (e.g. the code after the cursor); the tokens that
//    followed it are the draft. Free: no model call.
//  - MTP: the model's own next-next-token module, chained k deep (scheduler.cpp drives the forward_mtp calls
//    because they need the main model's hidden states and the latent cache).
// choose() picks, per step, the draft a sequence will verify; the Scheduler then verifies the drafts of every
// sequence of the batch in the same forward pass as the plain decodes.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/request.h"

namespace latent {

// Prompt-lookup drafts: up to max_draft tokens that followed the most recent earlier occurrence of the
// longest suffix of `sequence` (lengths max_match down to min_match), searched in `sequence` itself, then in
// `context`. Empty when nothing recurs.
std::vector<int32_t> ngram_draft(std::span<const int32_t> sequence, std::span<const int32_t> context,
                                 int max_draft, int min_match = 2, int max_match = 8);

struct DraftStats {
  int drafted = 0;
  int accepted = 0;
};

// For mode kAuto: n-gram drafts when the text recurs (cheap and often long), else MTP when the model has it.
enum class DraftSource { kNone, kMtp, kNgram };
DraftSource choose_draft_source(SpecMode mode, bool model_has_mtp, bool ngram_found);

}  // namespace latent
