#pragma once
// Rotary embeddings as DeepSeek-V2/V3 use them: interleaved pairs (x[2i], x[2i+1]) rotated by
// position * inv_freq[i] (not the NeoX half split), with YaRN frequency interpolation when the config has
// rope_scaling (always on then, as in the official inference code run with a long max_seq_len).
#include <cstdint>
#include <vector>

namespace latent {

struct ModelConfig;

// inv_freq[i] for i < rope_dim / 2. YaRN: f_i/factor*r_i + f_i*(1-r_i), f_i = theta^(-2i/rope_dim),
// r_i the linear ramp between the correction dims of beta_fast and beta_slow.
std::vector<float> rope_inv_freq(int64_t rope_dim, double theta);
std::vector<float> yarn_inv_freq(int64_t rope_dim, double theta, double factor, int64_t original_max_pos,
                                 double beta_fast, double beta_slow);
std::vector<float> rope_inv_freq(const ModelConfig& config);

// cos/sin of one position: cs[2i] = mscale * cos(pos * inv_freq[i]), cs[2i+1] = mscale * sin(...), [rope_dim]
// floats. mscale: ModelConfig::rope_mscale() (YaRN's magnitude correction; 1 for plain RoPE).
void rope_cos_sin(const std::vector<float>& inv_freq, int64_t pos, float* cs, float mscale = 1.0f);
// Rotates x[rope_dim] in place with a row from rope_cos_sin.
void rope_rotate(float* x, int64_t rope_dim, const float* cs);

}  // namespace latent
