#pragma once
// ModelLoader: latentd's model, loaded on a thread of its own while the daemon already answers (initialize,
// latent/status, /health, /v1/models). Its phases, as latent/status and GET /health report them:
//   loading    mapping the checkpoint and checking every tensor (EngineHost::load_model up to the copies)
//   uploading  copying the weights into the device's memory, bytes done of total (a GPU; the CPU copies nothing)
//   warming    reading the mapped checkpoint into the page cache (bytes), then timing prefill: requests are
//              served already (the model is loaded), the first ones maybe slower
//   ready      loaded and warm
//   failed     the load failed; `message` says why (expected vs found), and requests that waited get it too
// Requests that need the model wait from the start until the end of uploading (EngineHost::when_loaded).
//
// Thread-safety: state() from any thread; on_change runs on the loading thread (and once in the constructor,
// with the first state), and must not block. The destructor stops a load in progress (an upload ends with
// kCancelled) and joins.
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "server/engine_host.h"

namespace latent::server {

enum class LoadPhase { kLoading, kUploading, kWarming, kReady, kFailed };
const char* load_phase_name(LoadPhase phase);

struct LoadState {
  LoadPhase phase = LoadPhase::kLoading;
  int64_t bytes_done = 0, bytes_total = 0;  // of this phase's work (0 of 0: none counted)
  std::string message;                      // what is happening, or the error
  // The whole load's progress, 0..1 and never decreasing across phases (uploading is its first 90 % when there
  // is one, warming the rest).
  double progress = 0;
  bool serving() const { return phase == LoadPhase::kWarming || phase == LoadPhase::kReady; }
  double fraction() const;  // of this phase: bytes_done / bytes_total, 1 when ready, 0 without a total
  // latent/status's params: {state: loading|ready|error, phase, progress (the whole load), percent (this
  // phase, 0..100), bytesDone, bytesTotal, message}; state and progress as before phases existed.
  nlohmann::json to_json() const;
};

struct ModelLoaderOptions {
  bool warm = true;  // read the mapped checkpoint into the page cache after loading
  // After warming, before "ready": the prefill cost probe; must return soon after `stop` turns true.
  std::function<void(const std::atomic<bool>& stop)> then;
  std::string ready_message;  // "ready"'s message
  // Tests: runs on the loading thread as each phase begins (the state already says it); it may block there until
  // the test lets it go, so that a test sees each phase without racing the load.
  std::function<void(LoadPhase)> on_phase;
};

class ModelLoader {
 public:
  ModelLoader(EngineHost& host, ModelLoaderOptions options, std::function<void(const LoadState&)> on_change);
  ~ModelLoader();
  ModelLoader(const ModelLoader&) = delete;
  ModelLoader& operator=(const ModelLoader&) = delete;
  LoadState state() const;

 private:
  void run();
  void set(LoadPhase phase, int64_t done, int64_t total, std::string message);
  void enter(LoadPhase phase, std::string message);  // set() then on_phase
  EngineHost& host_;
  ModelLoaderOptions options_;
  std::function<void(const LoadState&)> on_change_;
  mutable std::mutex mu_;
  LoadState state_;
  int last_percent_ = -1;
  bool uploaded_ = false;  // an upload phase happened (warming is then the last 10 % of progress)
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once the rest is set
};

}  // namespace latent::server
