#pragma once
// A CompletionBackend over a running latentd's HTTP API, for `latent eval replay --server URL`: the prompt the
// local AssistantCore built (the FIM text, markers as text; the server's tokenizer matches them as its special
// tokens, BOS first) goes to POST /v1/completions with temperature 0 and stream: true; the streamed text comes
// back as deltas, so the core's post-processing stops it at the end of the block as it does for the editor.
// The completion's time budget is kept here: at its end the stream is closed and the job ends with "time".
// Without the model's tokenizer on this side, the context budget is counted with the builder's estimate.
//
// Thread-safety: start/cancel from any thread; each job runs on a thread of its own, joined by the destructor.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lsp/completion_backend.h"

namespace latent::eval {

struct HttpTarget {
  std::string host;
  std::string port;
  std::string base_path;  // "" or "/prefix"
};
// "http://host:port[/prefix]"; errors name what was expected (https is not spoken here).
Result<HttpTarget> parse_http_url(const std::string& url);

class HttpCompletionBackend : public lsp::CompletionBackend {
 public:
  HttpCompletionBackend(HttpTarget target, std::string token);
  ~HttpCompletionBackend() override;

  Handle start(lsp::CompletionJob job, OnDelta on_delta, OnDone on_done) override;
  void cancel(Handle handle) override;
  std::string describe() const override;

  // GET /v1/models: the server's model id, or the error (not running, refused the token).
  Result<std::string> model_id() const;

 private:
  struct Job;
  void run(const std::shared_ptr<Job>& job);

  HttpTarget target_;
  std::string token_;
  std::mutex mu_;
  std::map<Handle, std::shared_ptr<Job>> jobs_;
  std::map<Handle, std::thread> threads_;
  Handle next_ = 1;
};

}  // namespace latent::eval
