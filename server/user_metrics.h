#pragma once
// Per-user series in /metrics, for latentd --users (the HTTP API and LSP completions both record here):
//   latent_user_requests_total{user, endpoint, status}       requests answered
//   latent_user_tokens_total{user, kind="prompt"|"completion"}
//   latent_user_request_seconds{user}                         whole request (histogram)
//   latent_user_time_to_first_token_seconds{user}             (histogram; requests that produced a token)
// Users come from the users file, so the label sets are bounded by it; endpoints are a fixed list.
#include <cstdint>
#include <string>

#include "server/metrics.h"

namespace latent {

struct UserUsage {
  std::string user;      // empty: nothing is recorded
  std::string endpoint;  // "/v1/completions", "lsp/inlineCompletion", ...
  int status = 200;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double ttft_seconds = 0;   // 0: no token
  double total_seconds = 0;  // < 0: unknown (errors before the engine ran)
  bool counts_request = true;  // false: tokens only (a ranked candidate's work for a request counted already)
};

void record_user_usage(MetricsRegistry& registry, const UserUsage& usage);

}  // namespace latent
