#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include <nlohmann/json.hpp>

namespace latent {

int64_t TensorInfo::numel() const {
  // Shapes were bounded at parse time (checked_numel), so this product cannot overflow.
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::optional<uint64_t> checked_nbytes(const std::vector<int64_t>& shape, size_t element_size) {
  uint64_t n = element_size;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  }
  // numel() is int64_t: keep the element count (not only the byte count) representable.
  if (element_size == 0 || n / element_size > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Result<DType> parse_dtype(const std::string& name) {
  if (name == "F32") return DType::kF32;
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  if (name == "F8_E4M3") return DType::kF8E4M3;
  return make_error(ErrorCode::kUnsupported, "dtype: expected F32, BF16, F16 or F8_E4M3, found " + name);
}

// ---- MappedFile

Result<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                      path + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return make_error(ErrorCode::kIo, path + ": cannot stat: " + std::strerror(e));
  }
  MappedFile f;
  f.path_ = path;
  f.size_ = static_cast<size_t>(st.st_size);
  if (f.size_ > 0) {
    void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return make_error(ErrorCode::kIo, path + ": cannot mmap: " + std::strerror(e));
    }
    f.data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(o.path_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

// ---- SafetensorsFile

Result<SafetensorsHeader> parse_safetensors(const uint8_t* data, size_t size, const std::string& path) {
  if (size < 8) {
    return make_error(ErrorCode::kCorrupt, path + ": truncated: expected at least 8 bytes (header length), got " +
                                               std::to_string(size));
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);
  if (header_len > size - 8) {
    return make_error(ErrorCode::kCorrupt, path + ": truncated: header length " + std::to_string(header_len) +
                                               " exceeds the " + std::to_string(size - 8) + " bytes after it");
  }
  const char* h = reinterpret_cast<const char*>(data + 8);
  nlohmann::json header = nlohmann::json::parse(h, h + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return make_error(ErrorCode::kCorrupt, path + ": expected a JSON object header, found unparsable text");
  }
  const size_t data_start = 8 + header_len;
  const size_t data_size = size - data_start;

  SafetensorsHeader st;
  size_t max_end = 0;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (v.is_object()) {
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (m.value().is_string()) st.metadata[m.key()] = m.value().get<std::string>();
        }
      }
      continue;
    }
    auto bad = [&](const std::string& what) {
      return make_error(ErrorCode::kCorrupt, path + ": tensor " + name + ": " + what);
    };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2) {
      return bad("expected {dtype, shape, data_offsets}, found " + v.dump());
    }
    TensorInfo t;
    t.name = name;
    auto dt = parse_dtype(v["dtype"].get<std::string>());
    if (!dt.ok()) return make_error(ErrorCode::kUnsupported, path + ": tensor " + name + ": " + dt.error().message);
    t.dtype = *dt;
    for (const auto& d : v["shape"]) {
      // is_number_unsigned alone admits 2^64-1, which an int64_t cast turns negative.
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return bad("expected non-negative integer dimensions below 2^63, found " + v["shape"].dump());
      }
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    const auto& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      return bad("expected two non-negative data_offsets, found " + off.dump());
    }
    // The byte count is computed with overflow checks: an unchecked product can wrap to a small number that
    // matches data_offsets while the shape promises far more data than the file holds.
    const std::optional<uint64_t> expected = checked_nbytes(t.shape, static_cast<size_t>(dtype_size(t.dtype)));
    if (!expected || *expected > data_size) {
      return make_error(ErrorCode::kCorrupt,
                        path + ": tensor " + name + ": shape " + shape_string(t.shape) + " of " +
                            v["dtype"].get<std::string>() + " needs " +
                            (expected ? std::to_string(*expected) + " bytes" : std::string("more than 2^64 bytes")) +
                            ", expected at most the " + std::to_string(data_size) + " bytes of the data section");
    }
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (end < begin || end - begin != *expected) {
      return bad("data_offsets " + off.dump() + " span " + std::to_string(end < begin ? 0 : end - begin) +
                 " bytes, expected " + std::to_string(*expected) + " for " + v["dtype"].get<std::string>() + " " +
                 shape_string(t.shape));
    }
    if (end > data_size) {
      return make_error(ErrorCode::kCorrupt, path + ": truncated: tensor " + name + " ends at byte " +
                                                 std::to_string(end) + " of the data section, which has only " +
                                                 std::to_string(data_size) + " bytes");
    }
    max_end = std::max(max_end, static_cast<size_t>(end));
    t.data = data + data_start + begin;
    t.nbytes = static_cast<size_t>(*expected);
    st.tensors.emplace(name, std::move(t));
  }
  if (max_end != data_size) {
    return make_error(ErrorCode::kCorrupt, path + ": header describes " + std::to_string(max_end) +
                                               " data bytes, file has " + std::to_string(data_size));
  }
  return st;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  LATENT_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  LATENT_ASSIGN_OR_RETURN(SafetensorsHeader header, parse_safetensors(file.data(), file.size(), path));
  SafetensorsFile st;
  st.tensors_ = std::move(header.tensors);
  st.metadata_ = std::move(header.metadata);
  st.file_ = std::move(file);  // moving the mapping keeps its address: the tensors' pointers stay valid
  return st;
}

Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  std::vector<size_t> sizes;
  for (const auto& t : tensors) {
    const std::optional<uint64_t> nbytes = checked_nbytes(t.shape, static_cast<size_t>(dtype_size(t.dtype)));
    if (!nbytes) {
      return make_error(ErrorCode::kInvalidArgument, path + ": tensor " + t.name + ": expected a shape whose size "
                                                         "fits in 64 bits, found " + shape_string(t.shape));
    }
    const size_t bytes = static_cast<size_t>(*nbytes);
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    sizes.push_back(bytes);
  }
  std::string h = header.dump();
  h += std::string((8 - h.size() % 8) % 8, ' ');
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return make_error(ErrorCode::kIo, path + ": cannot create: " + std::strerror(errno));
  uint64_t len = h.size();
  bool ok = std::fwrite(&len, 8, 1, f) == 1 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i) {
    ok = sizes[i] == 0 || std::fwrite(tensors[i].data, 1, sizes[i], f) == sizes[i];
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return make_error(ErrorCode::kIo, path + ": short write");
  return Status::Ok();
}

}  // namespace latent
