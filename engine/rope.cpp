#include "engine/rope.h"

#include <algorithm>
#include <cmath>

#include "engine/config.h"

namespace latent {

std::vector<float> rope_inv_freq(int64_t rope_dim, double theta) {
  std::vector<float> f(static_cast<size_t>(rope_dim / 2));
  // As torch computes it: 1 / theta ** (arange(0, dim, 2, float32) / dim) in float32.
  for (int64_t i = 0; i < rope_dim / 2; ++i) {
    float e = static_cast<float>(2 * i) / static_cast<float>(rope_dim);
    f[static_cast<size_t>(i)] = 1.0f / std::pow(static_cast<float>(theta), e);
  }
  return f;
}

std::vector<float> yarn_inv_freq(int64_t rope_dim, double theta, double factor, int64_t original_max_pos,
                                 double beta_fast, double beta_slow) {
  std::vector<float> f = rope_inv_freq(rope_dim, theta);
  // Dimension whose wavelength makes n_rot rotations over the original context.
  auto correction_dim = [&](double n_rot) {
    return rope_dim * std::log(static_cast<double>(original_max_pos) / (n_rot * 2 * M_PI)) / (2 * std::log(theta));
  };
  double low = std::max(std::floor(correction_dim(beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(beta_slow)), static_cast<double>(rope_dim - 1));
  if (low == high) high += 0.001;
  for (int64_t i = 0; i < rope_dim / 2; ++i) {
    // ramp in float32 like torch: (arange - low) / (high - low), clamped
    float r = (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low);
    r = std::clamp(r, 0.0f, 1.0f);
    float fi = f[static_cast<size_t>(i)];
    f[static_cast<size_t>(i)] = fi / static_cast<float>(factor) * r + fi * (1.0f - r);
  }
  return f;
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  if (!c.rope_scaling.yarn) return rope_inv_freq(c.qk_rope_head_dim, c.rope_theta);
  return yarn_inv_freq(c.qk_rope_head_dim, c.rope_theta, c.rope_scaling.factor,
                       c.rope_scaling.original_max_position_embeddings, c.rope_scaling.beta_fast,
                       c.rope_scaling.beta_slow);
}

void rope_cos_sin(const std::vector<float>& inv_freq, int64_t pos, float* cs, float mscale) {
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    float angle = static_cast<float>(pos) * inv_freq[i];  // float32 product, as torch.outer
    // (cos * mscale) in float32, as the reference's cos_cached = emb.cos() * _mscale
    cs[2 * i] = static_cast<float>(std::cos(static_cast<double>(angle))) * mscale;
    cs[2 * i + 1] = static_cast<float>(std::sin(static_cast<double>(angle))) * mscale;
  }
}

void rope_rotate(float* x, int64_t rope_dim, const float* cs) {
  for (int64_t i = 0; i < rope_dim; i += 2) {
    float a = x[i], b = x[i + 1], c = cs[i], s = cs[i + 1];
    x[i] = a * c - b * s;
    x[i + 1] = a * s + b * c;
  }
}

}  // namespace latent
