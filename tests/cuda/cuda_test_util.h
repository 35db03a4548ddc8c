#pragma once
// Helpers of the CUDA tests: random host data in every weight dtype, CPU views of it, device copies.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/memory.h"

// No CUDA device: the case is skipped in the normal suite (CI has no GPU), and fails with LATENT_REQUIRE_GPU=1
// (scripts/gpu-check sets it), so that a run meant for a GPU cannot pass by skipping.
#define LATENT_REQUIRE_GPU()                                                                          \
  do {                                                                                                \
    if (::latent::cuda::device_count() == 0) {                                                        \
      if (::latent::cuda::testing::gpu_required())                                                    \
        FAIL() << "LATENT_REQUIRE_GPU=1: expected a CUDA device, found none (cudaGetDeviceCount)";    \
      GTEST_SKIP() << "no CUDA device present";                                                       \
    }                                                                                                 \
  } while (0)

namespace latent::cuda::testing {

// The CPU references of every CUDA test in exact float32, from start-up: the default fast precision rounds
// activations to BF16 on a CPU with AVX512-BF16 (~1e-3 off), past the tolerances of the GPU's float32 paths, and a
// test run alone or filtered must not depend on an earlier test having set it. Tests that want BF16 set it.
inline const bool kExactCpuReferences = (cpu::set_linear_precision(cpu::LinearPrecision::kExact), true);

inline bool gpu_required() {
  const char* e = std::getenv("LATENT_REQUIRE_GPU");
  return e != nullptr && std::string(e) == "1";
}

inline std::vector<float> random_floats(int64_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

// A host weight in `dtype` with random values (FP8: random block scales) and its CPU view.
struct HostWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  cpu::WeightView view;

  HostWeight(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
    const std::vector<float> f = random_floats(rows * cols, seed, -0.5f, 0.5f);
    bytes.resize(static_cast<size_t>(rows * cols * dtype_size(dtype)));
    for (int64_t i = 0; i < rows * cols; ++i) {
      switch (dtype) {
        case DType::kF32: reinterpret_cast<float*>(bytes.data())[i] = f[i]; break;
        case DType::kBF16: reinterpret_cast<uint16_t*>(bytes.data())[i] = f32_to_bf16(f[i]); break;
        case DType::kF16: ADD_FAILURE() << "HostWeight: F16 has no host encoder here"; return;
        case DType::kF8E4M3: bytes[static_cast<size_t>(i)] = f32_to_fp8e4m3(f[i] * 400.f); break;
      }
    }
    view = cpu::WeightView{bytes.data(), dtype, rows, cols};
    if (dtype == DType::kF8E4M3) {
      scales = random_floats(((rows + 127) / 128) * ((cols + 127) / 128), seed + 1, 0.5f / 400.f, 1.5f / 400.f);
      view.scale_inv = scales.data();
    }
  }
};

// max |a - b| / max(1, max |b|): error relative to the output's scale.
// Largest |a - b| over max(1, max |b|); NaN when a holds a NaN where b does not (std::max would drop it, and a
// kernel writing NaN would pass), infinity when the sizes differ.
inline double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 1.0, e = 0.0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, static_cast<double>(std::fabs(b[i])));
  for (size_t i = 0; i < b.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (std::isnan(d)) return d;  // kept: a later finite difference must not replace it
    e = std::max(e, d);
  }
  return e / m;
}

}  // namespace latent::cuda::testing
