#pragma once
// NumPy .npy files (format 1.0/2.0, little-endian, C order): the golden data's format and `latent logits`'s.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/base/result.h"

namespace latent {

struct NpyArray {
  std::string dtype;               // "<f4" or "<i4"
  std::vector<int64_t> shape;
  std::vector<float> f32;          // filled for <f4
  std::vector<int32_t> i32;        // filled for <i4
  int64_t numel() const;
};

Result<NpyArray> read_npy(const std::string& path);
Status write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace latent
