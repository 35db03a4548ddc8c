#pragma once
// A CompletionBackend test double: streams a fixed text in pieces with a delay between them, honours cancel,
// and records the jobs it was given. It runs no model. latentd exposes it only behind --test-backend, for
// protocol tests.
//
// Thread-safety: all methods are thread-safe; each job streams from a thread of its own.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lsp/completion_backend.h"

namespace latent::lsp {

class ScriptedBackend : public CompletionBackend {
 public:
  // `pieces` are sent in order, `delay` apart; then on_done with usage.
  explicit ScriptedBackend(std::vector<std::string> pieces, std::chrono::milliseconds delay = std::chrono::milliseconds(20));
  ~ScriptedBackend() override;

  Handle start(CompletionJob job, OnDelta on_delta, OnDone on_done) override;
  void cancel(Handle handle) override;
  std::string describe() const override { return "scripted test backend (no model)"; }

  std::vector<CompletionJob> jobs() const;
  size_t cancelled() const { return cancelled_.load(); }
  void set_pieces(std::vector<std::string> pieces);
  // Jobs with CompletionJob::sample == k (a ranked completion's sampled candidates) send these pieces instead.
  void set_sample_pieces(int k, std::vector<std::string> pieces);
  // Jobs whose prompt contains `marker` send these pieces instead (before the sample rule): e.g. a ranked
  // completion's continuation round, whose prompt holds the first round's text.
  void set_prompt_pieces(std::string marker, std::vector<std::string> pieces);
  // While held, running jobs send nothing more and do not finish (cancel still ends them): a test can then
  // rely on "still running" without depending on how fast this machine is. release() lets them go on.
  void hold();
  void release();
  // A job whose prompt contains `marker` sends its first piece and then waits for cancel (or the backend's end):
  // a client can cancel "while it decodes" without racing the clock. Empty (the default): no such jobs.
  void set_hold_marker(std::string marker);

 private:
  struct Running {
    bool cancel = false;
  };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pieces_;
  std::map<int, std::vector<std::string>> sample_pieces_;
  std::vector<std::pair<std::string, std::vector<std::string>>> prompt_pieces_;
  std::chrono::milliseconds delay_;
  std::vector<CompletionJob> jobs_;
  std::map<Handle, Running> running_;
  std::vector<std::thread> threads_;
  Handle next_ = 1;
  bool stop_ = false;
  bool held_ = false;
  std::string hold_marker_;
  std::atomic<size_t> cancelled_{0};
};

}  // namespace latent::lsp
