#pragma once
// The web playground (GET /) and dashboard (GET /dashboard) on the daemon's port: static files that the
// project's build bundles from npm packages (editors/web/ -> build/web-ui) and latentd serves from that folder.
//
//   DIR/index.html      GET /            the playground: Monaco speaking LSP over WebSocket /lsp
//   DIR/dashboard.html  GET /dashboard   charts fed from GET /metrics
//   DIR/ui/NAME         GET /ui/NAME     scripts, styles, the codicon font, Monaco's editor worker
//
// Only the files present when latentd starts become routes, so no request names a path outside DIR. The
// pages need no token (they hold no secret, and ask for the token to keep in the tab's sessionStorage);
// everything they use (/lsp, /metrics, the API) does, exactly as for any other client.
#include <cstddef>
#include <string>

#include "kernels/base/result.h"
#include "server/http_router.h"

namespace latent::server {

// --ui VALUE: "on", "off", or "auto" (on when the listening host is loopback). Errors name what was found.
Result<bool> parse_ui_mode(const std::string& value, bool loopback_host);

// Registers the routes above for the files under `dir`; the number of files, or an error when `dir` has no
// index.html (the UI was not built: scripts/setup, then cmake --build).
Result<size_t> add_web_ui_routes(HttpRouter& router, const std::string& dir);

// "text/javascript; charset=utf-8" for "a.js"; application/octet-stream for unknown extensions.
std::string content_type_for(const std::string& path);

// True when the request comes from a page this port served: its Origin is http(s)://<Host header>. Without a
// token only a loopback Host counts (an address literal or "localhost"): a page on another name that resolves
// to this machine (DNS rebinding) has a matching Host too, and nothing else would stop it. With a token, that
// page still lacks the token (it lives in the daemon's own origin's sessionStorage).
bool is_own_origin(const HttpRequest& request, bool token_required);

}  // namespace latent::server
