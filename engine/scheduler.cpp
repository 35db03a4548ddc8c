#include "engine/scheduler.h"

#include <algorithm>

#include "engine/sampler.h"
#include "engine/speculator.h"
#include "engine/stop.h"
#include "kernels/base/log.h"

namespace latent {

using Clock = std::chrono::steady_clock;
static Clock::time_point now_of(const SchedulerOptions& o) { return o.clock ? o.clock() : Clock::now(); }

// Auto mode judges MTP after this many drafts: below 1 in 4 accepted, it stops drafting with MTP.
constexpr int kAutoMtpProbe = 16;

namespace {
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
}  // namespace

// One request's state on the engine thread. Cache invariant: the main model's latents hold tokens[0, n_cached)
// and the MTP module's hold slots [0, n_mtp); tokens[n_cached, T) still have to be fed (T - n_cached = 1 while
// decoding: the last sampled token).
struct Scheduler::Sequence {
  Sequence(RequestId id_, Request r)
      : id(id_), req(std::move(r)), sampler(req.sampling), stop(req.stop, req.text.get()) {}
  RequestId id;
  Request req;
  uint64_t arrival = 0;
  double vstart = 0;  // its tenant's virtual service when last ordered (weighted fair queueing, scheduler.h)
  Clock::time_point submitted{};  // set by submit() from now_of(options_), so an injected clock governs every timing
  bool scheduled_once = false, got_token = false, done = false, preempted = false, in_batch = false;
  bool mtp_off = false;         // auto mode gave up on MTP drafts for this request (too few accepted)
  int mtp_drafted = 0, mtp_accepted = 0;
  double queue_ms = 0, ttft_ms = 0;

  std::vector<int32_t> tokens;  // prompt + accepted output
  int64_t n_prompt = 0;
  int64_t n_cached = 0, n_mtp = 0;
  std::vector<BlockId> blocks;
  std::vector<float> hidden;    // main-model post-norm rows for positions [n_mtp, n_cached) (MTP input)
  std::vector<int32_t> mtp_chain;  // MTP drafts for the token after tokens.back()
  std::vector<int32_t> draft;      // drafts verified this step
  bool draft_is_mtp = false;
  std::vector<int32_t> feed;       // tokens fed this step
  Sampler sampler;
  StopChecker stop;
  Usage usage;

  int64_t T() const { return static_cast<int64_t>(tokens.size()); }
  bool decoding() const { return T() - n_cached == 1; }
  // Lower is served first and preempted last: priority class, then fair-queueing tag, then arrival.
  bool before(const Sequence& o) const {
    if (req.priority != o.req.priority) return req.priority < o.req.priority;
    if (vstart != o.vstart) return vstart < o.vstart;
    return arrival < o.arrival;
  }
};

// ---------------------------------------------------------------- EventStream

void EventStream::push(const Event& e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    q_.push_back(e);
  }
  cv_.notify_all();
}

std::optional<Event> EventStream::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !q_.empty(); })) return std::nullopt;
  Event e = std::move(q_.front());
  q_.pop_front();
  return e;
}

std::vector<Event> EventStream::drain(std::chrono::milliseconds timeout) {
  std::vector<Event> out;
  while (auto e = next(timeout)) {
    out.push_back(std::move(*e));
    if (out.back().kind != Event::Kind::kToken) break;
  }
  return out;
}

// ---------------------------------------------------------------- submission (any thread)

Scheduler::Scheduler(ServingModel& model, KvCache& cache, SchedulerOptions options)
    : model_(model),
      cache_(cache),
      options_(options),
      prefix_(cache, options.prefix_cache_blocks < 0 ? cache.capacity() : options.prefix_cache_blocks) {}

Scheduler::~Scheduler() {
  for (auto& s : running_) release(*s, false);
  for (auto& s : waiting_) release(*s, false);
  prefix_.clear();
}

