#include "server/http_router.h"

#include "kernels/base/log.h"

namespace latent::server {

HttpResponse HttpResponse::json(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse HttpResponse::error(int status, const std::string& type, const std::string& message) {
  return json(status, {{"error", {{"type", type}, {"message", message}}}});
}

void HttpRouter::add(const std::string& method, const std::string& path, HttpHandler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  routes_[{method, path}] = std::move(handler);
  public_.erase({method, path});
}

void HttpRouter::add_public(const std::string& method, const std::string& path, HttpHandler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  routes_[{method, path}] = std::move(handler);
  public_.insert({method, path});
}

bool HttpRouter::is_public(const std::string& method, const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  return public_.count({method, path}) > 0;
}

HttpResponse HttpRouter::handle(const HttpRequest& request) const {
  HttpHandler handler;
  bool path_known = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = routes_.find({request.method, request.path});
    if (it != routes_.end()) handler = it->second;
    for (const auto& [key, h] : routes_) path_known |= key.second == request.path;
  }
  if (!handler) {
    if (path_known) {
      return HttpResponse::error(405, "method_not_allowed", "method " + request.method + " not allowed on " + request.path);
    }
    return HttpResponse::error(404, "not_found", "no route for " + request.method + " " + request.path);
  }
  try {
    return handler(request);
  } catch (const std::exception& e) {
    LATENT_LOG_ERROR("HTTP %s %s: handler threw: %s", request.method.c_str(), request.path.c_str(), e.what());
    return HttpResponse::error(500, "internal_error", e.what());
  }
}

std::string query_param(const std::string& query, const std::string& key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string part = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    pos = amp == std::string::npos ? query.size() + 1 : amp + 1;
    size_t eq = part.find('=');
    if (part.substr(0, eq) != key) continue;
    std::string v = eq == std::string::npos ? "" : part.substr(eq + 1), out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '%' && i + 2 < v.size()) {
        try {
          out.push_back(static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16)));
          i += 2;
          continue;
        } catch (...) {
        }
      }
      out.push_back(v[i] == '+' ? ' ' : v[i]);
    }
    return out;
  }
  return "";
}

}  // namespace latent::server
