#include "server/user_access.h"

#include "server/user_metrics.h"
#include "server/users.h"

namespace latent::server {

lsp::LspServerOptions options_for_user(lsp::LspServerOptions base, const SessionUser& user, MetricsRegistry& metrics) {
  if (user.name.empty()) return base;
  base.refuse_call = [user, &metrics](std::string_view method) -> std::optional<std::string> {
    const Scope need = scope_for_lsp_method(method);
    if (need == kScopeNone || (user.scopes & need)) return std::nullopt;
    record_user_usage(metrics, UserUsage{user.name, need == kScopeAgent ? "lsp/agent" : "lsp/" + std::string(
                                                        method.substr(method.find('/') + 1)),
                                         403, 0, 0, 0, -1});
    return "expected a token with the '" + std::string(scope_name(need)) + "' scope for " + std::string(method) +
           ", found one without it";
  };
  base.on_usage = [name = user.name, &metrics](const lsp::CompletionUsage& u) {
    record_user_usage(metrics, UserUsage{name, "lsp/inlineCompletion", 200, static_cast<int64_t>(u.prompt_tokens),
                                         static_cast<int64_t>(u.completion_tokens), u.ttft_ms / 1000.0,
                                         u.milliseconds / 1000.0});
  };
  return base;
}

}  // namespace latent::server
