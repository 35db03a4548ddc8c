#include "lsp/assistant_core.h"

#include <filesystem>

#include "kernels/base/log.h"
#include "lsp/postprocess.h"

namespace latent::lsp {

struct AssistantCore::Job {
  std::mutex mu;
  bool finished = false;
  Ticket ticket = 0;
  std::string uri;
  CompletionBackend::Handle handle = 0;
  bool started = false;
  std::string raw;
  std::string line_prefix;
  std::string suffix;
  std::string last_sent;
  size_t context_tokens = 0;
  std::chrono::steady_clock::time_point t0;
  OnPartial on_partial;
  OnDone on_done;
};

AssistantCore::AssistantCore(AssistantOptions options, CompletionBackend* backend)
    : options_(options), backend_(backend), index_(options.index), builder_(index_, options.context) {
  if (backend_ && backend_->count_tokens("x")) {
    builder_.set_token_counter([b = backend_](std::string_view t) {
      auto n = b->count_tokens(t);
      return n ? *n : estimate_tokens(t);
    });
  }
}

AssistantCore::~AssistantCore() {
  std::vector<Ticket> tickets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [t, j] : jobs_) tickets.push_back(t);
  }
  for (Ticket t : tickets) cancel(t);
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
  if (snap) {
    if (snap->language) index_.update_document(snap->path, *snap->language, snap->tree, *snap->text);
    recent_.push_front(std::move(snap));
    if (recent_.size() > options_.recent_files) recent_.pop_back();
  }
  std::optional<Ticket> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_uri_.find(uri);
    if (it != by_uri_.end()) running = it->second;
  }
  if (running) cancel(*running);
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
  return builder_.build(*doc, offset, others(open, uri), &copy);
}

Result<AssistantCore::Ticket> AssistantCore::complete(const CompletionRequest& request, OnPartial on_partial,
                                                      OnDone on_done) {
  if (!backend_) {
    return make_error(ErrorCode::kUnsupported,
                      "no model is loaded: start latentd with --model DIR to get completions");
  }
  auto open = documents_.all_snapshots();
  const Snapshot* doc = nullptr;
  for (const auto& s : open) {
    if (s->uri == request.uri) doc = s.get();
  }
  if (!doc) return make_error(ErrorCode::kInvalidArgument, "expected an open document, found none for " + request.uri);
  const std::string& text = *doc->text;
  size_t offset = offset_of(text, request.position, request.encoding);
  PromptContext ctx = builder_.build(*doc, offset, others(open, request.uri), &memos_[request.uri]);

  auto job = std::make_shared<Job>();
  job->uri = request.uri;
  size_t ls = offset == 0 ? 0 : text.rfind('\n', offset - 1);
  ls = (offset == 0 || ls == std::string::npos) ? 0 : ls + 1;
  job->line_prefix = text.substr(ls, offset - ls);
  job->suffix = text.substr(offset, 4096);
  job->context_tokens = ctx.prompt_tokens;
  job->t0 = std::chrono::steady_clock::now();
  job->on_partial = std::move(on_partial);
  job->on_done = std::move(on_done);

  std::optional<Ticket> superseded;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->ticket = next_ticket_++;
    auto it = by_uri_.find(request.uri);
    if (it != by_uri_.end()) superseded = it->second;
    jobs_[job->ticket] = job;
    by_uri_[request.uri] = job->ticket;
  }
  if (superseded) {
    std::shared_ptr<Job> old;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(*superseded);
      if (it != jobs_.end()) old = it->second;
    }
    if (old) finish(old, make_error(ErrorCode::kCancelled, "superseded by a newer completion of the same document"), true);
  }

  CompletionJob cj;
  cj.fim = std::move(ctx.fim);
  cj.prompt = std::move(ctx.prompt);
  cj.doc_key = request.uri;
  cj.priority = 10;
  cj.max_tokens = request.max_tokens > 0 ? request.max_tokens : options_.max_tokens;
  cj.time_budget = options_.time_budget;
  cj.on_usage = request.on_usage;
  std::weak_ptr<Job> weak = job;
  auto handle = backend_->start(
      std::move(cj),
      [this, weak](std::string_view delta) {
        auto j = weak.lock();
        if (!j) return;
        std::string partial;
        bool complete = false;
        {
          std::lock_guard<std::mutex> lock(j->mu);
          if (j->finished) return;
          j->raw.append(delta);
          auto pp = postprocess_completion(j->raw, j->line_prefix, j->suffix, /*final=*/false);
          complete = pp.complete;
          if (pp.text != j->last_sent) {
            j->last_sent = pp.text;
            partial = pp.text;
            if (j->on_partial) j->on_partial(partial);
          }
        }
        if (complete) {  // the block ended: stop decoding, answer now
          CompletionOutcome out;
          {
            std::lock_guard<std::mutex> lock(j->mu);
            out.raw = j->raw;
            out.text = postprocess_completion(j->raw, j->line_prefix, j->suffix, true).text;
            out.context_tokens = j->context_tokens;
          }
          out.usage.finish_reason = "block_end";
          out.usage.milliseconds =
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - j->t0).count();
          finish(j, std::move(out), true);
        }
      },
      [this, weak](Result<CompletionUsage> usage) {
        auto j = weak.lock();
        if (!j) return;
        if (!usage.ok()) {
          finish(j, usage.error(), false);
          return;
        }
        CompletionOutcome out;
        {
          std::lock_guard<std::mutex> lock(j->mu);
          out.raw = j->raw;
          out.text = postprocess_completion(j->raw, j->line_prefix, j->suffix, true).text;
          out.context_tokens = j->context_tokens;
        }
        out.usage = *usage;
        finish(j, std::move(out), false);
      });
  bool cancel_now = false;
  {
    std::lock_guard<std::mutex> lock(job->mu);
    job->handle = handle;
    job->started = true;
    cancel_now = job->finished;
  }
  (void)cancel_now;  // finished during start(): the backend has already reported its end
  return job->ticket;
}

// The job's lock is held through on_done (and on_partial is called under it too), so that once cancel() or
// the destructor has seen a job finished, none of its callbacks is running or will run; finishing_ counts the
// finishes in progress for quiesce().
void AssistantCore::finish(const std::shared_ptr<Job>& job, Result<CompletionOutcome> result, bool cancel_backend) {
  std::unique_lock<std::mutex> job_lock(job->mu);
  if (job->finished) return;
  job->finished = true;
  OnDone done = std::move(job->on_done);
  job->on_partial = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.erase(job->ticket);
    auto it = by_uri_.find(job->uri);
    if (it != by_uri_.end() && it->second == job->ticket) by_uri_.erase(it);
    ++finishing_;
  }
  if (cancel_backend && job->started && backend_) backend_->cancel(job->handle);
  if (done) done(std::move(result));
  job_lock.unlock();
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
  finish(job, make_error(ErrorCode::kCancelled, "cancelled by the client"), true);
}

size_t AssistantCore::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

}  // namespace latent::lsp
