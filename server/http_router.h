#pragma once
// The HTTP side of the daemon's port, free of Beast so that handlers are plain functions:
//   router.add("GET", "/v1/models", [](const HttpRequest& r) { return HttpResponse::json(200, {...}); });
// Routes match the path exactly (no query). Unknown routes answer 404 with a JSON error body. Handlers must
// not throw (a throw is caught and answered 500) and must not block on the engine (queue work instead).
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "server/openai/exchange.h"

namespace latent::server {

struct HttpRequest {
  std::string method;  // "GET"
  std::string target;  // "/v1/models?x=1"
  std::string path;    // "/v1/models"
  std::string query;   // "x=1"
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string user;  // who sent it (latentd --users), else empty
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;
  // Set by a handler that answers later or in pieces (server-sent events): the session lends its connection
  // to this function (server/openai/beast_exchange.h) instead of writing `body`.
  std::function<void(std::shared_ptr<openai::HttpExchange>)> deferred;
  static HttpResponse json(int status, const nlohmann::json& body);
  static HttpResponse error(int status, const std::string& type, const std::string& message);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpRouter {
 public:
  void add(const std::string& method, const std::string& path, HttpHandler handler);
  // A route that needs no token (the web UI's static pages, which ask for it); the Origin rules still apply.
  void add_public(const std::string& method, const std::string& path, HttpHandler handler);
  bool is_public(const std::string& method, const std::string& path) const;
  HttpResponse handle(const HttpRequest& request) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, HttpHandler> routes_;
  std::set<std::pair<std::string, std::string>> public_;
};

// "a=1&token=x" -> "x" for key "token" (percent-decoded); empty when absent.
std::string query_param(const std::string& query, const std::string& key);

}  // namespace latent::server
