// Checkpoint headers: a safetensors image (u64 header length, JSON header, data) and a config.json. Either
// parses into consistent values or is an error; never an out-of-bounds read. The first byte picks which.
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "engine/config.h"
#include "engine/safetensors.h"

#define FUZZ_CHECK(c) \
  if (!(c)) std::abort()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] & 1;
  ++data;
  --size;
  if (mode == 0) {
    auto st = latent::parse_safetensors(data, size, "fuzz.safetensors");
    if (!st.ok()) return 0;
    for (const auto& [name, t] : st->tensors) {
      const auto bytes = latent::checked_nbytes(t.shape, static_cast<size_t>(latent::dtype_size(t.dtype)));
      FUZZ_CHECK(bytes && *bytes == t.nbytes);
      const auto* p = static_cast<const uint8_t*>(t.data);
      FUZZ_CHECK(p >= data && p + t.nbytes <= data + size);
      uint8_t sum = 0;  // touch every byte: a bad pointer is a sanitizer report
      for (size_t i = 0; i < t.nbytes; ++i) sum ^= p[i];
      (void)sum;
      FUZZ_CHECK(t.numel() >= 0);
    }
    return 0;
  }
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  auto c = latent::ModelConfig::from_json(j, "fuzz/config.json");
  if (!c.ok()) return 0;
  // What the engine derives from a config must be computable without overflow.
  FUZZ_CHECK(c->vocab_size > 0 && c->hidden_size > 0);
  const auto embed = latent::checked_nbytes({c->vocab_size, c->hidden_size}, 4);
  FUZZ_CHECK(embed.has_value());
  FUZZ_CHECK(latent::checked_nbytes({c->max_position_embeddings, c->kv_cache_dim(), c->n_cache_layers()}, 4));
  FUZZ_CHECK(std::isfinite(c->softmax_scale()) && c->softmax_scale() > 0);
  FUZZ_CHECK(std::isfinite(c->rope_mscale()) && c->rope_mscale() > 0);
  return 0;
}
