#include "lsp/scripted_backend.h"

namespace latent::lsp {

ScriptedBackend::ScriptedBackend(std::vector<std::string> pieces, std::chrono::milliseconds delay)
    : pieces_(std::move(pieces)), delay_(delay) {}

ScriptedBackend::~ScriptedBackend() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  for (auto& t : threads_) t.join();
}

void ScriptedBackend::set_pieces(std::vector<std::string> pieces) {
  std::lock_guard<std::mutex> lock(mu_);
  pieces_ = std::move(pieces);
}

void ScriptedBackend::set_sample_pieces(int k, std::vector<std::string> pieces) {
  std::lock_guard<std::mutex> lock(mu_);
  sample_pieces_[k] = std::move(pieces);
}

void ScriptedBackend::set_prompt_pieces(std::string marker, std::vector<std::string> pieces) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_pieces_.emplace_back(std::move(marker), std::move(pieces));
}

CompletionBackend::Handle ScriptedBackend::start(CompletionJob job, OnDelta on_delta, OnDone on_done) {
  std::lock_guard<std::mutex> lock(mu_);
  Handle h = next_++;
  running_[h] = Running{};
  jobs_.push_back(job);
  auto sampled = sample_pieces_.find(job.sample);
  std::vector<std::string> pieces = job.sample > 0 && sampled != sample_pieces_.end() ? sampled->second : pieces_;
  for (const auto& [marker, by_prompt] : prompt_pieces_) {
    if (job.prompt.find(marker) != std::string::npos) pieces = by_prompt;
  }
  size_t prompt_bytes = job.prompt.size();
  const bool hold_after_first = !hold_marker_.empty() && job.prompt.find(hold_marker_) != std::string::npos;
  threads_.emplace_back([this, h, pieces, prompt_bytes, hold_after_first, on_delta = std::move(on_delta),
                         on_done = std::move(on_done), on_usage = std::move(job.on_usage)] {
    auto t0 = std::chrono::steady_clock::now();
    size_t sent = 0;
    for (const auto& p : pieces) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, delay_, [&] { return stop_ || running_[h].cancel; });
        cv_.wait(lock, [&] { return stop_ || running_[h].cancel || (!held_ && !(hold_after_first && sent > 0)); });
        if (stop_ || running_[h].cancel) {
          running_.erase(h);
          lock.unlock();
          if (on_usage) {
            CompletionUsage u;
            u.prompt_tokens = prompt_bytes / 4;
            u.completion_tokens = sent;
            u.finish_reason = "cancelled";
            on_usage(u);
          }
          on_done(make_error(ErrorCode::kCancelled, "cancelled"));
          return;
        }
      }
      on_delta(p);
      ++sent;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_.erase(h);
    }
    CompletionUsage u;
    u.prompt_tokens = prompt_bytes / 4;
    u.completion_tokens = sent;
    u.milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    u.finish_reason = "stop";
    if (on_usage) on_usage(u);
    on_done(u);
  });
  return h;
}

void ScriptedBackend::cancel(Handle handle) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(handle);
  if (it == running_.end() || it->second.cancel) return;
  it->second.cancel = true;
  ++cancelled_;
  cv_.notify_all();
}

void ScriptedBackend::set_hold_marker(std::string marker) {
  std::lock_guard<std::mutex> lock(mu_);
  hold_marker_ = std::move(marker);
}

void ScriptedBackend::hold() {
  std::lock_guard<std::mutex> lock(mu_);
  held_ = true;
}

void ScriptedBackend::release() {
  std::lock_guard<std::mutex> lock(mu_);
  held_ = false;
  cv_.notify_all();
}

std::vector<CompletionJob> ScriptedBackend::jobs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_;
}

}  // namespace latent::lsp
