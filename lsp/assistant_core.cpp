#include "lsp/assistant_core.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>

#include "kernels/base/log.h"
#include "lsp/postprocess.h"
#include "lsp/type_through.h"

namespace latent::lsp {

// One generation (a backend job) and the client request that listens to it now. Type-through moves a
// generation from one request to the next: `typed` is what the user typed since it started, which the
// listener's text leaves out.
//
// With the syntax check on, `shown` is what the check let through (whole lines while streaming, the verdict at
// the end) and `prediction` the post-processed text before the check: keystrokes are matched against the
// prediction (what the model meant to write), the listener only ever gets checked text.
struct AssistantCore::Job {
  std::mutex mu;
  bool ended = false;             // the generation is over (have_final: its text is kept) or stopped
  bool have_final = false;
  std::string uri;
  CompletionBackend::Handle handle = 0;
  bool started = false;
  std::shared_ptr<const std::string> text;  // the document when it started
  size_t offset = 0;                        // the cursor then
  std::string raw;
  std::string line_prefix;
  std::string suffix;
  std::string shown;              // checked text so far (final_text once it has one)
  std::string prediction;         // post-processed text so far, before the check (final_text once it has one)
  std::string final_text;
  std::unique_ptr<SyntaxChecker> checker;  // null: the check is off
  size_t checked_newlines = 0;             // raw's newlines when it was last checked while streaming
  bool degenerated = false;                // the streaming check saw a loop: stop decoding
  double check_micros = 0;                 // all streaming checks of this completion
  size_t check_parses = 0;
  std::optional<SyntaxVerdict> syntax;     // the final verdict
  // rank: the sampled candidates decoded beside this (the greedy) one; the job answers once all are over.
  struct Candidate {
    std::string raw;
    CompletionBackend::Handle handle = 0;
    bool started = false;
    bool over = false;      // ended, stopped at its block end or at a loop, or failed
    bool ok = false;        // ... with text to judge
    size_t newlines = 0;
    bool continuation = false;  // decoded after the first round's best text (`raw` starts with it)
  };
  std::vector<Candidate> candidates;
  CompletionJob rank_base;                 // rank: the candidates' prompt and keys (continuation extends it)
  bool continued = false;                  // the continuation round was considered
  std::vector<std::pair<size_t, CompletionJob>> pending;  // prepared continuation candidates, to start
  std::weak_ptr<Job> self;
  bool primary_over = false;               // the greedy candidate is over (rank: the others may still decode)
  CompletionUsage usage;
  size_t context_tokens = 0;
  std::chrono::steady_clock::time_point t0;
  // From the request's arrival: context built, first text from the engine (ns; 0 = not yet). Atomic: the
  // usage report reads them without the job's lock.
  std::chrono::steady_clock::time_point t_request;
  std::atomic<int64_t> context_ns{0}, first_text_ns{0};
  // The listening request (ticket 0: none; the generation goes on until the next keystroke decides).
  Ticket ticket = 0;
  std::string typed;
  OnPartial on_partial;
  OnDone on_done;
};

namespace {

bool is_degeneration(const SyntaxVerdict& v) {
  for (const auto& r : v.rules) {
    if (r == "repeated_lines" || r == "repeated_line" || r == "repeated_ngram" || r == "runaway_docstring") return true;
  }
  return false;
}

// Streaming (job locked): the text to show for post-processed `pp`. Only whole lines that passed the check are
// shown (re-checked when a line ends); a loop stops the decoder.
std::string checked_partial(AssistantCore::Job& j, const std::string& pp) {
  if (!j.checker) return pp;
  size_t newlines = static_cast<size_t>(std::count(j.raw.begin(), j.raw.end(), '\n'));
  if (newlines == j.checked_newlines) return j.shown;
  j.checked_newlines = newlines;
  std::string whole = j.raw.substr(0, j.raw.rfind('\n') + 1);
  auto lines = postprocess_completion(whole, j.line_prefix, j.suffix, /*final=*/false);
  auto v = j.checker->check(lines.text, /*final=*/true);  // whole lines only
  j.check_micros += v.micros;
  j.check_parses += v.parses;
  j.degenerated = is_degeneration(v);
  return v.text;
}

}  // namespace

SyntaxMode AssistantCore::syntax_mode() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syntax_mode_;
}

