#include "engine/request.h"

namespace latent {

const char* priority_name(Priority p) {
  switch (p) {
    case Priority::kInteractive: return "interactive";
    case Priority::kAgent: return "agent";
    case Priority::kBackground: return "background";
  }
  return "?";
}

const char* spec_mode_name(SpecMode m) {
  switch (m) {
    case SpecMode::kNone: return "none";
    case SpecMode::kMtp: return "mtp";
    case SpecMode::kNgram: return "ngram";
    case SpecMode::kAuto: return "auto";
  }
  return "?";
}

bool parse_spec_mode(const std::string& s, SpecMode* out) {
  for (SpecMode m : {SpecMode::kNone, SpecMode::kMtp, SpecMode::kNgram, SpecMode::kAuto}) {
    if (s == spec_mode_name(m)) {
      *out = m;
      return true;
    }
  }
  return false;
}

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kLength: return "length";
    case FinishReason::kStopToken: return "stop_token";
    case FinishReason::kStopString: return "stop_string";
    case FinishReason::kBlockEnd: return "block_end";
    case FinishReason::kSuffix: return "suffix";
    case FinishReason::kTimeBudget: return "time_budget";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kSuperseded: return "superseded";
    case FinishReason::kPreempted: return "preempted";
  }
  return "?";
}

}  // namespace latent
