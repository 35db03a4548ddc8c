#include "engine/weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "kernels/base/log.h"

namespace latent {

namespace fs = std::filesystem;

struct Weights::Impl {
  std::vector<SafetensorsFile> files;
  std::map<std::string, const TensorInfo*> tensors;  // into files[*].tensors()
  bool placeholder = false;
  std::map<std::string, std::unique_ptr<TensorInfo>> made;  // placeholder(): the tensors asked for
  std::map<uintptr_t, uintptr_t> released;  // page ranges given back: begin -> end (disjoint)
  size_t released_bytes = 0;
};

namespace {
}  // namespace

Weights Weights::placeholder() {
  Weights w;
  w.impl_->placeholder = true;
  return w;
}

bool Weights::is_placeholder() const { return impl_->placeholder; }

namespace {

// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class ProgressBar {
 public:
  ProgressBar(bool enabled, std::string label, size_t total)
      : on_(enabled && ::isatty(2) && total > 0), label_(std::move(label)), total_(total) {}
  void update(size_t done) {
    if (!on_) return;
    int pct = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total_));
    if (pct == last_) return;
    last_ = pct;
    int filled = pct * 30 / 100;
    std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% (%.1f / %.1f MiB)", label_.c_str(), filled,
                 "##############################", 30 - filled, "", pct, done / 1048576.0, total_ / 1048576.0);
    if (done >= total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  bool on_;
  std::string label_;
  size_t total_;
  int last_ = -1;
};

Result<std::vector<std::string>> shard_paths(const std::string& path) {
  if (!fs::exists(path)) return make_error(ErrorCode::kNotFound, path + ": no such file or directory");
  if (!fs::is_directory(path)) return std::vector<std::string>{path};
  fs::path dir(path);
  fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::ifstream in(index);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      return make_error(ErrorCode::kCorrupt, index.string() + ": expected JSON with a weight_map object");
    }
    std::set<std::string> files;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) {
        return make_error(ErrorCode::kCorrupt, index.string() + ": weight_map[" + it.key() +
                                                   "]: expected a file name, found " + it.value().dump());
      }
      files.insert(it.value().get<std::string>());
    }
    std::vector<std::string> out;
    for (const auto& f : files) {
      fs::path p = dir / f;
      if (!fs::exists(p)) {
        return make_error(ErrorCode::kNotFound, index.string() + " lists shard " + f + ", but " + p.string() +
                                                    " does not exist");
      }
      out.push_back(p.string());
    }
    if (out.empty()) return make_error(ErrorCode::kCorrupt, index.string() + ": weight_map is empty");
    return out;
  }
  if (fs::exists(dir / "model.safetensors")) return std::vector<std::string>{(dir / "model.safetensors").string()};
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".safetensors") found.push_back(e.path().string());
  }
  if (found.size() == 1) return found;
  return make_error(ErrorCode::kNotFound, path + ": expected model.safetensors or model.safetensors.index.json, found " +
                                              std::to_string(found.size()) + " .safetensors files");
}

std::string dtypes_string(std::initializer_list<DType> dtypes) {
  std::string s;
  size_t i = 0;
  for (DType d : dtypes) {
    s += (i == 0 ? "" : (i + 1 == dtypes.size() ? " or " : ", "));
    s += dtype_name(d);
    ++i;
  }
  return s;
}

}  // namespace

Weights::Weights() : impl_(std::make_unique<Impl>()) {}
Weights::Weights(Weights&&) noexcept = default;
Weights& Weights::operator=(Weights&&) noexcept = default;
Weights::~Weights() = default;

Result<Weights> Weights::open(const std::string& path, const WeightsOptions& options) {
  LATENT_ASSIGN_OR_RETURN(std::vector<std::string> paths, shard_paths(path));
  size_t total = 0;
  for (const auto& p : paths) {
    std::error_code ec;
    total += fs::file_size(p, ec);
  }
  ProgressBar bar(options.progress, "loading " + fs::path(path).filename().string(), total);
  Weights w;
  size_t done = 0;
  for (const auto& p : paths) {
    LATENT_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(p));
    w.impl_->files.push_back(std::move(f));
    done += w.impl_->files.back().file().size();
    if (!options.prefault) bar.update(done);
  }
  if (options.prefault) {
    w.touch_pages([&](size_t touched, size_t) {
      bar.update(touched);
      return true;
    });
  }
  for (const auto& f : w.impl_->files) {
    for (const auto& [name, info] : f.tensors()) {
      if (!w.impl_->tensors.emplace(name, &info).second) {
        return make_error(ErrorCode::kCorrupt, "tensor " + name + " appears in more than one shard (" + path + ")");
      }
    }
  }
  LATENT_LOG_DEBUG("weights %s: %zu tensors in %zu file(s), %.1f MiB", path.c_str(), w.size(), paths.size(),
                   w.total_bytes() / 1048576.0);
  return w;
}

size_t Weights::file_bytes() const {
  size_t n = 0;
  for (const auto& f : impl_->files) n += f.file().size();
  return n;
}

bool Weights::maps(const void* p, size_t n) const {
  const auto* b = static_cast<const uint8_t*>(p);
  for (const auto& f : impl_->files) {
    const MappedFile& m = f.file();
    if (b >= m.data() && b + n <= m.data() + m.size()) return true;
  }
  return false;
}

