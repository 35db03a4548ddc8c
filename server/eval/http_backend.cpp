#include "server/eval/http_backend.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace latent::eval {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

Result<HttpTarget> parse_http_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "--server: expected http://HOST:PORT, found '" + url + "'");
  }
  std::string rest = url.substr(scheme.size());
  HttpTarget t;
  size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    t.base_path = rest.substr(slash);
    rest.resize(slash);
    while (!t.base_path.empty() && t.base_path.back() == '/') t.base_path.pop_back();
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) {
    return make_error(ErrorCode::kInvalidArgument, "--server: expected http://HOST:PORT, found '" + url + "'");
  }
  t.host = rest.substr(0, colon);
  t.port = rest.substr(colon + 1);
  if (t.host.size() > 2 && t.host.front() == '[' && t.host.back() == ']') t.host = t.host.substr(1, t.host.size() - 2);
  if (t.port.find_first_not_of("0123456789") != std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument, "--server: expected a numeric port, found '" + t.port + "'");
  }
  return t;
}

struct HttpCompletionBackend::Job {
  lsp::CompletionJob job;
  OnDelta on_delta;
  OnDone on_done;
  std::atomic<bool> cancelled{false};
  std::mutex mu;                 // guards stream
  beast::tcp_stream* stream = nullptr;
};

HttpCompletionBackend::HttpCompletionBackend(HttpTarget target, std::string token)
    : target_(std::move(target)), token_(std::move(token)) {}

HttpCompletionBackend::~HttpCompletionBackend() {
  std::vector<Handle> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [h, j] : jobs_) running.push_back(h);
  }
  for (Handle h : running) cancel(h);
  std::map<Handle, std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (auto& [h, t] : threads) t.join();
}

std::string HttpCompletionBackend::describe() const {
  return "latentd at http://" + target_.host + ":" + target_.port + target_.base_path;
}

lsp::CompletionBackend::Handle HttpCompletionBackend::start(lsp::CompletionJob job, OnDelta on_delta, OnDone on_done) {
  auto j = std::make_shared<Job>();
  j->job = std::move(job);
  j->on_delta = std::move(on_delta);
  j->on_done = std::move(on_done);
  std::lock_guard<std::mutex> lock(mu_);
  // Threads of finished jobs are joined here, so that they do not pile up over a long run.
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (!jobs_.count(it->first)) {
      it->second.join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
  const Handle h = next_++;
  jobs_[h] = j;
  threads_[h] = std::thread([this, j, h] {
    run(j);
    std::lock_guard<std::mutex> l(mu_);
    jobs_.erase(h);
  });
  return h;
}

void HttpCompletionBackend::cancel(Handle handle) {
  std::shared_ptr<Job> j;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(handle);
    if (it == jobs_.end()) return;
    j = it->second;
  }
  j->cancelled = true;
  std::lock_guard<std::mutex> lock(j->mu);
  beast::error_code ec;
  if (j->stream) j->stream->socket().shutdown(tcp::socket::shutdown_both, ec);
}

namespace {

Result<tcp::resolver::results_type> resolve(net::io_context& io, const HttpTarget& t) {
  beast::error_code ec;
  tcp::resolver resolver(io);
  auto r = resolver.resolve(t.host, t.port, ec);
  if (ec) return make_error(ErrorCode::kIo, "--server: cannot resolve " + t.host + ": " + ec.message());
  return r;
}

}  // namespace

Result<std::string> HttpCompletionBackend::model_id() const {
  net::io_context io;
  LATENT_ASSIGN_OR_RETURN(auto endpoints, resolve(io, target_));
  beast::tcp_stream stream(io);
  beast::error_code ec;
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(endpoints, ec);
  if (ec) return make_error(ErrorCode::kIo, "--server: cannot connect to " + describe() + ": " + ec.message());
  http::request<http::empty_body> req{http::verb::get, target_.base_path + "/v1/models", 11};
  req.set(http::field::host, target_.host);
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  http::write(stream, req, ec);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  if (!ec) http::read(stream, buf, res, ec);
  if (ec) return make_error(ErrorCode::kIo, "--server: GET /v1/models: " + ec.message());
  if (res.result_int() != 200) {
    return make_error(ErrorCode::kIo, "--server: GET /v1/models: expected 200, found " +
                                          std::to_string(res.result_int()) + ": " + res.body().substr(0, 200));
  }
  auto j = nlohmann::json::parse(res.body(), nullptr, false);
  if (j.is_discarded() || !j.contains("data") || !j["data"].is_array() || j["data"].empty()) {
    return make_error(ErrorCode::kIo, "--server: GET /v1/models: expected a model list, found " +
                                          res.body().substr(0, 200));
  }
  return j["data"][0].value("id", std::string("?"));
}

