#pragma once
// DeepSeekMoE on the device: the router (every DeepSeek-V2/V3 variant, semantics of engine/moe.h
// route_token) and the routed experts run over the selected experts only, as a grouped GEMV that reads each
// chosen expert's rows straight from its weights (decode: n tokens x top_k experts, no gather of weights).
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "kernels/base/result.h"
#include "kernels/cuda/memory.h"

namespace latent::cuda {

// The routing fields of ModelConfig, as plain values (kernels do not see engine/config.h).
struct RouterParams {
  enum class Method { kGreedy, kGroupLimitedGreedy, kNoauxTc };
  int64_t n_experts = 0, top_k = 0, n_group = 1, topk_group = 1;
  bool sigmoid = false;  // scoring_func: sigmoid | softmax
  Method method = Method::kGreedy;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.f;
};

// logits[n, E] -> idx[n, K] (ascending expert ids) and weight[n, K]. bias: [E] float32 on the device or null.
Status route(const RouterParams& p, const float* logits, int64_t n, const float* bias, int32_t* idx, float* weight,
             cudaStream_t stream);

// Device tables of the routed experts' weight pointers (all experts share dtype and shape).
struct ExpertTable {
  DType dtype = DType::kBF16;
  int64_t n_experts = 0, d = 0, inter = 0, block = 128;
  const void* const* gate = nullptr;  // [E] -> [inter, d]
  const void* const* up = nullptr;    // [E] -> [inter, d]
  const void* const* down = nullptr;  // [E] -> [d, inter]
  const float* const* gate_scale = nullptr;  // FP8 only, else entries null
  const float* const* up_scale = nullptr;
  const float* const* down_scale = nullptr;
};
// Builds the pointer tables in the arena from uploaded weights (index = expert id).
Result<ExpertTable> make_expert_table(DeviceArena& arena, const std::vector<DeviceWeight>& gate,
                                      const std::vector<DeviceWeight>& up, const std::vector<DeviceWeight>& down);

// y[n, d] (+)= Σ_k weight[t, k] · down_e(silu(gate_e x_t) * up_e x_t), e = idx[t, k]. h: scratch [n, K, inter].
// accumulate: add to y (on top of the shared experts' output) instead of overwriting it.
Status moe_experts(const ExpertTable& experts, const float* x, int64_t n, int64_t top_k, const int32_t* idx,
                   const float* weight, float* h, float* y, bool accumulate, cudaStream_t stream);

}  // namespace latent::cuda