void AssistantCore::set_syntax_mode(SyntaxMode mode) {
  std::lock_guard<std::mutex> lock(mu_);
  syntax_mode_ = mode;
}

std::optional<SyntaxVerdict> AssistantCore::last_syntax(const std::string& uri) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_syntax_.find(uri);
  if (it == last_syntax_.end()) return std::nullopt;
  return it->second;
}

AssistantCore::AssistantCore(AssistantOptions options, CompletionBackend* backend)
    : options_(options), backend_(backend), documents_(options.exact_trees), index_(options.index),
      builder_(index_, options.context),
      syntax_mode_(options.syntax) {
  static std::atomic<uint64_t> instances{0};
  doc_key_prefix_ = "core" + std::to_string(++instances) + ":";
  if (backend_ && backend_->count_tokens("x")) {
    builder_.set_token_counter([b = backend_](std::string_view t) {
      auto n = b->count_tokens(t);
      return n ? *n : estimate_tokens(t);
    });
  }
}

AssistantCore::~AssistantCore() {
  std::vector<Ticket> tickets;
  std::vector<std::string> uris;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [t, j] : jobs_) tickets.push_back(t);
    for (const auto& [u, j] : generations_) uris.push_back(u);
  }
  for (Ticket t : tickets) cancel(t);
  for (const auto& u : uris) drop_generation(u, nullptr);
  quiesce();
}

Status AssistantCore::open(const std::string& uri, const std::string& language_id, int version, std::string text) {
  LATENT_RETURN_IF_ERROR(documents_.open(uri, language_id, version, std::move(text)));
  documents_.with_document(uri, [&](const Document& d) {
    if (d.language()) index_.update_document(d.path(), *d.language(), d.tree(), d.text());
  });
  return Status::Ok();
}

Status AssistantCore::change(const std::string& uri, int version, const std::vector<ContentChange>& changes,
                             PositionEncoding enc) {
  LATENT_RETURN_IF_ERROR(documents_.change(uri, version, changes, enc));
  // A keystroke that is not what the document's suggestion predicted stops its generation at once.
  if (auto snap = documents_.snapshot(uri)) drop_generation(uri, snap->text.get());
  auto now = std::chrono::steady_clock::now();
  auto& last = reindexed_[uri];
  if (now - last >= kReindexInterval) {
    last = now;
    if (auto snap = documents_.snapshot(uri)) index_.update_document_async(std::move(snap));
  }
  return Status::Ok();
}

Status AssistantCore::close(const std::string& uri) {
  auto snap = documents_.snapshot(uri);
  LATENT_RETURN_IF_ERROR(documents_.close(uri));
  reindexed_.erase(uri);
  memos_.erase(uri);
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_syntax_.erase(uri);
  }
  if (snap) {
    if (snap->language) index_.update_document(snap->path, *snap->language, snap->tree, *snap->text);
    recent_.push_front(std::move(snap));
    if (recent_.size() > options_.recent_files) recent_.pop_back();
  }
  drop_generation(uri, nullptr);
  return Status::Ok();
}

Status AssistantCore::save(const std::string& uri) {
  bool found = documents_.with_document(uri, [&](const Document& d) {
    if (d.language()) index_.update_document(d.path(), *d.language(), d.tree(), d.text());
  });
  if (!found) return make_error(ErrorCode::kNotFound, "didSave: expected an open document, found none for " + uri);
  return Status::Ok();
}

