#include "engine/tokenizer/stream_decoder.h"

#include "engine/tokenizer/byte_level.h"

namespace latent {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && std::string_view(s).substr(s.size() - 3) == kReplacement;
}

}  // namespace

std::string StreamDecoder::push(int32_t id) {
  if (tok_.byte_level_decoding()) {
    if (skip_special_ && tok_.is_special(id)) return "";
    pending_ += tok_.token_bytes(id);
    // Same decisions as utf8_lossy() over all bytes, stopping where a character may still be completed.
    std::string out;
    size_t i = 0;
    while (i < pending_.size()) {
      int n = tok::utf8_sequence_at(pending_, i);
      if (n == 0) break;
      if (n > 0) {
        out.append(pending_, i, static_cast<size_t>(n));
        i += static_cast<size_t>(n);
      } else {
        out += kReplacement;
        i += static_cast<size_t>(-n);
      }
    }
    pending_.erase(0, i);
    return out;
  }
  if (prefix_.empty() && !ids_.empty()) {
    std::string p = tok_.decode(ids_, skip_special_);
    if (!ends_with_replacement(p)) {
      prefix_ = std::move(p);
      prefix_index_ = ids_.size();
    }
  }
  ids_.push_back(id);
  std::string text = tok_.decode(ids_, skip_special_);
  if (text.size() <= prefix_.size() || ends_with_replacement(text) || text.compare(0, prefix_.size(), prefix_))
    return "";
  std::string out = text.substr(prefix_.size());
  size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tok_.decode(ids_, skip_special_);
  prefix_index_ = new_prefix_index;
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  if (tok_.byte_level_decoding()) {
    out = tok::utf8_lossy(pending_);
  } else {
    std::string text = tok_.decode(ids_, skip_special_);
    if (text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0)
      out = text.substr(prefix_.size());
  }
  pending_.clear();
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return out;
}

}  // namespace latent
