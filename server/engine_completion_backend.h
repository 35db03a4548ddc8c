#pragma once
// The LSP assistant's completion backend on the real engine: the FIM prompt is tokenized with the model's
// tokenizer (encode_fim: code cannot inject special tokens) and submitted to the EngineHost's Scheduler as an
// interactive request keyed by document (a newer one supersedes it); text deltas from the engine's
// incremental detokenizer stream back as they are decoded.
//
// While the host's model is still loading (EngineHost::when_loaded) jobs wait in arrival order and start when it
// is loaded; a failed load answers them (and later jobs) with its error; a waiting job that is cancelled never
// runs and is answered kCancelled when the load ends (not inside cancel(): its caller may hold a lock on_done
// takes).
//
// Thread-safety: start/cancel from any thread; callbacks arrive on the engine thread (or the loading thread, or
// the caller's for jobs answered before they reach the engine).
#include <atomic>
#include <memory>
#include <mutex>

#include "lsp/completion_backend.h"
#include "server/engine_host.h"
#include "server/metrics.h"

namespace latent::server {

struct EngineBackendOptions {
  // Speculative decoding for completions. With n-gram drafts the text after the cursor is given to the drafter
  // (Request::context_ids): ghost text often repeats code that is already in the file.
  SpecParams spec;
  // Optional: editor completions counted in /metrics (latent_lsp_*: completions by outcome, in flight, time to
  // first token, time per output token, prompt/cached/generated tokens). Must outlive the engine's callbacks.
  MetricsRegistry* metrics = nullptr;
};

class EngineCompletionBackend : public lsp::CompletionBackend {
 public:
  explicit EngineCompletionBackend(EngineHost& host, EngineBackendOptions options = {});

  Handle start(lsp::CompletionJob job, OnDelta on_delta, OnDone on_done) override;
  void cancel(Handle handle) override;
  std::optional<size_t> count_tokens(std::string_view text) const override;
  std::optional<size_t> context_length() const override { return static_cast<size_t>(host_.context_length()); }
  std::optional<lsp::PrefillCost> prefill_cost() const override;

  // Measures the prefill cost model: prompts of random ids (32 tokens, then up to 512, then 32 again; nothing
  // the prefix cache can reuse) through the Scheduler at background priority, one token each, timed by the
  // engine from first scheduling to first token. Blocks until done, or returns kCancelled soon after `stop`
  // turns true. Afterwards prefill_cost() answers; before, nullopt. Call once the weights are in memory
  // (latentd: after the Warmer, before "ready").
  Result<lsp::PrefillCost> measure_prefill_cost(const std::atomic<bool>& stop);
  std::string describe() const override;

 private:
  struct Metrics;
  struct Waiting;
  struct Submit;  // what submitting needs, shared with the load's callback (which may outlive this backend)
  EngineHost& host_;
  EngineBackendOptions options_;
  std::shared_ptr<Metrics> m_;  // null without options.metrics; shared with in-flight callbacks
  std::shared_ptr<Waiting> waiting_;
  mutable std::mutex cost_mu_;
  std::optional<lsp::PrefillCost> cost_;
};

}  // namespace latent::server