namespace {

// The absolute, symlink-free form of a client-supplied path, or an empty string (with the reason in *why) when
// it is not an absolute file path. Paths that do not exist (yet, or any more) resolve as far as they exist.
std::string resolve_client_path(const std::string& path, std::string* why) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  if (path.empty() || !p.is_absolute()) {
    *why = "expected an absolute path (a file:// URI), found '" + path + "'";
    return {};
  }
  std::error_code ec;
  fs::path real = fs::weakly_canonical(p, ec);
  if (ec) {
    *why = "cannot resolve it: " + ec.message();
    return {};
  }
  std::string s = real.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

void AssistantCore::add_workspace_folder(const std::string& path) {
  std::string why;
  const std::string real = resolve_client_path(path, &why);
  std::error_code ec;
  if (real.empty()) {
    LATENT_LOG_WARN("workspace folder %s refused: %s", path.c_str(), why.c_str());
    return;
  }
  if (!std::filesystem::is_directory(real, ec)) {
    LATENT_LOG_WARN("workspace folder %s refused: expected a directory, found none", path.c_str());
    return;
  }
  index_.add_root(real);
}

void AssistantCore::remove_workspace_folder(const std::string& path) {
  std::string why;
  const std::string real = resolve_client_path(path, &why);
  if (!real.empty()) index_.remove_root(real);
}

void AssistantCore::watched_file_changed(const std::string& path, bool deleted) {
  bool open = false;
  for (const auto& s : documents_.all_snapshots()) open |= s->path == path;
  if (open) return;  // the editor's buffer is the truth for open files
  // Only files under the folders the client opened are indexed: a watcher event naming /etc/passwd, or
  // ROOT/../secret, or a symlink out of the folder, is refused.
  std::string why;
  const std::string real = resolve_client_path(path, &why);
  if (real.empty()) {
    LATENT_LOG_WARN("didChangeWatchedFiles: %s refused: %s", path.c_str(), why.c_str());
    return;
  }
  if (!index_.contains(real)) {
    LATENT_LOG_WARN("didChangeWatchedFiles: %s refused: it lies outside the workspace folders", path.c_str());
    return;
  }
  if (deleted) {
    index_.file_deleted(real);
  } else {
    index_.file_changed(real);
  }
}

std::vector<const Snapshot*> AssistantCore::others(const std::vector<std::unique_ptr<Snapshot>>& open,
                                                   const std::string& uri) const {
  std::vector<const Snapshot*> out;
  for (const auto& s : open) {
    if (s->uri != uri) out.push_back(s.get());
  }
  for (const auto& s : recent_) {
    bool reopened = false;
    for (const auto& o : open) reopened |= o->uri == s->uri;
    if (!reopened) out.push_back(s.get());
  }
  return out;
}

Result<PromptContext> AssistantCore::context_at(const std::string& uri, Position pos, PositionEncoding enc) const {
  auto open = documents_.all_snapshots();
  const Snapshot* doc = nullptr;
  for (const auto& s : open) {
    if (s->uri == uri) doc = s.get();
  }
  if (!doc) return make_error(ErrorCode::kNotFound, "expected an open document, found none for " + uri);
  size_t offset = offset_of(*doc->text, pos, enc);
  auto memo = memos_.find(uri);
  ContextMemo copy = memo == memos_.end() ? ContextMemo{} : memo->second;  // explaining changes nothing
  auto time = time_limit();
  return builder_.build(*doc, offset, others(open, uri), &copy, time ? &*time : nullptr);
}

std::optional<TimeLimit> AssistantCore::time_limit() const {
  if (!backend_ || options_.time_budget.count() <= 0) return std::nullopt;
  auto cost = backend_->prefill_cost();
  if (!cost || cost->per_token_ms <= 0) return std::nullopt;
  const double allowed_ms = static_cast<double>(options_.time_budget.count()) * options_.prefill_share;
  const double fit = (allowed_ms - cost->fixed_ms) / cost->per_token_ms;
  const size_t tokens = std::max(options_.min_time_tokens, fit > 0 ? static_cast<size_t>(fit) : size_t{0});
  char why[200];
  std::snprintf(why, sizeof why, "prefill measured at %.3f ms/token + %.1f ms lets %zu tokens through in %.0f ms, %.0f%% of the %lld ms budget%s",
                cost->per_token_ms, cost->fixed_ms, tokens, allowed_ms, options_.prefill_share * 100,
                static_cast<long long>(options_.time_budget.count()),
                tokens == options_.min_time_tokens ? " (the floor)" : "");
  return TimeLimit{tokens, why};
}

Result<AssistantCore::Ticket> AssistantCore::complete(const CompletionRequest& request, OnPartial on_partial,
                                                      OnDone on_done) {
  if (!backend_) {
    return make_error(ErrorCode::kUnsupported,
                      "no model is loaded: start latentd with --model DIR to get completions");
  }
  const auto t_request = std::chrono::steady_clock::now();
  auto open = documents_.all_snapshots();
  const Snapshot* doc = nullptr;
  for (const auto& s : open) {
    if (s->uri == request.uri) doc = s.get();
  }
  if (!doc) return make_error(ErrorCode::kInvalidArgument, "expected an open document, found none for " + request.uri);
  const std::string& text = *doc->text;
  size_t offset = offset_of(text, request.position, request.encoding);

  // Type-through: the user typed what the document's generation predicted; it serves this request too.
  std::shared_ptr<Job> prev;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = generations_.find(request.uri);
    if (it != generations_.end()) prev = it->second;
  }
  if (prev) {
    std::optional<Ticket> t;
    if (options_.type_through) t = adopt(prev, doc->text, offset, request, on_partial, on_done);
    if (t) return *t;
    drop_generation(request.uri, nullptr);  // superseded
  }

