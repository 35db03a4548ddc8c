#pragma once
// EngineHost: what the daemon runs a model with. Loads a checkpoint directory (config.json, safetensors,
// tokenizer.json), sizes the latent cache, and runs the Scheduler on its own engine thread. The front doors
// (HTTP API, LSP completion backend) share one host: they submit() to scheduler() from their own threads and
// hear back through Request::on_event on the engine thread.
//
// Two steps, so that a daemon answers while the weights load (seconds to upload a 16B model to a GPU):
// open() reads config.json and the tokenizer and sizes the cache (config(), tokenizer(), context_length() answer
// from then on); load_model() maps the weights, uploads them to the device, makes the cache and starts the
// engine thread (scheduler() is valid once loaded()). when_loaded() queues work until then, or hears the load's
// error. load() is both at once.
//
// /metrics wants engine state that only the engine thread may read; sample() (call it on the engine thread,
// e.g. from an event callback) copies it into atomics that snapshot() returns on any thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/deepseek_model.h"
#include "engine/ranked_model.h"
#include "engine/scheduler.h"
#include "engine/stop.h"
#include "engine/tokenizer/tokenizer.h"
#include "kernels/base/result.h"

namespace latent {

class MetricsRegistry;

struct EngineHostOptions {
  std::string model_dir;
  size_t cache_bytes = size_t(256) << 20;  // latent cache; blocks = what fits
  SchedulerOptions scheduler;
  bool load_mtp = true;
  ParallelOptions parallel;  // --tp/--ep: in-process ranks, or this process's rank 0 under mpirun
  // Several ranks: called once when they can no longer run together (ModelOptions::on_ranks_lost), on the engine
  // thread or a follower's; latentd logs the error and exits non-zero.
  std::function<void(const Error&)> on_ranks_lost;
};

class EngineHost {
 public:
  static Result<std::unique_ptr<EngineHost>> load(const EngineHostOptions& options);
  static Result<std::unique_ptr<EngineHost>> open(const EngineHostOptions& options);
  // The slow part, once, on any one thread: on_upload(done, total) as ModelOptions::on_upload (returning false
  // stops the load: kCancelled). Its result is what when_loaded() callbacks get. on_loaded() runs after a
  // successful load and before those callbacks, so whatever it marks (ModelLoader: "serving", /health's 200)
  // is true before the first generation can start.
  Status load_model(std::function<bool(int64_t done, int64_t total)> on_upload = nullptr,
                    std::function<void()> on_loaded = nullptr);
  bool loaded() const { return loaded_.load(std::memory_order_acquire); }
  // Any thread: fn(status of the load) once load_model() has ended, at once (on this thread) when it has, else on
  // the loading thread as it ends. fn must not block.
  void when_loaded(std::function<void(const Status&)> fn);
  ~EngineHost();  // stops the engine thread first (requests still queued or running end without an event)
  // Any thread: waits until the scheduler has no request queued or running and no cancel pending, at most
  // `bound`. A client that went away has had its requests cancelled; they end at the engine's next step, so
  // this returns within one step unless another client still has work. Returns whether it became idle.
  bool wait_idle(std::chrono::milliseconds bound);

  Scheduler& scheduler() { return *scheduler_; }  // once loaded()
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  std::shared_ptr<const Tokenizer> shared_tokenizer() const { return tokenizer_; }
  std::shared_ptr<const TokenTextSource> text() const { return text_; }
  const ModelConfig& config() const { return config_; }
  const std::string& model_id() const { return model_id_; }  // the directory's last component
  // The longest sequence (prompt + generated tokens) one request can have: what the latent cache holds (less a
  // few slots for speculative drafts), at most max_position_embeddings.
  int64_t context_length() const;
  std::vector<int32_t> stop_ids() const;                     // EOS (tokenizer and config.json)
  // Reads the mapped checkpoint into the page cache (Weights::touch_pages), safe beside serving: the first
  // completion then does not wait on the disk. Under mpirun rank 0 reads only its own tensors (its shard or
  // stage: DeepseekModel::touch_weights); in-process ranks share the process and read the whole checkpoint.
  // `progress(done, total)` returning false stops it. On a GPU the weights were uploaded at load: nothing to read.
  // Once loaded().
  size_t warm(const std::function<bool(size_t done, size_t total)>& progress) const {
    if (!model_->device().is_host() || (ranked_ && ranked_->transport() == "mpi")) return model_->touch_weights(progress);
    return model_->weights().touch_pages(progress);
  }
  std::string device_name() const;  // "cpu", "cuda:0 (...)" once loaded; before, the --device asked for
  const DeepseekModel* model() const { return model_; }  // null until loaded()

  struct Snapshot {
    int64_t cache_blocks = 0, free_blocks = 0, prefix_blocks = 0;
    int64_t running = 0, waiting = 0;
    int64_t prefix_lookups = 0, prefix_hits = 0;
    int64_t drafted = 0, accepted = 0, steps = 0, preemptions = 0;
  };
  void sample();  // engine thread only (or before the engine thread starts)
  Snapshot snapshot() const;
  // Gauges for the snapshot (latent_kv_cache_blocks{state}, prefix-cache lookups and hits, steps). The
  // running/waiting counts are not among them: at a kDone event the finished request is still listed.
  void add_metrics(MetricsRegistry& registry);

 private:
  EngineHost() = default;
  EngineHostOptions options_;
  ModelConfig config_;
  int64_t planned_blocks_ = 0;  // the cache's size from config.json and the device's cache dtype, before loading
  std::atomic<bool> loaded_{false};
  std::mutex load_mu_;
  bool load_ended_ = false;
  Status load_status_;
  std::vector<std::function<void(const Status&)>> waiters_;
  std::unique_ptr<RankedModel> ranked_;
  DeepseekModel* model_ = nullptr;  // rank 0 of ranked_
  std::unique_ptr<ServingModel> serving_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<EngineThread> thread_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::shared_ptr<const TokenTextSource> text_;
  std::string model_id_;
  struct Atomics {
    std::atomic<int64_t> cache_blocks{0}, free_blocks{0}, prefix_blocks{0}, running{0}, waiting{0};
    std::atomic<int64_t> prefix_lookups{0}, prefix_hits{0}, drafted{0}, accepted{0}, steps{0}, preemptions{0};
  } snap_;
};

}  // namespace latent
