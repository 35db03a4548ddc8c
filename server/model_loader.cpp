#include "server/model_loader.h"

#include <chrono>
#include <cmath>

#include "kernels/base/log.h"

namespace latent::server {

const char* load_phase_name(LoadPhase phase) {
  switch (phase) {
    case LoadPhase::kLoading: return "loading";
    case LoadPhase::kUploading: return "uploading";
    case LoadPhase::kWarming: return "warming";
    case LoadPhase::kReady: return "ready";
    case LoadPhase::kFailed: return "failed";
  }
  return "?";
}

double LoadState::fraction() const {
  if (phase == LoadPhase::kReady) return 1.0;
  if (bytes_total <= 0) return 0.0;
  return std::min(1.0, static_cast<double>(bytes_done) / static_cast<double>(bytes_total));
}

nlohmann::json LoadState::to_json() const {
  const char* state = phase == LoadPhase::kReady ? "ready" : phase == LoadPhase::kFailed ? "error" : "loading";
  nlohmann::json j{{"state", state}, {"phase", load_phase_name(phase)}, {"message", message}};
  if (phase != LoadPhase::kFailed) {
    j["progress"] = progress;
    j["percent"] = static_cast<int>(std::floor(fraction() * 100.0));
    j["bytesDone"] = bytes_done;
    j["bytesTotal"] = bytes_total;
  }
  return j;
}

ModelLoader::ModelLoader(EngineHost& host, ModelLoaderOptions options, std::function<void(const LoadState&)> on_change)
    : host_(host), options_(std::move(options)), on_change_(std::move(on_change)) {
  state_.message = "loading " + host_.model_id();
  if (on_change_) on_change_(state_);
  thread_ = std::thread([this] { run(); });
}

ModelLoader::~ModelLoader() {
  stop_.store(true);
  thread_.join();
}

LoadState ModelLoader::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

void ModelLoader::set(LoadPhase phase, int64_t done, int64_t total, std::string message) {
  LoadState copy;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool same_phase = state_.phase == phase;
    state_.phase = phase;
    state_.bytes_done = done;
    state_.bytes_total = total;
    state_.message = std::move(message);
    const double f = state_.fraction();
    double overall = 0;
    if (phase == LoadPhase::kUploading) uploaded_ = true, overall = 0.9 * f;
    if (phase == LoadPhase::kWarming) overall = uploaded_ ? 0.9 + 0.1 * f : f;
    if (phase == LoadPhase::kReady) overall = 1;
    state_.progress = std::max(state_.progress, overall);
    // Listeners hear each phase and each whole percent of it, not every tensor.
    const int percent = static_cast<int>(std::floor(state_.fraction() * 100.0));
    if (same_phase && percent == last_percent_) return;
    last_percent_ = percent;
    copy = state_;
  }
  if (on_change_) on_change_(copy);
}

void ModelLoader::enter(LoadPhase phase, std::string message) {
  set(phase, 0, 0, std::move(message));
  if (options_.on_phase) options_.on_phase(phase);
}

void ModelLoader::run() {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string id = host_.model_id();
  enter(LoadPhase::kLoading, "loading " + id + " (" + host_.device_name() + ")");
  bool uploading = false;
  Status st = host_.load_model([&](int64_t done, int64_t total) {
    if (stop_.load()) return false;
    // A device that copies (a GPU): "uploading" with bytes; the CPU's views need no copy (total 0 or done at once).
    if (!uploading && total > 0 && done < total) {
      uploading = true;
      enter(LoadPhase::kUploading, "uploading " + id + "'s weights to " + host_.device_name());
    }
    if (uploading) set(LoadPhase::kUploading, done, total, "uploading " + id + "'s weights to " + host_.device_name());
    return !stop_.load();
  }, [&] {
    // Serving from here on (/health 200), before the generations that waited for the load start.
    enter(LoadPhase::kWarming, "reading " + id + " into memory");
  });
  if (!st.ok()) {
    if (st.error().code != ErrorCode::kCancelled || !stop_.load()) {
      LATENT_LOG_ERROR("model %s failed to load: %s", id.c_str(), st.error().message.c_str());
    }
    enter(LoadPhase::kFailed, "the model failed to load: " + st.error().message);
    return;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  LATENT_LOG_INFO("model %s loaded on %s in %.2f s", id.c_str(), host_.device_name().c_str(), load_s);
  if (options_.warm) {
    const auto t1 = std::chrono::steady_clock::now();
    const size_t bytes = host_.warm([&](size_t done, size_t total) {
      set(LoadPhase::kWarming, static_cast<int64_t>(done), static_cast<int64_t>(total), "reading " + id + " into memory");
      return !stop_.load();
    });
    if (stop_.load()) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    if (bytes > 0) LATENT_LOG_INFO("model %s in memory: %.1f MiB in %.2f s", id.c_str(), bytes / 1048576.0, s);
  }
  if (options_.then) {
    set(LoadPhase::kWarming, 1, 1, "measuring prefill speed, to size the context");
    options_.then(stop_);
    if (stop_.load()) return;
  }
  enter(LoadPhase::kReady, options_.ready_message.empty() ? id : options_.ready_message);
}

}  // namespace latent::server