  auto time = time_limit();
  PromptContext ctx = builder_.build(*doc, offset, others(open, request.uri), &memos_[request.uri],
                                     time ? &*time : nullptr);
  const int max_tokens = request.max_tokens > 0 ? request.max_tokens : options_.max_tokens;
  if (auto limit = backend_->context_length(); limit && ctx.prompt_tokens + static_cast<size_t>(max_tokens) > *limit) {
    return make_error(ErrorCode::kInvalidArgument,
                      "completion: expected prompt + maxTokens <= " + std::to_string(*limit) +
                          " tokens (what the model's cache holds), found " + std::to_string(ctx.prompt_tokens) +
                          " + " + std::to_string(max_tokens) + ": lower the context budget or maxTokens, or give "
                          "latentd a larger --cache-mb");
  }
  auto job = std::make_shared<Job>();
  job->uri = request.uri;
  job->text = doc->text;
  job->offset = offset;
  size_t ls = offset == 0 ? 0 : text.rfind('\n', offset - 1);
  ls = (offset == 0 || ls == std::string::npos) ? 0 : ls + 1;
  job->line_prefix = text.substr(ls, offset - ls);
  job->suffix = text.substr(offset, 4096);
  job->context_tokens = ctx.prompt_tokens;
  if (syntax_mode() != SyntaxMode::kOff) {
    // The document's own tree is the tree of prefix + suffix: the check only re-parses around the insertion.
    job->checker = std::make_unique<SyntaxChecker>(doc->language, text.substr(0, offset), text.substr(offset),
                                                   SyntaxCheckOptions{}, doc->tree);
  }
  const int n = job->checker && syntax_mode() == SyntaxMode::kRank ? std::max(1, options_.rank_candidates) : 1;
  job->candidates.resize(static_cast<size_t>(n - 1));
  job->self = job;
  job->t0 = std::chrono::steady_clock::now();
  job->t_request = t_request;
  job->context_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(job->t0 - t_request).count();
  job->on_partial = std::move(on_partial);
  job->on_done = std::move(on_done);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->ticket = next_ticket_++;
    jobs_[job->ticket] = job;
    generations_[request.uri] = job;
  }
  const Ticket ticket = job->ticket;

  CompletionJob cj;
  cj.fim = std::move(ctx.fim);
  cj.prompt = std::move(ctx.prompt);
  cj.doc_key = doc_key_prefix_ + request.uri;  // supersedes only this connection's own completions
  cj.priority = 10;
  cj.tenant = options_.tenant;
  cj.tenant_weight = options_.tenant_weight;
  cj.max_tokens = max_tokens;
  cj.time_budget = options_.time_budget;
  std::weak_ptr<Job> weak = job;
  CompletionJob base = job->candidates.empty() ? CompletionJob{} : cj;
  if (request.on_usage && !job->candidates.empty()) {  // every candidate's and continuation round's account too
    base.on_usage = [report = request.on_usage](const CompletionUsage& engine) {
      CompletionUsage u = engine;
      u.candidate = true;
      report(u);
    };
  }
  job->rank_base = base;
  if (request.on_usage) {
    cj.on_usage = [weak, report = request.on_usage](const CompletionUsage& engine) {
      CompletionUsage u = engine;
      if (auto j = weak.lock()) {
        u.context_ms = static_cast<double>(j->context_ns.load()) / 1e6;
        u.first_text_ms = static_cast<double>(j->first_text_ns.load()) / 1e6;
      }
      report(u);
    };
  }
  auto handle = backend_->start(
      std::move(cj),
      [this, weak](std::string_view delta) {
        if (auto j = weak.lock()) on_delta(*j, delta);
      },
      [this, weak](Result<CompletionUsage> usage) {
        if (auto j = weak.lock()) on_end(*j, std::move(usage));
      });
  {
    std::lock_guard<std::mutex> lock(job->mu);
    job->handle = handle;
    job->started = true;
    // It ended (block end) or was dropped during start(): stop it now that there is a handle.
    if (job->ended || job->primary_over) backend_->cancel(handle);
  }
  // rank: the sampled candidates (same prompt: the engine batches them with the greedy one and shares the
  // prompt's cache blocks), each under a key of its own so that they do not supersede one another.
  for (size_t k = 0; k < job->candidates.size(); ++k) {
    CompletionJob ck = base;
    ck.sample = static_cast<int>(k + 1);
    ck.doc_key = base.doc_key + "#" + std::to_string(k + 1);
    auto h = backend_->start(
        std::move(ck),
        [this, weak, k](std::string_view delta) {
          if (auto j = weak.lock()) on_candidate_delta(*j, k, delta);
        },
        [this, weak, k](Result<CompletionUsage> usage) {
          if (auto j = weak.lock()) on_candidate_end(*j, k, usage.ok());
        });
    std::lock_guard<std::mutex> lock(job->mu);
    auto& c = job->candidates[k];
    c.handle = h;
    c.started = true;
    if (c.over || job->ended) backend_->cancel(h);
  }
  return ticket;
}

