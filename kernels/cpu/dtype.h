#pragma once
// Storage dtypes of weights as they sit in safetensors (memory-mapped, never widened into copies).
#include <cstdint>
#include <cstring>

namespace latent {

enum class DType { kF32, kBF16, kF16, kF8E4M3 };

const char* dtype_name(DType t);  // safetensors spelling: "F32", "BF16", "F16", "F8_E4M3"
int dtype_size(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round to nearest even (NaN stays NaN).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float f16_to_f32(uint16_t h);
float fp8e4m3_to_f32(uint8_t v);   // OCP E4M3FN: bias 7, no inf, 0x7f/0xff = NaN
uint8_t f32_to_fp8e4m3(float f);   // round to nearest even, saturating to ±448

}  // namespace latent
