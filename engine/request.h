#pragma once
// What a client asks the Scheduler for and what it hears back.
//
// A Request is a prompt (token ids) plus how to sample, when to stop and how to speculate. The Scheduler
// answers with a stream of Events through the request's callback (called on the engine thread; it must not
// block):
//   kToken  one or more accepted tokens with their text delta (empty without a tokenizer)
//   kDone   the request finished: why, usage (prompt, cached, completion, drafted, accepted), timings
//   kError  the request failed (rejected, cache exhausted, model error); no further events follow
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/base/result.h"

namespace latent {

class TokenTextSource;  // stop.h: optional id -> text, for text deltas and stop strings

using RequestId = uint64_t;

// Lower value = served first. Interactive completions jump ahead of agent and background work, and
// are the last to be preempted when the cache is full.
enum class Priority : int { kInteractive = 0, kAgent = 1, kBackground = 2 };
const char* priority_name(Priority p);

struct SamplingParams {
  float temperature = 0.0f;         // 0 = greedy (argmax)
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off; keep tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f;  // 1 = off; CTRL-style, over prompt and generated ids
  uint64_t seed = 0;                // same seed, same output, with or without speculation (sampler.h)
};

struct StopParams {
  int max_tokens = 128;                    // completion tokens
  std::vector<int32_t> stop_token_ids;     // e.g. EOS; the stop token is not emitted
  std::vector<std::string> stop_strings;   // needs a tokenizer; text is cut before the match
  int64_t time_budget_ms = 0;              // 0 = none; after it, finish with what has been generated
  bool stop_at_block_end = false;          // needs a tokenizer: stop where a bracket closes the enclosing block
  std::string suffix_text;                 // needs a tokenizer: stop when the output reaches the text after the cursor
};

// auto: n-gram drafts when the text recurs, else MTP drafts while at least 1 in 4 is accepted.
enum class SpecMode { kNone, kMtp, kNgram, kAuto };
const char* spec_mode_name(SpecMode m);
bool parse_spec_mode(const std::string& s, SpecMode* out);

struct SpecParams {
  SpecMode mode = SpecMode::kNone;
  int mtp_depth = 1;        // chain of k MTP drafts per step (k >= 1)
  int ngram_max_draft = 4;  // tokens proposed by prompt lookup per step
  int ngram_min_match = 2;  // shortest suffix that must recur in prompt/context
};

enum class FinishReason {
  kLength,      // max_tokens reached
  kStopToken,
  kStopString,
  kBlockEnd,
  kSuffix,
  kTimeBudget,
  kCancelled,
  kSuperseded,  // a newer request with the same document key arrived
  kPreempted,   // the cache was full and this request had the lowest priority
};
const char* finish_reason_name(FinishReason r);

struct Usage {
  int prompt_tokens = 0;
  int cached_tokens = 0;      // prompt tokens whose cache came from the prefix cache
  int completion_tokens = 0;
  int drafted_tokens = 0;     // speculative drafts proposed
  int accepted_tokens = 0;    // drafts accepted by verification
  int forward_tokens = 0;     // tokens this request fed through the model (prefill + decode + verify)
};

struct Timings {
  double queue_ms = 0;  // submit -> first scheduled
  double ttft_ms = 0;   // submit -> first token
  double total_ms = 0;  // submit -> done
};

struct Event {
  enum class Kind { kToken, kDone, kError };
  Kind kind = Kind::kToken;
  RequestId id = 0;
  std::vector<int32_t> tokens;  // kToken: accepted ids (several after a verified draft)
  std::string text;             // kToken: text delta (only with a tokenizer)
  FinishReason finish = FinishReason::kLength;  // kDone
  Usage usage;                                  // kDone (and kError, so far)
  Timings timings;                              // kDone
  Error error;                                  // kError
};

using EventCallback = std::function<void(const Event&)>;

struct Request {
  std::vector<int32_t> prompt;        // token ids, non-empty
  Priority priority = Priority::kInteractive;
  std::string document_key;           // non-empty: a newer request with the same key supersedes this one
  SamplingParams sampling;
  StopParams stop;
  SpecParams spec;
  std::vector<int32_t> context_ids;   // extra text for n-gram drafting (e.g. the document's suffix, snippets)
  std::shared_ptr<const TokenTextSource> text;  // optional; without it events carry ids only
  EventCallback on_event;             // called on the engine thread; must not block
  // Fair sharing within a priority class (weighted fair queueing, scheduler.h): whose request this is (a user,
  // a team: the engine only compares keys) and that tenant's weight (> 0; twice the weight, twice the share).
  std::string tenant;
  double tenant_weight = 1.0;
  // An interactive request that can wait (a ranked completion's extra sampled candidates): like lower
  // priorities, it sits out while another interactive request awaits its first token
  // (SchedulerOptions::interactive_solo_tokens), and it never makes others sit out.
  bool yields_first_tokens = false;
};

}  // namespace latent