std::optional<AssistantCore::Ticket> AssistantCore::adopt(const std::shared_ptr<Job>& job,
                                                          const std::shared_ptr<const std::string>& text,
                                                          size_t offset, const CompletionRequest& request,
                                                          OnPartial& on_partial, OnDone& on_done) {
  std::lock_guard<std::mutex> job_lock(job->mu);
  if (job->ended && !job->have_final) return std::nullopt;  // stopped
  auto typed = inserted_at(*job->text, job->offset, *text);
  if (!typed || offset != job->offset + typed->size() || !predicted(job->prediction, *typed)) return std::nullopt;
  // A finished suggestion serves what is typed into it (an unchanged document is the client's cache to serve),
  // as long as something is left to suggest.
  if (job->have_final && (typed->empty() || job->final_text.size() <= typed->size())) return std::nullopt;
  answer(*job, make_error(ErrorCode::kCancelled, "superseded by a newer completion of the same document"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->ticket = next_ticket_++;
    jobs_[job->ticket] = job;
  }
  job->typed = std::move(*typed);
  job->on_partial = std::move(on_partial);
  job->on_done = std::move(on_done);
  ++type_throughs_;
  if (request.on_usage) {  // no prompt, no model step
    CompletionUsage u;
    u.finish_reason = "type_through";
    request.on_usage(u);
  }
  const Ticket ticket = job->ticket;
  if (job->have_final) {
    answer(*job, outcome(*job));
  } else if (job->shown.size() > job->typed.size() && predicted(job->shown, job->typed) && job->on_partial) {
    job->on_partial(job->shown.substr(job->typed.size()));
  }
  return ticket;
}

void AssistantCore::drop_generation(const std::string& uri, const std::string* now) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = generations_.find(uri);
    if (it == generations_.end()) return;
    job = it->second;
  }
  std::lock_guard<std::mutex> job_lock(job->mu);
  if (now && !(job->ended && !job->have_final)) {
    auto typed = inserted_at(*job->text, job->offset, *now);
    if (typed && predicted(job->prediction, *typed)) return;  // typed through: keep it for the next request
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = generations_.find(uri);
    if (it != generations_.end() && it->second == job) generations_.erase(it);
  }
  answer(*job, make_error(ErrorCode::kCancelled, "superseded by a newer completion of the same document"));
  if (!job->ended) {
    job->ended = true;
    stop_decoding(*job);
  }
}