void Weights::release(const void* p, size_t n) {
  if (!maps(p, n)) return;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (end <= begin) return;
  if (::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) != 0) {
    LATENT_LOG_WARN("madvise(MADV_DONTNEED) of %zu bytes of the weights' mapping failed: %s", static_cast<size_t>(end - begin),
                    std::strerror(errno));
    return;
  }
  impl_->released.emplace(begin, end);
  impl_->released_bytes += end - begin;
}

size_t Weights::released_bytes() const { return impl_->released_bytes; }

size_t Weights::touch_pages(const std::function<bool(size_t done, size_t total)>& progress) const {
  const size_t total = file_bytes(), page = 4096, chunk = size_t{64} << 20;
  size_t done = 0, next_report = chunk;
  volatile uint8_t sink = 0;
  const auto& released = impl_->released;
  for (const auto& f : impl_->files) {
    const MappedFile& m = f.file();
    for (size_t off = 0; off < m.size(); off += page) {
      if (!released.empty()) {  // a page given back (release) stays out of this process
        const auto a = reinterpret_cast<uintptr_t>(m.data() + off);
        auto it = released.upper_bound(a);
        if (it != released.begin() && a < std::prev(it)->second) continue;
      }
      sink = sink + m.data()[off];
      if (done + off >= next_report) {
        next_report += chunk;
        if (progress && !progress(done + off, total)) return done + off;
      }
    }
    done += m.size();
  }
  (void)sink;
  if (progress) progress(done, total);
  return done;
}

bool Weights::has(const std::string& name) const {
  if (impl_->placeholder) return !name.ends_with("e_score_correction_bias");
  return impl_->tensors.count(name) > 0;
}

const TensorInfo* Weights::find(const std::string& name) const {
  auto it = impl_->tensors.find(name);
  return it == impl_->tensors.end() ? nullptr : it->second;
}

size_t Weights::size() const { return impl_->tensors.size(); }

std::vector<std::string> Weights::names() const {
  std::vector<std::string> out;
  for (const auto& [name, info] : impl_->tensors) out.push_back(name);
  return out;
}

size_t Weights::total_bytes() const {
  size_t n = 0;
  for (const auto& [name, info] : impl_->tensors) n += info->nbytes;
  return n;
}

Result<const TensorInfo*> Weights::get(const std::string& name, std::initializer_list<DType> dtypes,
                                       const std::vector<int64_t>& shape) const {
  if (impl_->placeholder) {
    std::unique_ptr<TensorInfo>& t = impl_->made[name];
    if (!t) t = std::make_unique<TensorInfo>();
    t->name = name;
    t->dtype = std::find(dtypes.begin(), dtypes.end(), DType::kBF16) != dtypes.end() ? DType::kBF16 : *dtypes.begin();
    t->shape = shape;
    // A marker never read, distinct per tensor: the uploader shares one device copy between views of the same
    // address (a tied head), so one address for all made every same-shaped tensor one upload and a random-weight
    // benchmark read fewer distinct bytes than the model it stands for.
    t->data = t.get();
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    t->nbytes = static_cast<size_t>(n) * static_cast<size_t>(dtype_size(t->dtype));
    return t.get();
  }
  const TensorInfo* t = find(name);
  if (!t) return make_error(ErrorCode::kNotFound, name + ": expected a tensor of shape " + shape_string(shape) +
                                                      ", found none in the checkpoint");
  if (std::find(dtypes.begin(), dtypes.end(), t->dtype) == dtypes.end()) {
    return make_error(ErrorCode::kInvalidArgument,
                      name + ": expected dtype " + dtypes_string(dtypes) + ", got " + dtype_name(t->dtype));
  }
  if (t->shape != shape) {
    return make_error(ErrorCode::kInvalidArgument,
                      name + ": expected " + shape_string(shape) + ", got " + shape_string(t->shape));
  }
  return t;
}

Result<cpu::WeightView> Weights::matrix(const std::string& name, int64_t rows, int64_t cols) const {
  LATENT_ASSIGN_OR_RETURN(const TensorInfo* t,
                          get(name, {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}, {rows, cols}));
  cpu::WeightView v;
  v.data = t->data;
  v.dtype = t->dtype;
  v.rows = rows;
  v.cols = cols;
  if (t->dtype == DType::kF8E4M3) {
    const int64_t b = v.block;
    std::string scale_name = name + "_scale_inv";
    LATENT_ASSIGN_OR_RETURN(const TensorInfo* s,
                            get(scale_name, {DType::kF32}, {(rows + b - 1) / b, (cols + b - 1) / b}));
    v.scale_inv = static_cast<const float*>(s->data);
  }
  return v;
}

Result<cpu::WeightView> Weights::vector(const std::string& name, int64_t n) const {
  LATENT_ASSIGN_OR_RETURN(const TensorInfo* t, get(name, {DType::kF32, DType::kBF16, DType::kF16}, {n}));
  cpu::WeightView v;
  v.data = t->data;
  v.dtype = t->dtype;
  v.rows = 1;
  v.cols = n;
  return v;
}

}  // namespace latent
