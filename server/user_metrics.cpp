#include "server/user_metrics.h"

namespace latent {

void record_user_usage(MetricsRegistry& r, const UserUsage& u) {
  if (u.user.empty()) return;
  if (u.counts_request) {
    r.counter("latent_user_requests_total", "Requests answered, per user (--users), endpoint and status",
              {{"user", u.user}, {"endpoint", u.endpoint}, {"status", std::to_string(u.status)}})
        .inc();
  }
  if (u.prompt_tokens > 0 || u.completion_tokens > 0) {
    const char* help = "Prompt and completion tokens, per user (--users)";
    r.counter("latent_user_tokens_total", help, {{"user", u.user}, {"kind", "prompt"}}).inc(static_cast<double>(u.prompt_tokens));
    r.counter("latent_user_tokens_total", help, {{"user", u.user}, {"kind", "completion"}})
        .inc(static_cast<double>(u.completion_tokens));
  }
  if (u.total_seconds >= 0) {
    r.histogram("latent_user_request_seconds", "Request duration, per user (--users)", kLatencyBuckets, {{"user", u.user}})
        .observe(u.total_seconds);
  }
  if (u.ttft_seconds > 0) {
    r.histogram("latent_user_time_to_first_token_seconds", "Time to first token, per user (--users)", kLatencyBuckets,
                {{"user", u.user}})
        .observe(u.ttft_seconds);
  }
}

}  // namespace latent