CompletionOutcome AssistantCore::outcome(const Job& job) const {
  CompletionOutcome out;
  out.raw = job.raw;
  out.text = predicted(job.final_text, job.typed) ? job.final_text.substr(job.typed.size()) : std::string();
  out.context_tokens = job.context_tokens;
  out.usage = job.usage;
  out.syntax = job.syntax;
  return out;
}

SyntaxVerdict AssistantCore::best_verdict(Job& job) {
  SyntaxVerdict v = job.checker->check(job.final_text, /*final=*/true);
  // rank: the best verdict over the candidates (the greedy one wins a tie). Text the user typed through
  // since the start must be where each shown candidate begins.
  if (job.candidates.empty()) return v;
  v.candidates = static_cast<int>(job.candidates.size()) + 1;
  bool continuation = false;
  for (size_t k = 0; k < job.candidates.size(); ++k) {
    const auto& c = job.candidates[k];
    if (!c.ok) continue;
    std::string text = postprocess_completion(c.raw, job.line_prefix, job.suffix, /*final=*/true).text;
    if (!predicted(text, job.typed)) continue;
    SyntaxVerdict w = job.checker->check(text, /*final=*/true);
    v.micros += w.micros;
    v.parses += w.parses;
    if (better_candidate(w, v)) {
      w.micros = v.micros;
      w.parses = v.parses;
      w.candidates = v.candidates;
      w.chosen = static_cast<int>(k) + 1;
      v = std::move(w);
      continuation = c.continuation;
    }
  }
  if (continuation) v.rules.push_back("continued");
  return v;
}

void AssistantCore::finalize(Job& job) {
  job.final_text = postprocess_completion(job.raw, job.line_prefix, job.suffix, /*final=*/true).text;
  if (job.checker) {
    SyntaxVerdict v = best_verdict(job);
    v.micros += job.check_micros;
    v.parses += job.check_parses;
    job.final_text = v.text;
    if (options_.syntax_stats) options_.syntax_stats->record(v);
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_syntax_[job.uri] = v;
    }
    job.syntax = std::move(v);
  }
  job.shown = job.final_text;
  job.prediction = job.final_text;
  job.have_final = true;
}