void HttpCompletionBackend::run(const std::shared_ptr<Job>& j) {
  const auto t0 = std::chrono::steady_clock::now();
  lsp::CompletionUsage usage;
  auto finish = [&](Result<lsp::CompletionUsage> r) {
    if (r.ok()) {
      r->milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    if (r.ok() && j->job.on_usage) j->job.on_usage(*r);
    if (j->on_done) j->on_done(std::move(r));
  };
  net::io_context io;
  auto endpoints = resolve(io, target_);
  if (!endpoints.ok()) return finish(endpoints.error());
  beast::tcp_stream stream(io);
  {
    std::lock_guard<std::mutex> lock(j->mu);
    j->stream = &stream;
  }
  struct Unlink {
    Job& j;
    ~Unlink() {
      std::lock_guard<std::mutex> lock(j.mu);
      j.stream = nullptr;
    }
  } unlink{*j};
  beast::error_code ec;
  // The job's time budget bounds the whole exchange (connect, prefill, decode), as the engine's budget does.
  stream.expires_after(j->job.time_budget + std::chrono::seconds(5));
  stream.connect(*endpoints, ec);
  if (ec) return finish(make_error(ErrorCode::kIo, "cannot connect to " + describe() + ": " + ec.message()));
  nlohmann::json body = {{"prompt", j->job.prompt},
                         {"max_tokens", j->job.max_tokens},
                         {"temperature", 0},
                         {"stream", true}};
  if (!j->job.stop.empty()) body["stop"] = j->job.stop;
  http::request<http::string_body> req{http::verb::post, target_.base_path + "/v1/completions", 11};
  req.set(http::field::host, target_.host);
  req.set(http::field::content_type, "application/json");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  req.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  req.prepare_payload();
  http::write(stream, req, ec);
  if (ec) return finish(make_error(ErrorCode::kIo, "POST /v1/completions: " + ec.message()));

  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  http::read_header(stream, buf, parser, ec);
  if (ec) return finish(make_error(ErrorCode::kIo, "POST /v1/completions: " + ec.message()));
  const int status = parser.get().result_int();
  std::string pending;  // SSE text not yet split into events
  std::string finish_reason = "stop";
  bool done = false;
  char chunk[8192];
  while (!parser.is_done() && !done) {
    if (j->cancelled) return finish(make_error(ErrorCode::kCancelled, "cancelled"));
    if (std::chrono::steady_clock::now() - t0 > j->job.time_budget) {
      finish_reason = "time";
      break;
    }
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    http::read(stream, buf, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      if (j->cancelled) return finish(make_error(ErrorCode::kCancelled, "cancelled"));
      if (ec == beast::error::timeout) {
        finish_reason = "time";
        break;
      }
      return finish(make_error(ErrorCode::kIo, "POST /v1/completions: " + ec.message()));
    }
    pending.append(chunk, sizeof chunk - parser.get().body().size);
    if (status != 200) continue;
    for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
      std::string event = pending.substr(0, end);
      pending.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;
      std::string data = event.substr(6);
      if (data == "[DONE]") {
        done = true;
        break;
      }
      auto e = nlohmann::json::parse(data, nullptr, false);
      if (e.is_discarded() || !e.contains("choices") || !e["choices"].is_array() || e["choices"].empty()) continue;
      const auto& c = e["choices"][0];
      std::string text = c.value("text", std::string());
      if (!text.empty()) {
        ++usage.completion_tokens;
        if (usage.ttft_ms == 0) {
          usage.ttft_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        }
        if (j->on_delta) j->on_delta(text);
      }
      if (c.contains("finish_reason") && c["finish_reason"].is_string()) finish_reason = c["finish_reason"];
      if (e.contains("usage") && e["usage"].is_object()) {
        usage.prompt_tokens = e["usage"].value("prompt_tokens", size_t(0));
        usage.completion_tokens = e["usage"].value("completion_tokens", usage.completion_tokens);
      }
    }
  }
  if (status != 200) {
    return finish(make_error(ErrorCode::kIo, "POST /v1/completions: expected 200, found " + std::to_string(status) +
                                                 ": " + pending.substr(0, 300)));
  }
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  usage.finish_reason = finish_reason;
  finish(usage);
}

}  // namespace latent::eval
