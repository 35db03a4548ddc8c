// OpenAI and /infill JSON bodies (server/openai/protocol.h): any body parses into a request or an ApiError
// with a message; never a crash. The first byte picks the endpoint.
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "server/openai/protocol.h"

#define FUZZ_CHECK(c) \
  if (!(c)) std::abort()

namespace {
template <typename T>
void check(const latent::openai::Parsed<T>& r) {
  if (const auto* e = std::get_if<latent::openai::ApiError>(&r)) {
    FUZZ_CHECK(!e->message.empty() && e->status >= 400 && e->status < 600);
    (void)latent::openai::error_json(*e).dump();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t which = data[0] % 3;
  nlohmann::json body = nlohmann::json::parse(data + 1, data + size, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return 0;
  latent::openai::Limits limits;
  switch (which) {
    case 0: check(latent::openai::parse_completion_request(body, limits)); break;
    case 1: check(latent::openai::parse_chat_request(body, limits)); break;
    default: {
      auto r = latent::openai::parse_infill_request(body, limits);
      check(r);
      if (auto* ok = std::get_if<latent::openai::InfillRequest>(&r)) (void)latent::openai::infill_fim_prompt(*ok);
    }
  }
  return 0;
}