void AssistantCore::on_delta(Job& job, std::string_view delta) {
  std::unique_lock<std::mutex> job_lock(job.mu);
  if (job.ended || job.primary_over) return;
  if (job.first_text_ns.load() == 0 && !delta.empty()) {
    job.first_text_ns = std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - job.t_request).count());
  }
  job.raw.append(delta);
  auto pp = postprocess_completion(job.raw, job.line_prefix, job.suffix, /*final=*/false);
  job.prediction = pp.text;
  std::string shown = checked_partial(job, pp.text);
  if (shown != job.shown) {
    job.shown = std::move(shown);
    if (job.ticket != 0 && job.on_partial && job.shown.size() > job.typed.size() && predicted(job.shown, job.typed)) {
      job.on_partial(job.shown.substr(job.typed.size()));
    }
  }
  if (!pp.complete && !job.degenerated) return;
  // The block ended (or the text loops): stop decoding and answer now (rank: once the others are over too).
  job.usage.finish_reason = job.degenerated ? "loop" : "block_end";
  job.usage.milliseconds =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - job.t0).count();
  if (job.started && backend_) backend_->cancel(job.handle);
  if (!primary_over(job)) return;
  job_lock.unlock();
  start_continuation(job);
}

void AssistantCore::on_end(Job& job, Result<CompletionUsage> usage) {
  std::unique_lock<std::mutex> job_lock(job.mu);
  if (job.ended || job.primary_over) return;
  if (!usage.ok()) {
    job.ended = true;
    stop_decoding(job);
    answer(job, usage.error());
    return;
  }
  job.usage = *usage;
  if (!primary_over(job)) return;
  job_lock.unlock();
  start_continuation(job);
}

bool AssistantCore::primary_over(Job& job) {
  job.primary_over = true;
  return finish_if_all_over(job);
}

bool AssistantCore::finish_if_all_over(Job& job) {
  if (job.ended || !job.primary_over) return false;
  for (const auto& c : job.candidates) {
    if (!c.over) return false;
  }
  if (prepare_continuation(job)) return true;
  finalize(job);
  job.ended = true;
  if (!job.candidates.empty()) {  // the wait for the slowest candidate counts
    job.usage.milliseconds =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - job.t0).count();
  }
  answer(job, outcome(job));
  return false;
}

bool AssistantCore::prepare_continuation(Job& job) {
  if (job.continued || job.candidates.empty() || !job.checker || !backend_ || !options_.continue_after_text) {
    return false;
  }
  job.continued = true;
  const auto budget = job.rank_base.time_budget;
  const auto left = budget - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - job.t0);
  if (left < budget / 4) return false;
  job.final_text = postprocess_completion(job.raw, job.line_prefix, job.suffix, /*final=*/true).text;
  SyntaxVerdict v = best_verdict(job);
  job.check_micros += v.micros;
  job.check_parses += v.parses;
  if (v.action == SyntaxAction::kRefused || v.text.empty() || v.has_code || !predicted(v.text, job.typed)) {
    return false;
  }
  // Decode on after the text (its open string or docstring closed): the next line is the model's again.
  const std::string lead = v.text + "\n";
  const size_t n = job.candidates.size() + 1;
  for (size_t k = 0; k < n; ++k) {
    Job::Candidate c;
    c.raw = lead;
    c.newlines = static_cast<size_t>(std::count(lead.begin(), lead.end(), '\n'));
    c.continuation = true;
    job.candidates.push_back(std::move(c));
    CompletionJob ck = job.rank_base;
    ck.fim.prefix += lead;
    ck.prompt = render_fim(ck.fim);
    ck.sample = static_cast<int>(k);  // 0: greedy
    ck.doc_key = job.rank_base.doc_key + "#c" + std::to_string(k);
    ck.time_budget = left;
    job.pending.emplace_back(job.candidates.size() - 1, std::move(ck));
  }
  return true;
}

