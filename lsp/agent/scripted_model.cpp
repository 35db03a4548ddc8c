#include "lsp/agent/scripted_model.h"

#include <nlohmann/json.hpp>

#include "lsp/agent/workspace_files.h"
#include "lsp/positions.h"

namespace latent::lsp::agent {

ScriptedModel::ScriptedModel(std::vector<std::string> turns, size_t piece_bytes)
    : turns_(std::move(turns)), piece_bytes_(piece_bytes == 0 ? 1 : piece_bytes) {}

ScriptedModel::~ScriptedModel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  for (auto& t : threads_) t.join();
}

Result<std::vector<std::string>> ScriptedModel::load_script(const std::string& path) {
  auto text = read_text_file(path);
  if (!text.ok()) return text.error();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("turns") || !j["turns"].is_array()) {
    return make_error(ErrorCode::kInvalidArgument, path + ": expected {\"turns\": [string, ...]}");
  }
  std::vector<std::string> turns;
  for (const auto& t : j["turns"]) {
    if (!t.is_string()) return make_error(ErrorCode::kInvalidArgument, path + ": expected every turn to be a string");
    turns.push_back(t.get<std::string>());
  }
  return turns;
}

CompletionBackend::Handle ScriptedModel::start(CompletionJob job, OnDelta on_delta, OnDone on_done) {
  std::lock_guard<std::mutex> lock(mu_);
  Handle h = next_++;
  prompts_.push_back(job.prompt);
  tenants_.emplace_back(job.tenant, job.tenant_weight);
  if (next_turn_ >= turns_.size()) {
    std::string msg = "scripted model: the script has " + std::to_string(turns_.size()) + " turns, asked for turn " +
                      std::to_string(next_turn_ + 1);
    threads_.emplace_back([on_done, msg] { on_done(make_error(ErrorCode::kInvalidArgument, msg)); });
    return h;
  }
  std::string text = turns_[next_turn_++];
  cancelled_[h] = false;
  threads_.emplace_back([this, h, text, on_delta, on_done] {
    size_t sent = 0;
    while (sent < text.size()) {
      size_t n = 0;
      while (sent + n < text.size() && n < piece_bytes_) n += utf8_sequence_length(static_cast<unsigned char>(text[sent + n]));
      n = std::min(n, text.size() - sent);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_ || cancelled_[h]) {
          on_done(make_error(ErrorCode::kCancelled, "scripted model: cancelled"));
          return;
        }
      }
      on_delta(std::string_view(text).substr(sent, n));
      sent += n;
    }
    CompletionUsage u;
    u.completion_tokens = text.size();
    u.finish_reason = "stop";
    on_done(u);
  });
  return h;
}

void ScriptedModel::cancel(Handle handle) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cancelled_.find(handle);
  if (it != cancelled_.end()) it->second = true;
}

std::vector<std::string> ScriptedModel::prompts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return prompts_;
}

std::vector<std::pair<std::string, double>> ScriptedModel::tenants() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tenants_;
}

}  // namespace latent::lsp::agent
