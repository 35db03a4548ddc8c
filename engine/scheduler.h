#pragma once
// Scheduler: continuous batching over one model and one paged latent cache.
//
// Every step() builds one batch: first the running sequences that decode (one token, or one token plus the
// drafts to verify), then prompt chunks (chunked prefill), highest priority first, within max_batch_tokens.
// Requests join and leave between steps. Prompts start from the longest cached prefix (PrefixCache); blocks
// shared with the tree are copied before they are written. When blocks run out: evict unused prefix-cache
// blocks, then preempt the lowest-priority running request (its cache goes to the prefix tree and it resumes
// later, its stream unchanged), and a request that cannot fit even alone fails with kResourceExhausted.
// Speculative decoding (SpecParams): MTP and n-gram drafts are verified in the same forward pass as plain
// decodes; Sampler::verify keeps the output distribution exact.
//
// Thread-safety: submit(), cancel(), has_work() and wait_for_work() may be called from any thread; step()
// and everything else only from the engine thread that owns the Scheduler, the model and the cache. Events
// are delivered on the engine thread, through Request::on_event, which must not block.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/prefix_cache.h"
#include "engine/request.h"
#include "engine/scheduler_model.h"

namespace latent {

struct StepBatch;  // below

struct SchedulerOptions {
  int64_t max_batch_tokens = 256;   // new tokens per forward (prefill chunks + decodes + drafts)
  int64_t prefill_chunk = 128;      // most prompt tokens one request feeds per step
  int max_running = 32;             // sequences in the batch
  int max_waiting = 1024;           // queue limit; beyond it submit() fails
  bool prefix_cache = true;
  int64_t prefix_cache_blocks = -1; // most blocks the prefix tree holds; -1 = the whole cache
  int threads_hint = 0;             // informative only
  // Most of the cache's blocks one tenant's running requests may hold, in (0, 1]: a tenant at its share gets
  // no more requests admitted until some end, and a running request that would grow its tenant past the share is
  // preempted back to the queue (one request of a tenant always may run). 1 = no cap.
  double max_tenant_cache_share = 1.0;
  // Where time budgets, queue times and TTFT read the time; empty = std::chrono::steady_clock::now. Tests
  // inject a manual clock so that a budget is checked against events, not against how busy the machine is.
  std::function<std::chrono::steady_clock::time_point()> clock;
  // Interactive requests run without lower priorities until they have generated this many tokens: while one
  // is queued, prefilling or in its first tokens, agent and background sequences sit out the step (they keep
  // their cache and resume unchanged after). They still run when no interactive request can be scheduled.
  // 0 = interactive and lower priorities share steps (only queue order and cache preemption favour keystrokes).
  int interactive_solo_tokens = 1;
  // Tokens are selected where the logits are (ForwardOptions::select: on a GPU only the ids come back), with the
  // same Sampler pipeline; false: the logits come to the host and each request's Sampler picks there. Both give
  // the same tokens (engine tests run both).
  bool select_on_device = true;
  // Engine thread, before each forward: who is in the batch (tests and benchmarks count steps with it). Must
  // not block; it may submit() or cancel() (they take effect at the next step).
  std::function<void(const StepBatch&)> on_step;
};

// One forward pass as SchedulerOptions::on_step sees it.
struct StepBatch {
  struct Member {
    RequestId id = 0;
    Priority priority = Priority::kInteractive;
    int64_t fed = 0;        // tokens fed this step: a prompt chunk, or the last token plus drafts
    int generated = 0;      // tokens it had generated before this step
  };
  int64_t step = 0;         // SchedulerStats::steps before this one
  std::vector<Member> members;
  int paused = 0;           // lower-priority sequences that sat out for an interactive one (running or queued)
};

struct SchedulerStats {
  int64_t steps = 0;
  int64_t forward_tokens = 0;   // main-model tokens fed (prefill + decode + verify)
  int64_t mtp_tokens = 0;       // MTP-module slots fed
  int64_t drafted = 0, accepted = 0;
  int64_t preemptions = 0;
  int64_t finished = 0;
  int64_t solo_steps = 0;       // steps in which lower priorities sat out for an interactive request
};

// Thread-safe queue of one request's events, for callers that pull instead of taking callbacks.
class EventStream {
 public:
  void push(const Event& e);
  // Blocks up to `timeout` for the next event; nullopt on timeout.
  std::optional<Event> next(std::chrono::milliseconds timeout = std::chrono::milliseconds(60000));
  // Collects every event until kDone or kError (or timeout per event).
  std::vector<Event> drain(std::chrono::milliseconds timeout = std::chrono::milliseconds(60000));

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> q_;
};

class Scheduler {
 public:
  Scheduler(ServingModel& model, KvCache& cache, SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Any thread. Validates and queues; the request starts at a coming step. Errors: empty prompt, token id out
  // of range, queue full, a prompt longer than the whole cache.
  Result<RequestId> submit(Request request);
  // Any thread. Wraps request.on_event (if any) and also queues every event on the returned stream.
  Result<std::pair<RequestId, std::shared_ptr<EventStream>>> submit_stream(Request request);
  // Any thread. Takes effect at the next step (also in the middle of a chunked prefill): kDone/kCancelled.
  void cancel(RequestId id);

  // Engine thread: one batch. Returns false when there was nothing to do.
  bool step();
  // Engine thread: steps until no request is queued or running.
  void run_until_idle();

  bool has_work() const;                                   // any thread
  bool wait_for_work(std::chrono::milliseconds timeout);   // any thread: true when work arrived
  void notify();                                           // wakes wait_for_work (shutdown)

  // Engine thread (or when idle): introspection for tests, benchmarks and /metrics.
  const SchedulerStats& stats() const { return stats_; }
  PrefixCache& prefix_cache() { return prefix_; }
  KvCache& cache() { return cache_; }
  size_t running() const { return running_.size(); }
  size_t waiting() const { return waiting_.size(); }
  // Cache blocks held by the running requests of `tenant`.
  int64_t tenant_blocks(const std::string& tenant) const { return tenant_blocks(tenant, nullptr); }

 private:
  struct Sequence;
  using SeqPtr = std::unique_ptr<Sequence>;

  void drain_inbox();
  void admit(Sequence& s);
  bool reserve(Sequence& s, int64_t n_positions, int64_t write_from);
  bool make_room(const Sequence& s, int64_t n_blocks);
  void preempt(Sequence& s);
  void release(Sequence& s, bool keep_in_prefix_cache);
  void finish(Sequence& s, FinishReason reason);
  void fail(Sequence& s, Error error);
  void emit(Sequence& s, Event e);
  bool apply_tokens(Sequence& s, std::span<const int32_t> tokens);
  void run_mtp(std::vector<Sequence*>& seqs);
  void prepare_drafts(Sequence& s);
  void sweep_finished();
  bool uses_mtp(const Sequence& s) const;
  void expire_time_budgets();
  bool wants_solo(const Sequence& s) const;
  std::vector<Sequence*> build_batch(bool solo, int* paused);
  void run_batch(const std::vector<Sequence*>& batch);

  ServingModel& model_;
  KvCache& cache_;
  SchedulerOptions options_;
  PrefixCache prefix_;
  SchedulerStats stats_;

  // Inbox shared with other threads.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<SeqPtr> inbox_;
  std::vector<RequestId> cancels_;
  RequestId next_id_ = 1;
  bool wake_ = false;

  // Engine thread only.
  std::vector<SeqPtr> waiting_;
  std::vector<SeqPtr> running_;
  uint64_t arrivals_ = 0;
  // Weighted fair queueing per priority class, charged by work done: each tenant's virtual service grows by
  // tokens fed / weight; requests are ordered by their tenant's service (then arrival), so a tenant with many
  // queued requests takes turns with one that has few instead of going first for all of them. A tenant that
  // arrives idle starts at the class's virtual time (the service of the last admitted request), so idleness
  // earns no credit. Cancelled and superseded requests are charged only what they fed.
  std::map<std::pair<int, std::string>, double> tenant_service_;
  std::map<int, double> virtual_time_;
  void join_fair_queue(Sequence& s);
  double& service_of(const Sequence& s);
  // Blocks held by the running requests of `tenant` other than `except` (the admission and growth caps).
  int64_t tenant_blocks(const std::string& tenant, const Sequence* except) const;
  bool over_tenant_share(const Sequence& s) const;
  // Whether growing s to `tokens` cached tokens would take its tenant past its share while another of the
  // tenant's requests runs (one request of a tenant always may run).
  bool grows_past_tenant_share(const Sequence& s, int64_t tokens) const;
  std::atomic<int64_t> active_{0};  // waiting + running, readable from any thread
};

// Runs a Scheduler on its own engine thread: steps while there is work, sleeps otherwise.
class EngineThread {
 public:
  explicit EngineThread(Scheduler& scheduler);
  ~EngineThread();  // stops and joins
  void stop();

 private:
  Scheduler& scheduler_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace latent