void AssistantCore::start_continuation(Job& job) {
  std::vector<std::pair<size_t, CompletionJob>> todo;
  {
    std::lock_guard<std::mutex> lock(job.mu);
    todo.swap(job.pending);
  }
  std::weak_ptr<Job> weak = job.self;
  for (auto& [k, ck] : todo) {
    auto h = backend_->start(
        std::move(ck),
        [this, weak, k = k](std::string_view delta) {
          if (auto j = weak.lock()) on_candidate_delta(*j, k, delta);
        },
        [this, weak, k = k](Result<CompletionUsage> usage) {
          if (auto j = weak.lock()) on_candidate_end(*j, k, usage.ok());
        });
    std::lock_guard<std::mutex> lock(job.mu);
    auto& c = job.candidates[k];
    c.handle = h;
    c.started = true;
    if (c.over || job.ended) backend_->cancel(h);
  }
}

void AssistantCore::stop_decoding(Job& job) {
  if (!backend_) return;
  if (job.started && !job.primary_over) backend_->cancel(job.handle);
  for (auto& c : job.candidates) {
    if (c.started && !c.over) backend_->cancel(c.handle);
    c.over = true;
  }
}

void AssistantCore::on_candidate_delta(Job& job, size_t k, std::string_view delta) {
  std::unique_lock<std::mutex> job_lock(job.mu);
  auto& c = job.candidates[k];
  if (job.ended || c.over) return;
  c.raw.append(delta);
  // At each new line: its block ended, or it loops (a scan, no parse): this candidate is over.
  size_t newlines = static_cast<size_t>(std::count(c.raw.begin(), c.raw.end(), '\n'));
  if (newlines == c.newlines) return;
  c.newlines = newlines;
  auto t0 = std::chrono::steady_clock::now();
  auto pp = postprocess_completion(c.raw, job.line_prefix, job.suffix, /*final=*/false);
  const bool loops = job.checker->scan(pp.text, /*final=*/false).found();
  job.check_micros += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  if (!pp.complete && !loops) return;
  c.over = true;
  c.ok = true;
  if (c.started && backend_) backend_->cancel(c.handle);
  if (!finish_if_all_over(job)) return;
  job_lock.unlock();
  start_continuation(job);
}

void AssistantCore::on_candidate_end(Job& job, size_t k, bool ok) {
  std::unique_lock<std::mutex> job_lock(job.mu);
  auto& c = job.candidates[k];
  if (job.ended || c.over) return;
  c.over = true;
  c.ok = ok;
  if (!finish_if_all_over(job)) return;
  job_lock.unlock();
  start_continuation(job);
}

// With job.mu held: ends the listening request with `result` (on_done runs under the job's lock, so that once
// cancel() has seen the listener gone, none of its callbacks is running or will run); finishing_ counts the
// answers in progress for quiesce().
void AssistantCore::answer(Job& job, Result<CompletionOutcome> result) {
  if (job.ticket == 0) return;
  OnDone done = std::move(job.on_done);
  job.on_done = nullptr;
  job.on_partial = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.erase(job.ticket);
    ++finishing_;
  }
  job.ticket = 0;
  if (done) done(std::move(result));
  std::lock_guard<std::mutex> lock(mu_);
  --finishing_;
  idle_cv_.notify_all();
}

void AssistantCore::quiesce() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return finishing_ == 0; });
}

void AssistantCore::cancel(Ticket ticket) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(ticket);
    if (it == jobs_.end()) return;
    job = it->second;
  }
  std::lock_guard<std::mutex> job_lock(job->mu);
  if (job->ticket != ticket) return;
  answer(*job, make_error(ErrorCode::kCancelled, "cancelled by the client"));
  // The document's current generation goes on without a listener: the next keystroke keeps it (type-through)
  // or stops it (change(), complete()). Any other stops now.
  bool current = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = generations_.find(job->uri);
    current = it != generations_.end() && it->second == job;
  }
  if ((!current || !options_.type_through) && !job->ended) {
    job->ended = true;
    stop_decoding(*job);
  }
}

size_t AssistantCore::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

}  // namespace latent::lsp
