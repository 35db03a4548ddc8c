#pragma once
// What the assistant needs from an inference engine: start a completion of a prompt, stream its text, cancel
// it. The real one tokenizes the prompt and submits to the engine's Scheduler; tests use a scripted double.
//
// Contract: start() returns at once; on_delta and then exactly one on_done are called later, from any thread,
// and must not block. After cancel(handle), on_done may still arrive (with kCancelled or a result), or not.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/prompt_format.h"
#include "kernels/base/result.h"

namespace latent::lsp {

struct CompletionUsage;

struct CompletionJob {
  FimPrompt fim;                  // the prompt's parts (a tokenizer backend encodes them with encode_fim)
  std::string prompt;             // render_fim(fim), the same prompt as text
  std::string doc_key;            // a newer job with the same key supersedes an older one
  std::string tenant;             // whose job (fair sharing between users: Request::tenant)
  double tenant_weight = 1.0;     // that user's weight (> 0: Request::tenant_weight)
  int priority = 0;               // higher first; inline completions are interactive (10)
  int max_tokens = 128;
  std::vector<std::string> stop;  // stop strings (not included in the output)
  std::chrono::milliseconds time_budget{2000};
  // 0: the most likely continuation (greedy). k > 0: the k-th sampled candidate of a ranked completion
  // (--syntax-check rank: temperature 0.8, top-k 40, top-p 0.95, a seed from k), decoded beside the greedy one.
  int sample = 0;
  // An agent turn instead of a FIM completion (lsp/agent/agent_session.h): the conversation in chat form, tools
  // already in its system prompt, and text pre-filled after the generation prompt. The backend renders it with
  // the model's chat template; `prompt` then holds the DeepSeek-V3 rendering, for backends without a tokenizer.
  std::vector<ChatMessage> chat;
  std::string prefill;
  // Optional: the engine's account of the job, whatever the end (also superseded and cancelled jobs, whose
  // on_done may never come); called once, on the backend's thread, must not block.
  std::function<void(const CompletionUsage&)> on_usage;
};

struct CompletionUsage {
  size_t prompt_tokens = 0;
  size_t cached_tokens = 0;      // prompt tokens reused from the prefix cache (not prefilled)
  size_t completion_tokens = 0;
  size_t forward_tokens = 0;     // tokens fed through the model (prefill + decode + verify)
  double milliseconds = 0;
  double ttft_ms = 0;            // submit -> first token (0: none)
  // Filled by AssistantCore (latent/usage), from the completion request's arrival at the daemon: until the
  // context was built, and until the engine's first generated text reached the daemon (0: none). The span
  // between them is tokenizing and submitting the prompt plus the engine's ttft_ms.
  double context_ms = 0;
  double first_text_ms = 0;
  std::string finish_reason;     // "stop", "length", "time", "cancelled", "superseded"
  // The account of a ranked candidate or a continuation round (--syntax-check rank), decoded beside the shown
  // completion: work the request caused (quotas, per-user /metrics) but not the request's own usage (latent/usage
  // reports only that). Its prompt is the request's, mostly reused from the prefix cache (cached_tokens).
  bool candidate = false;
};

// What a prompt costs to prefill on this engine, measured (EngineHost::measure_prefill_cost): the first token of a
// prompt of n uncached tokens comes after about fixed_ms + per_token_ms * n.
struct PrefillCost {
  double fixed_ms = 0;
  double per_token_ms = 0;
};

class CompletionBackend {
 public:
  using Handle = uint64_t;
  using OnDelta = std::function<void(std::string_view delta)>;
  using OnDone = std::function<void(Result<CompletionUsage>)>;

  virtual ~CompletionBackend() = default;
  virtual Handle start(CompletionJob job, OnDelta on_delta, OnDone on_done) = 0;
  virtual void cancel(Handle handle) = 0;
  // Exact token counts for the context budget when a tokenizer is attached.
  virtual std::optional<size_t> count_tokens(std::string_view text) const { return std::nullopt; }
  // The longest prompt + completion one job can have (what the engine's cache holds); nullopt: no limit known.
  virtual std::optional<size_t> context_length() const { return std::nullopt; }
  // The prefill cost model, once measured (nullopt: not yet, or unknown); the context is sized by it.
  virtual std::optional<PrefillCost> prefill_cost() const { return std::nullopt; }
  virtual std::string describe() const = 0;  // "deepseek-coder-1.3b on cpu", for initialize's serverInfo
};

}  // namespace latent::lsp