Result<RequestId> Scheduler::submit(Request request) {
  if (request.prompt.empty()) return make_error(ErrorCode::kInvalidArgument, "request: expected a non-empty prompt");
  const int64_t vocab = model_.vocab_size();
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    if (request.prompt[i] < 0 || request.prompt[i] >= vocab)
      return make_error(ErrorCode::kInvalidArgument, "request: prompt[" + std::to_string(i) + "] = " +
                                                         std::to_string(request.prompt[i]) + ", expected [0, " +
                                                         std::to_string(vocab) + ")");
  }
  if (request.stop.max_tokens < 1)
    return make_error(ErrorCode::kInvalidArgument,
                      "request: expected max_tokens >= 1, got " + std::to_string(request.stop.max_tokens));
  if (request.spec.mtp_depth < 1 || request.spec.ngram_max_draft < 0)
    return make_error(ErrorCode::kInvalidArgument, "request: expected spec.mtp_depth >= 1 and ngram_max_draft >= 0");
  const int64_t need = KvCache::blocks_needed(static_cast<int64_t>(request.prompt.size()) + 1);
  if (need > cache_.capacity())
    return make_error(ErrorCode::kResourceExhausted,
                      "request: a prompt of " + std::to_string(request.prompt.size()) + " tokens needs " +
                          std::to_string(need) + " cache blocks, the cache has " +
                          std::to_string(cache_.capacity()));
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int64_t>(inbox_.size()) + active_.load() >= options_.max_waiting)
    return make_error(ErrorCode::kResourceExhausted,
                      "request: queue full (" + std::to_string(options_.max_waiting) + " requests)");
  RequestId id = next_id_++;
  inbox_.push_back(std::make_unique<Sequence>(id, std::move(request)));
  inbox_.back()->submitted = now_of(options_);
  cv_.notify_all();
  return id;
}

Result<std::pair<RequestId, std::shared_ptr<EventStream>>> Scheduler::submit_stream(Request request) {
  auto stream = std::make_shared<EventStream>();
  EventCallback inner = std::move(request.on_event);
  request.on_event = [stream, inner](const Event& e) {
    if (inner) inner(e);
    stream->push(e);
  };
  LATENT_ASSIGN_OR_RETURN(RequestId id, submit(std::move(request)));
  return std::make_pair(id, stream);
}

void Scheduler::cancel(RequestId id) {
  std::lock_guard<std::mutex> lock(mu_);
  cancels_.push_back(id);
  cv_.notify_all();
}

bool Scheduler::has_work() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !inbox_.empty() || !cancels_.empty() || active_.load() > 0;
}

bool Scheduler::wait_for_work(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  bool got = cv_.wait_for(lock, timeout, [&] {
    return !inbox_.empty() || !cancels_.empty() || active_.load() > 0 || wake_;
  });
  wake_ = false;
  return got;
}

void Scheduler::notify() {
  std::lock_guard<std::mutex> lock(mu_);
  wake_ = true;
  cv_.notify_all();
}

// ---------------------------------------------------------------- engine thread

void Scheduler::emit(Sequence& s, Event e) {
  e.id = s.id;
  if (s.req.on_event) s.req.on_event(e);
}

void Scheduler::drain_inbox() {
  std::vector<SeqPtr> fresh;
  std::vector<RequestId> cancels;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fresh.swap(inbox_);
    cancels.swap(cancels_);
    active_ += static_cast<int64_t>(fresh.size());
  }
  for (auto& s : fresh) {
    s->arrival = ++arrivals_;
    s->tokens = s->req.prompt;
    s->n_prompt = s->T();
    join_fair_queue(*s);
    s->usage.prompt_tokens = static_cast<int>(s->n_prompt);
    if (!s->req.document_key.empty()) {
      // A newer request for the same document makes the older ones pointless (the user kept typing).
      auto supersede = [&](std::vector<SeqPtr>& list) {
        for (auto& o : list)
          if (!o->done && o->req.document_key == s->req.document_key) finish(*o, FinishReason::kSuperseded);
      };
      supersede(waiting_);
      supersede(running_);
    }
    waiting_.push_back(std::move(s));
  }
  for (RequestId id : cancels) {
    for (auto* list : {&waiting_, &running_})
      for (auto& s : *list)
        if (s->id == id && !s->done) finish(*s, FinishReason::kCancelled);
  }
}

void Scheduler::release(Sequence& s, bool keep_in_prefix_cache) {
  if (keep_in_prefix_cache && options_.prefix_cache && s.n_cached > 0) {
    const int64_t n = std::min(s.n_cached, s.T());
    prefix_.insert(std::span<const int32_t>(s.tokens.data(), static_cast<size_t>(n)), s.blocks,
                   std::min(s.n_mtp, n));
  }
  for (BlockId b : s.blocks) (void)cache_.unref(b);
  s.blocks.clear();
  s.n_cached = 0;
  s.n_mtp = 0;
  s.hidden.clear();
  s.mtp_chain.clear();
}

