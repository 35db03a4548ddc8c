#pragma once
// A test double of the model only, for agent tests: each chat job is answered with the next turn of a fixed
// transcript (tool-call text in DeepSeek's format, parsed by the real chat::StreamParser / parse_output
// downstream), streamed in small pieces cut at UTF-8 boundaries, as an engine's detokenizer would. It records
// each job's prompt. latentd exposes it only behind --test-agent-script FILE ({"turns": ["...", ...]}).
//
// Thread-safety: all methods are thread-safe; each job streams from a thread of its own.
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lsp/completion_backend.h"

namespace latent::lsp::agent {

class ScriptedModel : public CompletionBackend {
 public:
  explicit ScriptedModel(std::vector<std::string> turns, size_t piece_bytes = 7);
  ~ScriptedModel() override;
  // {"turns": [string, ...]}; errors name what was expected.
  static Result<std::vector<std::string>> load_script(const std::string& path);

  Handle start(CompletionJob job, OnDelta on_delta, OnDone on_done) override;
  void cancel(Handle handle) override;
  std::string describe() const override { return "scripted agent model (test double, no model)"; }

  std::vector<std::string> prompts() const;
  // Each job's tenant and weight, in order (whose turns they were).
  std::vector<std::pair<std::string, double>> tenants() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> turns_;
  size_t piece_bytes_;
  size_t next_turn_ = 0;
  std::vector<std::string> prompts_;
  std::vector<std::pair<std::string, double>> tenants_;
  std::map<Handle, bool> cancelled_;
  std::vector<std::thread> threads_;
  Handle next_ = 1;
  bool stop_ = false;
};

}  // namespace latent::lsp::agent
