#pragma once
// One memory-mapped safetensors file: u64-LE header length, JSON header {name: {dtype, shape, data_offsets}},
// then little-endian row-major data. Parsing checks every tensor against its dtype, shape and the file size.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/base/result.h"
#include "kernels/cpu/dtype.h"

namespace latent {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // inside the mapping
  size_t nbytes = 0;
  int64_t numel() const;
};

std::string shape_string(const std::vector<int64_t>& shape);  // "[256, 32]"
// Bytes of a tensor of `shape` with `element_size`-byte elements; nullopt when a dimension is negative or the
// element count or byte count does not fit in 63 / 64 bits.
std::optional<uint64_t> checked_nbytes(const std::vector<int64_t>& shape, size_t element_size);
// Safetensors dtype spelling -> DType; "F64", "I32" etc. are kUnsupported errors.
Result<DType> parse_dtype(const std::string& name);

// A read-only mapping of one file; move-only, unmapped on destruction.
class MappedFile {
 public:
  static Result<MappedFile> open(const std::string& path);
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// The parsed header of a safetensors image: every tensor checked against its dtype, its shape (no overflow)
// and the image size. TensorInfo::data points into `data`.
struct SafetensorsHeader {
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};
// Parses the `size`-byte image at `data` (a whole .safetensors file); `path` prefixes error messages.
Result<SafetensorsHeader> parse_safetensors(const uint8_t* data, size_t size, const std::string& path);

class SafetensorsFile {
 public:
  // Maps `path` and validates the header against the file size.
  static Result<SafetensorsFile> open(const std::string& path);

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const MappedFile& file() const { return file_; }

 private:
  MappedFile file_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes a safetensors file (tests, conversion tools): tensors in the given order, header padded to 8 bytes.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // numel * dtype_size bytes
};
Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace latent