void Scheduler::finish(Sequence& s, FinishReason reason) {
  if (s.done) return;
  std::string rest = s.stop.flush();
  if (!rest.empty()) {
    Event t;
    t.kind = Event::Kind::kToken;
    t.text = std::move(rest);
    emit(s, std::move(t));
  }
  s.done = true;
  release(s, true);
  ++stats_.finished;
  Event e;
  e.kind = Event::Kind::kDone;
  e.finish = reason;
  e.usage = s.usage;
  e.timings.queue_ms = s.queue_ms;
  e.timings.ttft_ms = s.ttft_ms;
  e.timings.total_ms = ms_between(s.submitted, now_of(options_));
  emit(s, std::move(e));
}

void Scheduler::fail(Sequence& s, Error error) {
  if (s.done) return;
  s.done = true;
  release(s, false);
  ++stats_.finished;
  Event e;
  e.kind = Event::Kind::kError;
  e.usage = s.usage;
  e.error = std::move(error);
  emit(s, std::move(e));
}

void Scheduler::sweep_finished() {
  auto sweep = [&](std::vector<SeqPtr>& list) {
    size_t before = list.size();
    list.erase(std::remove_if(list.begin(), list.end(), [](const SeqPtr& s) { return s->done; }), list.end());
    active_ -= static_cast<int64_t>(before - list.size());
  };
  sweep(waiting_);
  sweep(running_);
  // Preempted sequences go back to the queue (their stream simply pauses).
  for (auto it = running_.begin(); it != running_.end();) {
    if ((*it)->preempted) {
      (*it)->preempted = false;
      waiting_.push_back(std::move(*it));
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Scheduler::uses_mtp(const Sequence& s) const {
  return model_.has_mtp() && !s.mtp_off &&
         (s.req.spec.mode == SpecMode::kMtp || s.req.spec.mode == SpecMode::kAuto);
}

void Scheduler::admit(Sequence& s) {
  if (!s.scheduled_once) {
    s.scheduled_once = true;
    s.queue_ms = ms_between(s.submitted, now_of(options_));
  }
  if (!options_.prefix_cache) return;
  // At least the last token is fed again: its logits pick the next token.
  auto m = prefix_.acquire(s.tokens, s.T() - 1);
  s.blocks = std::move(m.blocks);
  s.n_cached = m.n_tokens;
  if (uses_mtp(s) && s.req.spec.mode == SpecMode::kAuto && m.n_tokens - m.mtp_tokens > KvCache::kBlockSize) {
    // The cached prefix came without MTP latents (a request that did not use MTP): reusing it and drafting
    // with n-gram lookups only beats recomputing the prompt for the MTP module's sake.
    s.mtp_off = true;
  }
  if (uses_mtp(s)) {
    // The MTP module needs the main model's hidden state from the first slot it lacks on.
    s.n_mtp = m.mtp_tokens;
    s.n_cached = std::min(s.n_cached, s.n_mtp);
  }
  if (s.arrival != 0 && s.usage.cached_tokens == 0 && s.T() == s.n_prompt)
    s.usage.cached_tokens = static_cast<int>(s.n_cached);
}

double& Scheduler::service_of(const Sequence& s) {
  return tenant_service_[{static_cast<int>(s.req.priority), s.req.tenant}];
}

void Scheduler::join_fair_queue(Sequence& s) {
  const int cls = static_cast<int>(s.req.priority);
  // Tenants at or behind the virtual time would be raised to it on arrival anyway: forget them (bounded map).
  if (tenant_service_.size() > 4096) {
    for (auto it = tenant_service_.begin(); it != tenant_service_.end();) {
      it = it->second <= virtual_time_[it->first.first] ? tenant_service_.erase(it) : std::next(it);
    }
  }
  double& sv = service_of(s);
  sv = std::max(sv, virtual_time_[cls]);
  s.vstart = sv;
}

bool Scheduler::over_tenant_share(const Sequence& s) const {
  if (options_.max_tenant_cache_share >= 1.0) return false;
  const int64_t held = tenant_blocks(s.req.tenant, &s);
  if (held == 0) return false;  // one request of a tenant always may run
  const int64_t need = KvCache::blocks_needed(s.T() + 1);
  return static_cast<double>(held + need) > options_.max_tenant_cache_share * static_cast<double>(cache_.capacity());
}

bool Scheduler::grows_past_tenant_share(const Sequence& s, int64_t tokens) const {
  if (options_.max_tenant_cache_share >= 1.0) return false;
  const int64_t need = KvCache::blocks_needed(tokens);
  if (need <= static_cast<int64_t>(s.blocks.size())) return false;  // no new block
  const int64_t held = tenant_blocks(s.req.tenant, &s);
  if (held == 0) return false;  // one request of a tenant always may run
  return static_cast<double>(held + need) > options_.max_tenant_cache_share * static_cast<double>(cache_.capacity());
}

int64_t Scheduler::tenant_blocks(const std::string& tenant, const Sequence* except) const {
  int64_t held = 0;  // a preempted sequence has released its blocks: it counts 0 either way
  for (const auto& o : running_) {
    if (o.get() != except && !o->done && o->req.tenant == tenant) held += static_cast<int64_t>(o->blocks.size());
  }
  return held;
}

void Scheduler::preempt(Sequence& s) {
  LATENT_LOG_DEBUG("scheduler: preempting request %llu (%s)", static_cast<unsigned long long>(s.id),
                   priority_name(s.req.priority));
  release(s, true);
  s.preempted = true;
  s.in_batch = false;
  ++stats_.preemptions;
}

bool Scheduler::make_room(const Sequence& s, int64_t n_blocks) {
  while (cache_.free_count() < n_blocks) {
    if (prefix_.evict(n_blocks - cache_.free_count()) > 0) continue;
    Sequence* victim = nullptr;
    for (auto& o : running_)
      if (o.get() != &s && !o->done && !o->preempted && !o->blocks.empty() && s.before(*o) &&
          (victim == nullptr || victim->before(*o)))
        victim = o.get();
    if (victim == nullptr) return false;
    preempt(*victim);
  }
  return true;
}

bool Scheduler::reserve(Sequence& s, int64_t n_positions, int64_t write_from) {
  const int64_t need = KvCache::blocks_needed(n_positions) - static_cast<int64_t>(s.blocks.size());
  if (need > 0) {
    if (!make_room(s, need)) return false;
    auto got = cache_.allocate(need);
    if (!got.ok()) return false;
    s.blocks.insert(s.blocks.end(), got->begin(), got->end());
  }
  // Copy-on-write: never write into a block the prefix tree or another request also reads.
  for (size_t j = static_cast<size_t>(write_from / KvCache::kBlockSize); j < s.blocks.size(); ++j) {
    if (cache_.ref_count(s.blocks[j]) <= 1) continue;
    if (!make_room(s, 1)) return false;
    auto dst = cache_.allocate();
    if (!dst.ok() || !cache_.copy_block(s.blocks[j], *dst).ok()) return false;
    (void)cache_.unref(s.blocks[j]);
    s.blocks[j] = *dst;
  }
  return true;
}

void Scheduler::prepare_drafts(Sequence& s) {
  s.draft.clear();
  s.draft_is_mtp = false;
  const auto& sp = s.req.spec;
  if (sp.mode == SpecMode::kNone) return;
  // Drafting past max_tokens is wasted work.
  const int64_t room = s.req.stop.max_tokens - s.stop.generated() - 1;
  if (room <= 0) return;
  std::vector<int32_t> ngram;
  if (sp.mode == SpecMode::kNgram || sp.mode == SpecMode::kAuto)
    ngram = ngram_draft(s.tokens, s.req.context_ids, sp.ngram_max_draft, sp.ngram_min_match);
  switch (choose_draft_source(sp.mode, uses_mtp(s), !ngram.empty())) {
    case DraftSource::kNone: break;
    case DraftSource::kNgram: s.draft = std::move(ngram); break;
    case DraftSource::kMtp:
      s.draft = s.mtp_chain;
      s.draft_is_mtp = true;
      break;
  }
  if (static_cast<int64_t>(s.draft.size()) > room) s.draft.resize(static_cast<size_t>(room));
}

bool Scheduler::apply_tokens(Sequence& s, std::span<const int32_t> tokens) {
  Event e;
  e.kind = Event::Kind::kToken;
  std::optional<FinishReason> reason;
  for (int32_t t : tokens) {
    auto out = s.stop.push(t);
    if (out.emit_token) {
      s.tokens.push_back(t);
      e.tokens.push_back(t);
      ++s.usage.completion_tokens;
    }
    e.text += out.text;
    if (out.finish) {
      reason = out.finish;
      break;
    }
  }
  if (!e.tokens.empty() && !s.got_token) {
    s.got_token = true;
    s.ttft_ms = ms_between(s.submitted, now_of(options_));
  }
  if (!e.tokens.empty() || !e.text.empty()) emit(s, std::move(e));
  if (reason) {
    finish(s, *reason);
    return false;
  }
  return true;
}

void Scheduler::expire_time_budgets() {
  const auto now = now_of(options_);
  for (auto* list : {&waiting_, &running_})
    for (auto& s : *list)
      if (!s->done && s->req.stop.time_budget_ms > 0 &&
          ms_between(s->submitted, now) >= static_cast<double>(s->req.stop.time_budget_ms))
        finish(*s, FinishReason::kTimeBudget);
}

bool Scheduler::wants_solo(const Sequence& s) const {
  return !s.done && s.req.priority == Priority::kInteractive && !s.req.yields_first_tokens &&
         s.usage.completion_tokens < options_.interactive_solo_tokens;
}

bool Scheduler::step() {
  drain_inbox();
  expire_time_budgets();
  sweep_finished();
  if (running_.empty() && waiting_.empty()) return false;

  for (auto* list : {&waiting_, &running_})
    for (auto& s : *list) s->vstart = service_of(*s);
  auto by_priority = [](const SeqPtr& a, const SeqPtr& b) { return a->before(*b); };
  std::sort(running_.begin(), running_.end(), by_priority);
  std::sort(waiting_.begin(), waiting_.end(), by_priority);

  // A keystroke's prompt and first tokens get forward passes of their own; if no interactive request can be
  // scheduled (no slot, its tenant's share), the others run rather than idle.
  bool solo = false;
  for (auto* list : {&waiting_, &running_})
    for (auto& s : *list) solo = solo || (!s->preempted && wants_solo(*s));
  int paused = 0;
  std::vector<Sequence*> batch = build_batch(solo, &paused);
  if (batch.empty() && solo) {
    paused = 0;
    batch = build_batch(false, &paused);
  }
  if (batch.empty()) {
    sweep_finished();
    return !running_.empty() || !waiting_.empty();
  }
  if (paused > 0) ++stats_.solo_steps;
  if (options_.on_step) {
    StepBatch sb;
    sb.step = stats_.steps;
    sb.paused = paused;
    for (const Sequence* q : batch)
      sb.members.push_back({q->id, q->req.priority, static_cast<int64_t>(q->feed.size()), q->usage.completion_tokens});
    options_.on_step(sb);
  }
  run_batch(batch);
  return true;
}

// Decodes (+ drafts) first, then prompt chunks, then newly admitted prompts, within max_batch_tokens. `solo`:
// only interactive sequences; the others sit out this step (counted in *paused) and keep their cache.
std::vector<Scheduler::Sequence*> Scheduler::build_batch(bool solo, int* paused) {
  auto sits_out = [&](const Sequence& s) {
    if (!solo || (s.req.priority == Priority::kInteractive && !s.req.yields_first_tokens)) return false;
    ++*paused;
    return true;
  };
  int64_t budget = options_.max_batch_tokens;
  std::vector<Sequence*> batch;
  auto schedule = [&](Sequence& s, int64_t n_real) -> bool {
    const int64_t n_new = n_real + static_cast<int64_t>(s.draft.size());
    const int64_t mtp_extra = uses_mtp(s) ? s.req.spec.mtp_depth : 0;
    const int64_t write_from = uses_mtp(s) ? std::min(s.n_cached, s.n_mtp) : s.n_cached;
    if (grows_past_tenant_share(s, s.n_cached + n_new + mtp_extra)) {
      // Its tenant would pass its cache share: back to the queue (blocks released, its prefix kept in the prefix
      // cache), to be admitted again when the tenant's other requests leave room.
      preempt(s);
      return true;  // handled: not a failure to reserve
    }
    if (!reserve(s, s.n_cached + n_new + mtp_extra, write_from)) return false;
    s.feed.assign(s.tokens.begin() + s.n_cached, s.tokens.begin() + s.n_cached + n_real);
    s.feed.insert(s.feed.end(), s.draft.begin(), s.draft.end());
    s.in_batch = true;
    batch.push_back(&s);
    budget -= n_new;
    service_of(s) += static_cast<double>(n_new) / (s.req.tenant_weight > 0 ? s.req.tenant_weight : 1.0);
    return true;
  };
  auto cannot_fit = [&](Sequence& s) {
    fail(s, make_error(ErrorCode::kResourceExhausted,
                       "cache full: request " + std::to_string(s.id) + " needs " +
                           std::to_string(KvCache::blocks_needed(s.T() + 1)) + " blocks, the cache has " +
                           std::to_string(cache_.capacity()) + " and nothing of lower priority to preempt"));
  };
  for (int pass = 0; pass < 2; ++pass) {
    for (auto& sp : running_) {
      Sequence& s = *sp;
      if (s.done || s.preempted || s.in_batch || budget <= 0 || s.decoding() != (pass == 0)) continue;
      if (sits_out(s)) continue;
      int64_t n_real = std::min({s.T() - s.n_cached, options_.prefill_chunk, budget});
      if (pass == 0) {
        prepare_drafts(s);
        if (static_cast<int64_t>(s.draft.size()) > budget - 1) s.draft.resize(static_cast<size_t>(budget - 1));
      } else {
        s.draft.clear();
      }
      if (!schedule(s, n_real)) {
        bool others = std::any_of(running_.begin(), running_.end(), [&](const SeqPtr& o) {
          return o.get() != &s && !o->done && !o->preempted && !o->blocks.empty();
        });
        if (others) preempt(s);
        else cannot_fit(s);
      }
    }
  }
  for (auto& sp : waiting_) {
    Sequence& s = *sp;
    if (s.done || budget <= 0) continue;
    if (static_cast<int>(running_.size()) >= options_.max_running) break;
    if (sits_out(s)) continue;
    if (over_tenant_share(s)) continue;  // its tenant holds its share of the cache; others may go ahead
    admit(s);
    double& vt = virtual_time_[static_cast<int>(s.req.priority)];
    vt = std::max(vt, service_of(s));
    s.draft.clear();
    int64_t n_real = std::min({s.T() - s.n_cached, options_.prefill_chunk, budget});
    if (!schedule(s, n_real)) {
      const bool alone = running_.empty() && batch.empty();
      release(s, false);
      if (alone) cannot_fit(s);
      break;  // keep the queue order: lower-priority requests wait too
    }
    running_.push_back(std::move(sp));
  }
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), nullptr), waiting_.end());
  // A later reservation may have preempted an earlier member of the batch.
  batch.erase(std::remove_if(batch.begin(), batch.end(), [](Sequence* s) { return !s->in_batch; }), batch.end());
  return batch;
}

