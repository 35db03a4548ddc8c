#include "engine/stop.h"

#include <algorithm>

namespace latent {
namespace {

// The first line of the suffix with text on it, trimmed: what the model writes when it has completed the
// gap and starts repeating the code after the cursor.
std::string suffix_anchor(const std::string& suffix) {
  size_t pos = 0;
  while (pos < suffix.size()) {
    size_t end = suffix.find('\n', pos);
    if (end == std::string::npos) end = suffix.size();
    std::string line = suffix.substr(pos, end - pos);
    size_t b = line.find_first_not_of(" \t\r");
    size_t e = line.find_last_not_of(" \t\r");
    if (b != std::string::npos) {
      line = line.substr(b, e - b + 1);
      // A lone bracket is the block-end rule's business; too short an anchor would stop at random places.
      if (line.size() >= 3) return line;
      return {};
    }
    pos = end + 1;
  }
  return {};
}

}  // namespace

StopChecker::StopChecker(const StopParams& params, const TokenTextSource* text) : params_(params) {
  if (text != nullptr) decoder_ = text->new_decoder();
  for (const auto& s : params_.stop_strings)
    if (!s.empty()) stops_.push_back({s, FinishReason::kStopString});
  std::string anchor = suffix_anchor(params_.suffix_text);
  if (!anchor.empty()) stops_.push_back({anchor, FinishReason::kSuffix});
}

size_t StopChecker::holdback() const {
  size_t hold = 0;
  for (const auto& s : stops_) {
    size_t max_len = std::min(s.needle.size() - 1, pending_.size());
    for (size_t len = max_len; len > hold; --len)
      if (pending_.compare(pending_.size() - len, len, s.needle, 0, len) == 0) {
        hold = len;
        break;
      }
  }
  return hold;
}

std::optional<std::pair<size_t, FinishReason>> StopChecker::find_text_stop() {
  std::optional<std::pair<size_t, FinishReason>> best;
  for (const auto& s : stops_) {
    size_t at = pending_.find(s.needle);
    if (at != std::string::npos && (!best || at < best->first)) best = {{at, s.reason}};
  }
  if (params_.stop_at_block_end) {
    for (; scanned_ < pending_.size(); ++scanned_) {
      char c = pending_[scanned_];
      if (c == '(' || c == '[' || c == '{') ++depth_;
      if (c == ')' || c == ']' || c == '}') {
        if (--depth_ < 0) {
          if (!best || scanned_ < best->first) best = {{scanned_, FinishReason::kBlockEnd}};
          break;
        }
      }
    }
  }
  return best;
}

StopChecker::Outcome StopChecker::push(int32_t token) {
  Outcome out;
  if (done_) {
    out.emit_token = false;
    return out;
  }
  for (int32_t id : params_.stop_token_ids) {
    if (id == token) {
      out.emit_token = false;
      out.text = flush();
      out.finish = FinishReason::kStopToken;
      done_ = true;
      return out;
    }
  }
  ++generated_;
  if (decoder_) {
    pending_ += decoder_->push(token);
    if (auto stop = find_text_stop()) {
      out.text = pending_.substr(0, stop->first);
      text_ += out.text;
      pending_.clear();
      out.finish = stop->second;
      done_ = true;
      return out;
    }
    size_t show = pending_.size() - holdback();
    out.text = pending_.substr(0, show);
    text_ += out.text;
    pending_.erase(0, show);
    scanned_ -= std::min(scanned_, show);
  }
  if (generated_ >= params_.max_tokens) {
    out.text += flush();
    out.finish = FinishReason::kLength;
    done_ = true;
  }
  return out;
}

std::string StopChecker::flush() {
  std::string rest;
  if (decoder_) {
    pending_ += decoder_->finish();
    // The tail may still contain a stop string or close the block; honour it.
    if (auto stop = find_text_stop()) pending_.resize(stop->first);
    rest = pending_;
    pending_.clear();
    text_ += rest;
  }
  return rest;
}

}  // namespace latent
