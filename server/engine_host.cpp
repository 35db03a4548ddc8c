#include "server/engine_host.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "engine/stop_tokenizer.h"
#include "kernels/base/log.h"
#include "server/metrics.h"

namespace latent {

Result<std::unique_ptr<EngineHost>> EngineHost::load(const EngineHostOptions& options) {
  LATENT_ASSIGN_OR_RETURN(std::unique_ptr<EngineHost> host, open(options));
  LATENT_RETURN_IF_ERROR(host->load_model());
  return host;
}

Result<std::unique_ptr<EngineHost>> EngineHost::open(const EngineHostOptions& options) {
  std::unique_ptr<EngineHost> host(new EngineHost());
  host->options_ = options;
  auto tok = Tokenizer::load(options.model_dir);
  if (!tok.ok())
    return make_error(tok.error().code, "--model " + options.model_dir + ": tokenizer: " + tok.error().message);
  host->tokenizer_ = std::make_shared<const Tokenizer>(std::move(*tok));
  host->text_ = token_text_source(host->tokenizer_);
  auto config = ModelConfig::load(options.model_dir);
  if (!config.ok()) return config.error();
  host->config_ = std::move(*config);
  if (static_cast<int64_t>(host->tokenizer_->vocab_size()) > host->config_.vocab_size)
    return make_error(ErrorCode::kInvalidArgument,
                      "--model " + options.model_dir + ": expected a tokenizer of at most vocab_size " +
                          std::to_string(host->config_.vocab_size) + " ids, found " +
                          std::to_string(host->tokenizer_->vocab_size()));
  // The device keeps the cache (host memory, or the GPU's): on the CPU BF16 latent rows with the fast precision
  // (half the bytes: twice the tokens in --cache-mb), float32 with exact. Sized here, before the weights.
  host->planned_blocks_ = std::max<int64_t>(
      KvCache::blocks_for_bytes(host->config_, options.cache_bytes, cache_dtype_for(options.parallel.device)), 1);
  host->model_id_ = std::filesystem::path(options.model_dir).lexically_normal().filename().string();
  if (host->model_id_.empty())
    host->model_id_ = std::filesystem::path(options.model_dir).lexically_normal().parent_path().filename().string();
  return host;
}

Status EngineHost::load_model(std::function<bool(int64_t done, int64_t total)> on_upload,
                              std::function<void()> on_loaded) {
  const auto load = [&]() -> Status {
    ModelOptions mopt;
    mopt.load_mtp = options_.load_mtp;
    mopt.on_ranks_lost = options_.on_ranks_lost;
    mopt.on_upload = std::move(on_upload);
    auto model = RankedModel::load(options_.model_dir, mopt, options_.parallel);
    if (!model.ok()) return model.error();
    ranked_ = std::move(*model);
    model_ = ranked_->driver();
    if (!model_) {
      return make_error(ErrorCode::kInvalidArgument, "EngineHost: expected rank 0 of the mpirun world, found rank " +
                                                         std::to_string(ranked_->rank()));
    }
    const DType cache_dtype = model_->device().cache_dtype();
    const int64_t blocks = std::max<int64_t>(model_->cache_blocks_for_bytes(options_.cache_bytes), 1);
    if (blocks != planned_blocks_) {  // cache_dtype_for() and the device disagree: advertised lengths would lie
      return make_error(ErrorCode::kInternal, "latent cache: expected " + std::to_string(planned_blocks_) +
                                                  " blocks (planned before loading), found " + std::to_string(blocks) +
                                                  " on " + model_->device().name());
    }
    auto cache = model_->make_cache(blocks);
    if (!cache.ok()) return cache.error();
    cache_ = std::make_unique<KvCache>(std::move(*cache));
    serving_ = serve_deepseek(*model_);
    scheduler_ = std::make_unique<Scheduler>(*serving_, *cache_, options_.scheduler);
    sample();  // before the engine thread starts: the engine is idle, reading is safe
    thread_ = std::make_unique<EngineThread>(*scheduler_);
    LATENT_LOG_INFO("model %s on %s: %lld layers, vocab %lld, latent cache %lld blocks of %lld tokens, %s (%.1f MiB)",
                    model_id_.c_str(), model_->device().name().c_str(), static_cast<long long>(config_.num_hidden_layers),
                    static_cast<long long>(config_.vocab_size), static_cast<long long>(blocks),
                    static_cast<long long>(KvCache::kBlockSize), dtype_name(cache_dtype), cache_->bytes() / 1048576.0);
    return Status::Ok();
  };
  Status st = load();
  if (st.ok() && on_loaded) on_loaded();
  std::vector<std::function<void(const Status&)>> waiters;
  {
    std::lock_guard<std::mutex> lock(load_mu_);
    load_status_ = st;
    load_ended_ = true;
    if (st.ok()) loaded_.store(true, std::memory_order_release);
    waiters.swap(waiters_);
  }
  for (auto& fn : waiters) fn(st);
  return st;
}

void EngineHost::when_loaded(std::function<void(const Status&)> fn) {
  Status st;
  {
    std::lock_guard<std::mutex> lock(load_mu_);
    if (!load_ended_) {
      waiters_.push_back(std::move(fn));
      return;
    }
    st = load_status_;
  }
  fn(st);
}

std::string EngineHost::device_name() const {
  return loaded() ? model_->device().name() : options_.parallel.device.name();
}

EngineHost::~EngineHost() {
  if (thread_) thread_->stop();
}

bool EngineHost::wait_idle(std::chrono::milliseconds bound) {
  if (!loaded()) return true;  // nothing runs before the model is loaded
  // Polled: only the exit path of a stdio session calls it, once.
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (scheduler_->has_work()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::vector<int32_t> EngineHost::stop_ids() const {
  std::vector<int32_t> ids;
  if (tokenizer_->eos_id() >= 0) ids.push_back(tokenizer_->eos_id());
  if (auto eos = config_.eos_token_id; eos && std::find(ids.begin(), ids.end(), *eos) == ids.end())
    ids.push_back(*eos);
  return ids;
}

void EngineHost::sample() {
  snap_.cache_blocks = cache_->capacity();
  snap_.free_blocks = cache_->free_count();
  snap_.prefix_blocks = scheduler_->prefix_cache().held_blocks();
  snap_.running = static_cast<int64_t>(scheduler_->running());
  snap_.waiting = static_cast<int64_t>(scheduler_->waiting());
  snap_.prefix_lookups = scheduler_->prefix_cache().lookups();
  snap_.prefix_hits = scheduler_->prefix_cache().hits();
  const SchedulerStats& s = scheduler_->stats();
  snap_.drafted = s.drafted;
  snap_.accepted = s.accepted;
  snap_.steps = s.steps;
  snap_.preemptions = s.preemptions;
}

EngineHost::Snapshot EngineHost::snapshot() const {
  Snapshot s;
  s.cache_blocks = snap_.cache_blocks;
  s.free_blocks = snap_.free_blocks;
  s.prefix_blocks = snap_.prefix_blocks;
  s.running = snap_.running;
  s.waiting = snap_.waiting;
  s.prefix_lookups = snap_.prefix_lookups;
  s.prefix_hits = snap_.prefix_hits;
  s.drafted = snap_.drafted;
  s.accepted = snap_.accepted;
  s.steps = snap_.steps;
  s.preemptions = snap_.preemptions;
  return s;
}

int64_t EngineHost::context_length() const {
  constexpr int64_t kDraftSlots = 8;
  const int64_t blocks = loaded() ? cache_->capacity() : planned_blocks_;
  const int64_t cache_tokens = blocks * KvCache::kBlockSize - kDraftSlots;
  return std::max<int64_t>(0, std::min<int64_t>(config_.max_position_embeddings, cache_tokens));
}

void EngineHost::add_metrics(MetricsRegistry& registry) {
  registry.add_collector([this](MetricsRegistry& r) {
    Snapshot s = snapshot();
    const char* blocks_help = "Latent-cache blocks (sampled on the engine thread at the last engine event)";
    r.gauge("latent_kv_cache_blocks", blocks_help, {{"state", "total"}}).set(s.cache_blocks);
    r.gauge("latent_kv_cache_blocks", blocks_help, {{"state", "free"}}).set(s.free_blocks);
    r.gauge("latent_kv_cache_blocks", blocks_help, {{"state", "prefix_cache"}}).set(s.prefix_blocks);
    // Blocks that running requests hold beyond the prefix tree's (shared blocks count once, in the tree).
    r.gauge("latent_kv_cache_blocks", blocks_help, {{"state", "requests"}})
        .set(std::max<int64_t>(0, s.cache_blocks - s.free_blocks - s.prefix_blocks));
    r.gauge("latent_prefix_cache_lookups", "Prefix-cache lookups since start").set(s.prefix_lookups);
    r.gauge("latent_prefix_cache_hits", "Prefix-cache lookups that reused at least one token").set(s.prefix_hits);
    r.gauge("latent_prefix_cache_lookup_hit_rate", "Prefix-cache hits / lookups since start")
        .set(s.prefix_lookups > 0 ? static_cast<double>(s.prefix_hits) / s.prefix_lookups : 0);
    r.gauge("latent_scheduler_steps", "Engine steps (batches) since start").set(s.steps);
    // Every front door's drafts (editor completions and the HTTP API), from the scheduler's own counts.
    const char* draft_help = "Speculative draft tokens since start, proposed and accepted (all requests)";
    r.gauge("latent_scheduler_draft_tokens", draft_help, {{"state", "proposed"}}).set(s.drafted);
    r.gauge("latent_scheduler_draft_tokens", draft_help, {{"state", "accepted"}}).set(s.accepted);
    r.gauge("latent_scheduler_preemptions", "Requests preempted for cache space since start").set(s.preemptions);
  });
}

}  // namespace latent
