#include "engine/speculator.h"

#include <algorithm>

namespace latent {
namespace {

// Latest start s < limit in `hay` where hay[s, s+n) == needle; -1 if none.
int64_t find_last(std::span<const int32_t> hay, std::span<const int32_t> needle, int64_t limit) {
  const int64_t n = static_cast<int64_t>(needle.size());
  for (int64_t s = std::min<int64_t>(limit, static_cast<int64_t>(hay.size()) - n); s >= 0; --s)
    if (std::equal(needle.begin(), needle.end(), hay.begin() + s)) return s;
  return -1;
}

}  // namespace

std::vector<int32_t> ngram_draft(std::span<const int32_t> sequence, std::span<const int32_t> context,
                                 int max_draft, int min_match, int max_match) {
  std::vector<int32_t> draft;
  const int64_t len = static_cast<int64_t>(sequence.size());
  if (max_draft <= 0 || min_match <= 0) return draft;
  for (int64_t n = std::min<int64_t>(max_match, len - 1); n >= min_match; --n) {
    auto suffix = sequence.subspan(len - n);
    // An earlier occurrence in the sequence must end before the suffix itself starts to overlap it fully.
    int64_t at = find_last(sequence, suffix, len - n - 1);
    if (at >= 0) {
      for (int64_t i = at + n; i < len && static_cast<int>(draft.size()) < max_draft; ++i)
        draft.push_back(sequence[i]);
      return draft;
    }
    at = find_last(context, suffix, static_cast<int64_t>(context.size()));
    if (at >= 0) {
      for (int64_t i = at + n; i < static_cast<int64_t>(context.size()) && static_cast<int>(draft.size()) < max_draft; ++i)
        draft.push_back(context[i]);
      if (!draft.empty()) return draft;
    }
  }
  return draft;
}

DraftSource choose_draft_source(SpecMode mode, bool model_has_mtp, bool ngram_found) {
  switch (mode) {
    case SpecMode::kNone: return DraftSource::kNone;
    case SpecMode::kMtp: return model_has_mtp ? DraftSource::kMtp : DraftSource::kNone;
    case SpecMode::kNgram: return ngram_found ? DraftSource::kNgram : DraftSource::kNone;
    case SpecMode::kAuto:
      if (ngram_found) return DraftSource::kNgram;
      return model_has_mtp ? DraftSource::kMtp : DraftSource::kNone;
  }
  return DraftSource::kNone;
}

}  // namespace latent
