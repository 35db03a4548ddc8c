#pragma once
// A JSON response body as every OpenAI route writes it (api.cpp, generation.cpp).
#include <string>

#include <nlohmann/json.hpp>

namespace latent::openai {

inline constexpr const char* kJsonContentType = "application/json";

// Compact, with invalid UTF-8 replaced (U+FFFD) instead of thrown on.
inline std::string dump_body(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace latent::openai
