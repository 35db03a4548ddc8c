#include "engine/npy.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>

namespace latent {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

Result<NpyArray> read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot open");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) {
    return make_error(ErrorCode::kCorrupt, path + ": expected the .npy magic \\x93NUMPY");
  }
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    uint16_t h16 = 0;
    in.read(reinterpret_cast<char*>(&h16), 2);
    header_len = h16;
  } else {
    in.read(reinterpret_cast<char*>(&header_len), 4);
  }
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) return make_error(ErrorCode::kCorrupt, path + ": truncated header");
  std::smatch m;
  NpyArray a;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'"))) {
    return make_error(ErrorCode::kCorrupt, path + ": header has no descr");
  }
  a.dtype = m[1];
  if (std::regex_search(header, m, std::regex("'fortran_order':\\s*True"))) {
    return make_error(ErrorCode::kUnsupported, path + ": expected C order, found Fortran order");
  }
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)"))) {
    return make_error(ErrorCode::kCorrupt, path + ": header has no shape");
  }
  std::string dims = m[1];
  const std::regex digits("\\d+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), digits), end; it != end; ++it) {
    a.shape.push_back(std::stoll(it->str()));
  }
  int64_t n = a.numel();
  if (a.dtype == "<f4") {
    a.f32.resize(n);
    in.read(reinterpret_cast<char*>(a.f32.data()), n * 4);
  } else if (a.dtype == "<i4") {
    a.i32.resize(n);
    in.read(reinterpret_cast<char*>(a.i32.data()), n * 4);
  } else {
    return make_error(ErrorCode::kUnsupported, path + ": expected dtype <f4 or <i4, found " + a.dtype);
  }
  if (!in) return make_error(ErrorCode::kCorrupt, path + ": truncated data");
  return a;
}

Status write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dims;
  int64_t n = 1;
  for (auto d : shape) {
    dims += std::to_string(d) + ",";
    n *= d;
  }
  if (shape.size() > 1) dims.pop_back();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), std::fclose);
  if (!f) return make_error(ErrorCode::kIo, path + ": cannot create");
  uint16_t hl = static_cast<uint16_t>(header.size());
  std::fwrite("\x93NUMPY\x01\x00", 1, 8, f.get());
  std::fwrite(&hl, 2, 1, f.get());
  std::fwrite(header.data(), 1, header.size(), f.get());
  if (std::fwrite(data, 4, n, f.get()) != static_cast<size_t>(n)) {
    return make_error(ErrorCode::kIo, path + ": short write");
  }
  return Status::Ok();
}

}  // namespace latent
