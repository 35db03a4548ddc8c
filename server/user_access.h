#pragma once
// latentd's glue between --users and an LSP connection: the scope check each call goes through, and the
// per-user accounting of completions (server/user_metrics.h).
#include "lsp/lsp_server.h"
#include "server/metrics.h"
#include "server/net_server.h"
#include "server/quota.h"

namespace latent::server {

// `base` with refuse_call and on_usage set for `user` (unchanged when user.name is empty: no --users): scopes,
// quotas (when `quotas` is set; completions take a request and are charged their tokens) and metrics.
lsp::LspServerOptions options_for_user(lsp::LspServerOptions base, const SessionUser& user, MetricsRegistry& metrics,
                                       std::shared_ptr<UserQuotas> quotas = nullptr);

}  // namespace latent::server
