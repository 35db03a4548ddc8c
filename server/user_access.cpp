#include "server/user_access.h"

#include <algorithm>

#include "server/user_metrics.h"
#include "server/users.h"

namespace latent::server {

lsp::LspServerOptions options_for_user(lsp::LspServerOptions base, const SessionUser& user, MetricsRegistry& metrics,
                                       std::shared_ptr<UserQuotas> quotas) {
  if (user.name.empty()) return base;
  base.agent.tenant = user.name;  // agent turns share the engine fairly, as the user's completions do
  base.agent.tenant_weight = user.weight;
  base.refuse_call = [user, &metrics, quotas](std::string_view method) -> std::optional<lsp::RpcError> {
    const Scope need = scope_for_lsp_method(method);
    if (need == kScopeComplete && (user.scopes & need) && quotas && method == "textDocument/inlineCompletion") {
      if (auto wait = quotas->admit(user.name)) {
        record_user_usage(metrics, UserUsage{user.name, "lsp/inlineCompletion", 429, 0, 0, 0, -1});
        return lsp::RpcError{lsp::rpc_error::kRateLimited,
                             "expected requests within this user's quota, found it spent; retry after " +
                                 std::to_string(*wait) + " s"};
      }
    }
    if (need == kScopeNone || (user.scopes & need)) return std::nullopt;
    record_user_usage(metrics, UserUsage{user.name, need == kScopeAgent ? "lsp/agent" : "lsp/" + std::string(
                                                        method.substr(method.find('/') + 1)),
                                         403, 0, 0, 0, -1});
    return lsp::RpcError{lsp::rpc_error::kForbidden, "expected a token with the '" + std::string(scope_name(need)) +
                                                         "' scope for " + std::string(method) + ", found one without it"};
  };
  base.on_usage = [name = user.name, &metrics, quotas](const lsp::CompletionUsage& u) {
    if (u.candidate) {
      // A ranked candidate of one of the user's completions: the tokens it fed (the prompt it did not find in the
      // cache, and its own) count against the quota and in the token series, not as a request.
      const int64_t fed = static_cast<int64_t>(u.prompt_tokens - std::min(u.cached_tokens, u.prompt_tokens));
      if (quotas) quotas->charge_tokens(name, fed + static_cast<int64_t>(u.completion_tokens));
      UserUsage tokens{name, "lsp/inlineCompletion", 200, fed, static_cast<int64_t>(u.completion_tokens), 0, -1};
      tokens.counts_request = false;
      record_user_usage(metrics, tokens);
      return;
    }
    if (quotas) quotas->charge_tokens(name, static_cast<int64_t>(u.prompt_tokens + u.completion_tokens));
    record_user_usage(metrics, UserUsage{name, "lsp/inlineCompletion", 200, static_cast<int64_t>(u.prompt_tokens),
                                         static_cast<int64_t>(u.completion_tokens), u.ttft_ms / 1000.0,
                                         u.milliseconds / 1000.0});
  };
  return base;
}

}  // namespace latent::server