// One forward pass over the batch, then sampling, verification and MTP drafting for what it produced.
void Scheduler::run_batch(const std::vector<Sequence*>& batch) {
  std::vector<SequenceInput> inputs;
  bool want_hidden = false;
  for (Sequence* s : batch) {
    SequenceInput in;
    in.tokens = s->feed;
    in.n_cached = s->n_cached;
    in.block_table = s->blocks;
    in.all_logits = !s->draft.empty();
    inputs.push_back(in);
    want_hidden = want_hidden || uses_mtp(*s);
  }
  ForwardOptions fopt;
  fopt.return_hidden = want_hidden;
  // One token selection per logit row (a sequence with drafts has a row per fed token, else one): a prompt
  // chunk that does not end its prompt wants none; the last real token and each draft want the token drawn at
  // their position, whose history is the tokens so far plus the drafts before it (verification accepts a draft
  // iff that token is the draft, Sampler::verify's rule, so every row can be drawn before any is checked).
  std::vector<TokenSelect> selects;
  std::vector<std::vector<int32_t>> histories(options_.select_on_device ? batch.size() : 0);
  if (options_.select_on_device) {
    for (size_t i = 0; i < batch.size(); ++i) {
      const Sequence& s = *batch[i];
      const int64_t n_fed = static_cast<int64_t>(s.feed.size());
      const int64_t n_draft = static_cast<int64_t>(s.draft.size());
      const int64_t n_rows = inputs[i].all_logits ? n_fed : 1;
      const bool samples = s.n_cached + (n_fed - n_draft) >= s.T();
      std::vector<int32_t>& h = histories[i];
      if (samples) {
        h = s.tokens;
        h.insert(h.end(), s.draft.begin(), s.draft.end());
      }
      const int64_t base = n_rows - 1 - n_draft;  // the row of the last real token
      for (int64_t r = 0; r < n_rows; ++r) {
        TokenSelect t;
        if (samples && r >= base) {
          t.params = &s.sampler.params();
          t.history = std::span<const int32_t>(h.data(), s.tokens.size() + static_cast<size_t>(r - base));
        }
        selects.push_back(t);
      }
    }
    fopt.select = selects;
  }
  auto res = model_.forward(inputs, cache_, fopt);
  ++stats_.steps;
  if (!res.ok()) {
    LATENT_LOG_ERROR("scheduler: forward failed: %s", res.error().to_string().c_str());
    for (Sequence* s : batch) fail(*s, res.error());
    sweep_finished();
    return;
  }
  if (!selects.empty() && res->ids.empty()) {  // a ServingModel that returns logits only (test doubles)
    select_on_host(res->logits.data(), res->vocab_size, selects, &res->ids);
  }
  const ForwardResult& out = *res;
  const int64_t vocab = out.vocab_size;
  std::vector<Sequence*> mtp_seqs;
  for (size_t i = 0; i < batch.size(); ++i) {
    Sequence& s = *batch[i];
    s.in_batch = false;
    const int64_t n_fed = static_cast<int64_t>(s.feed.size());
    const int64_t n_draft = static_cast<int64_t>(s.draft.size());
    const int64_t n_real = n_fed - n_draft;
    s.usage.forward_tokens += static_cast<int>(n_fed);
    stats_.forward_tokens += n_fed;
    const int64_t old_cached = s.n_cached;
    auto row = [&](int64_t r) {
      return std::span<const float>(out.logits_row(out.logit_offset[i] + r), static_cast<size_t>(vocab));
    };
    int64_t valid = n_real;  // fed tokens whose latents are now part of the sequence
    bool alive = true;
    if (old_cached + n_real < s.T()) {
      s.n_cached += n_real;  // a prompt chunk: nothing to sample yet
    } else {
      std::vector<int32_t> accepted;
      std::vector<int32_t> history = s.tokens;
      const int64_t base = n_draft > 0 ? n_real - 1 : 0;  // row of the last real token
      int32_t tok = 0;
      int64_t a = 0;
      auto selected = [&](int64_t r) { return out.ids[static_cast<size_t>(out.logit_offset[i] + r)]; };
      for (; a < n_draft; ++a) {
        const int32_t draft = s.draft[static_cast<size_t>(a)];
        bool ok;
        if (options_.select_on_device) {
          tok = selected(base + a);
          ok = tok == draft;
        } else {
          ok = s.sampler.verify(row(base + a), history, draft, &tok);
        }
        accepted.push_back(tok);
        history.push_back(tok);
        if (!ok) break;
      }
      if (a == n_draft) {
        accepted.push_back(options_.select_on_device ? selected(base + n_draft)
                                                     : s.sampler.sample(row(base + n_draft), history));
      }
      s.usage.drafted_tokens += static_cast<int>(n_draft);
      s.usage.accepted_tokens += static_cast<int>(a);
      if (s.draft_is_mtp) {
        s.mtp_drafted += static_cast<int>(n_draft);
        s.mtp_accepted += static_cast<int>(a);
        // Auto mode: MTP drafts cost a module forward each; stop when they are rarely right (e.g. a model whose
        // MTP head does not match its weights). Explicit --spec mtp keeps drafting.
        if (s.req.spec.mode == SpecMode::kAuto && s.mtp_drafted >= kAutoMtpProbe &&
            s.mtp_accepted * 4 < s.mtp_drafted) {
          s.mtp_off = true;
          s.hidden.clear();
          s.mtp_chain.clear();
        }
      }
      stats_.drafted += n_draft;
      stats_.accepted += a;
      valid = n_real + a;
      s.n_cached = old_cached + valid;
      alive = apply_tokens(s, accepted);
    }
    if (!alive) continue;
    if (uses_mtp(s)) {
      const int64_t hd = out.hidden_size;
      const float* h = out.hidden_row(out.token_offset[i]);
      s.hidden.insert(s.hidden.end(), h, h + valid * hd);
      mtp_seqs.push_back(&s);
    }
  }
  if (!mtp_seqs.empty()) run_mtp(mtp_seqs);
  sweep_finished();
}

