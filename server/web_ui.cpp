#include "server/web_ui.h"

#include <boost/asio/ip/address.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "kernels/base/log.h"

namespace latent::server {
namespace fs = std::filesystem;

Result<bool> parse_ui_mode(const std::string& value, bool loopback_host) {
  if (value == "on") return true;
  if (value == "off") return false;
  if (value == "auto" || value.empty()) return loopback_host;
  return make_error(ErrorCode::kInvalidArgument, "--ui: expected on, off or auto, found '" + value + "'");
}

std::string content_type_for(const std::string& path) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".json", "application/json"},
      {".map", "application/json"},          {".ttf", "font/ttf"},
      {".woff2", "font/woff2"},              {".png", "image/png"},
      {".svg", "image/svg+xml"},             {".txt", "text/plain; charset=utf-8"}};
  std::string ext = fs::path(path).extension().string();
  for (const auto& [e, type] : kTypes) {
    if (ext == e) return type;
  }
  return "application/octet-stream";
}

namespace {

// Everything a page may load comes from this origin: the Content-Security-Policy makes the browser refuse
// any other host (air-gapped teams), besides the bundle naming none. Monaco sets inline styles.
const char* kCsp =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'";

HttpHandler file_handler(fs::path file) {
  return [file = std::move(file)](const HttpRequest&) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) {
      return HttpResponse::error(500, "ui_unreadable", "cannot read " + file.string() + " (was the UI rebuilt?)");
    }
    HttpResponse r;
    r.content_type = content_type_for(file.string());
    r.body = ss.str();
    r.headers["Cache-Control"] = "no-cache";
    r.headers["X-Content-Type-Options"] = "nosniff";
    r.headers["Content-Security-Policy"] = kCsp;
    r.headers["Referrer-Policy"] = "no-referrer";
    return r;
  };
}

bool loopback_name(std::string host) {
  if (host == "localhost") return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  return !ec && addr.is_loopback();
}

}  // namespace

Result<size_t> add_web_ui_routes(HttpRouter& router, const std::string& dir) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_regular_file(root / "index.html", ec)) {
    return make_error(ErrorCode::kNotFound, "--ui-dir " + dir + ": expected the built web UI (index.html), found " +
                                                (fs::exists(root, ec) ? "no index.html" : "no such folder") +
                                                "; run scripts/setup, then cmake --build build");
  }
  size_t n = 0;
  router.add_public("GET", "/", file_handler(root / "index.html"));
  ++n;
  if (fs::is_regular_file(root / "dashboard.html", ec)) {
    router.add_public("GET", "/dashboard", file_handler(root / "dashboard.html"));
    ++n;
  }
  const fs::path ui = root / "ui";
  if (fs::is_directory(ui, ec)) {
    for (auto it = fs::recursive_directory_iterator(ui, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      std::string rel = fs::relative(it->path(), ui, ec).generic_string();
      if (ec || rel.empty()) continue;
      router.add_public("GET", "/ui/" + rel, file_handler(it->path()));
      ++n;
    }
  }
  LATENT_LOG_INFO("web UI: %zu files from %s (GET / and /dashboard)", n, dir.c_str());
  return n;
}

bool is_own_origin(const HttpRequest& request, bool token_required) {
  auto origin = request.headers.find("origin");
  auto host = request.headers.find("host");
  if (origin == request.headers.end() || host == request.headers.end() || host->second.empty()) return false;
  if (origin->second != "http://" + host->second && origin->second != "https://" + host->second) return false;
  if (token_required) return true;
  // Host is name[:port] or [v6]:port.
  const std::string& h = host->second;
  size_t colon = h.rfind(':');
  std::string name = (colon != std::string::npos && h.find(']', colon) == std::string::npos) ? h.substr(0, colon) : h;
  return loopback_name(name);
}

}  // namespace latent::server