void Scheduler::run_mtp(std::vector<Sequence*>& seqs) {
  // Catch up: slot i needs the hidden state at position i (< n_cached) and token i+1 (< T).
  std::vector<MtpSequenceInput> inputs;
  std::vector<std::vector<int32_t>> next(seqs.size());
  std::vector<int64_t> ends(seqs.size());
  std::vector<Sequence*> used;
  for (size_t i = 0; i < seqs.size(); ++i) {
    Sequence& s = *seqs[i];
    const int64_t end = std::min(s.n_cached, s.T() - 1);
    ends[i] = end;
    if (end <= s.n_mtp) continue;
    next[i].assign(s.tokens.begin() + s.n_mtp + 1, s.tokens.begin() + end + 1);
    MtpSequenceInput in;
    in.next_tokens = next[i];
    in.hidden = s.hidden.data();
    in.n_cached = s.n_mtp;
    in.block_table = s.blocks;
    inputs.push_back(in);
    used.push_back(&s);
  }
  if (inputs.empty()) return;
  // A draft is the MTP head's argmax: selected where the logits are (a greedy selection per row), unless the
  // model returned logits (test doubles, select_on_device off).
  static const SamplingParams kGreedy;
  const std::vector<TokenSelect> greedy(std::max(inputs.size(), seqs.size()), TokenSelect{&kGreedy, {}});
  auto draft_of = [&](const ForwardResult& r, size_t k) {
    if (!r.ids.empty()) return r.ids[static_cast<size_t>(r.logit_offset[k])];
    return argmax(std::span<const float>(r.logits_row(r.logit_offset[k]), static_cast<size_t>(r.vocab_size)));
  };
  ForwardOptions fopt;
  fopt.return_hidden = true;
  if (options_.select_on_device) fopt.select = std::span<const TokenSelect>(greedy.data(), inputs.size());
  auto res = model_.forward_mtp(inputs, cache_, fopt);
  if (!res.ok()) {
    for (Sequence* s : used) fail(*s, res.error());
    return;
  }
  // Chain: slot c + j - 2 takes draft j-1 and the MTP module's own last hidden state (a stand-in for the
  // main model's, which is not known yet); these slots are overwritten once the real tokens are verified.
  std::vector<Sequence*> chain;
  std::vector<std::vector<float>> chain_hidden;
  const int64_t hd = res->hidden_size;
  for (size_t k = 0; k < used.size(); ++k) {
    Sequence& s = *used[k];
    size_t idx = static_cast<size_t>(std::find(seqs.begin(), seqs.end(), &s) - seqs.begin());
    const int64_t fed = ends[idx] - s.n_mtp;
    stats_.mtp_tokens += fed;
    s.hidden.erase(s.hidden.begin(), s.hidden.begin() + fed * hd);
    s.n_mtp = ends[idx];
    s.mtp_chain.clear();
    if (!s.decoding()) continue;
    s.mtp_chain.push_back(draft_of(*res, k));
    if (s.req.spec.mtp_depth > 1) {
      const float* h = res->hidden_row(res->token_offset[k + 1] - 1);
      chain.push_back(&s);
      chain_hidden.emplace_back(h, h + hd);
    }
  }
  for (int depth = 2; !chain.empty(); ++depth) {
    std::vector<MtpSequenceInput> in(chain.size());
    for (size_t k = 0; k < chain.size(); ++k) {
      Sequence& s = *chain[k];
      in[k].next_tokens = std::span<const int32_t>(&s.mtp_chain.back(), 1);
      in[k].hidden = chain_hidden[k].data();
      in[k].n_cached = s.n_cached + depth - 2;
      in[k].block_table = s.blocks;
    }
    if (options_.select_on_device) fopt.select = std::span<const TokenSelect>(greedy.data(), in.size());
    auto r = model_.forward_mtp(in, cache_, fopt);
    if (!r.ok()) break;  // drafts are optional: verify what we have
    std::vector<Sequence*> more;
    std::vector<std::vector<float>> more_hidden;
    for (size_t k = 0; k < chain.size(); ++k) {
      Sequence& s = *chain[k];
      stats_.mtp_tokens += 1;
      s.mtp_chain.push_back(draft_of(*r, k));
      if (depth < s.req.spec.mtp_depth) {
        const float* h = r->hidden_row(r->token_offset[k]);
        more.push_back(&s);
        more_hidden.emplace_back(h, h + hd);
      }
    }
    chain.swap(more);
    chain_hidden.swap(more_hidden);
  }
}

void Scheduler::run_until_idle() {
  while (has_work()) step();
}

// ---------------------------------------------------------------- EngineThread

EngineThread::EngineThread(Scheduler& scheduler) : scheduler_(scheduler) {
  thread_ = std::thread([this] {
    while (!stop_.load()) {
      if (!scheduler_.step()) scheduler_.wait_for_work(std::chrono::milliseconds(50));
    }
  });
}

EngineThread::~EngineThread() { stop(); }

void EngineThread::stop() {
  stop_.store(true);
  scheduler_.notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace latent
