#pragma once
// Helpers shared by the engine's model tests: golden manifests, running a DeepseekModel over whole
// sequences with a private KvCache, and comparing float arrays.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/deepseek_model.h"
#include "engine/npy.h"
#include "engine/safetensors.h"
#include "tests/test_paths.h"

namespace latent::test {

// Runs `cmd` through the shell (stdin from /dev/null) and returns its stdout and stderr together; *exit_code is
// its exit status, or -1 when it did not exit normally (a signal) or could not start.
inline std::string run_command(const std::string& cmd, int* exit_code) {
  std::string out;
  *exit_code = -1;
  std::FILE* p = ::popen((cmd + " 2>&1 </dev/null").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  if (WIFEXITED(st)) *exit_code = WEXITSTATUS(st);
  return out;
}

inline std::string golden_dir(const std::string& model) { return std::string(LATENT_TEST_DATA) + "/golden/" + model; }

inline nlohmann::json golden_manifest(const std::string& model) {
  std::ifstream in(golden_dir(model) + "/golden/manifest.json");
  return nlohmann::json::parse(in);
}

inline NpyArray golden_npy(const std::string& model, const std::string& file) {
  auto a = read_npy(golden_dir(model) + "/golden/" + file);
  EXPECT_TRUE(a.ok()) << (a.ok() ? "" : a.error().to_string());
  return a.ok() ? std::move(*a) : NpyArray{};
}

// max |a - b| over n values; also fails the test when some |Δ| > atol + rtol * |b|.
inline double expect_close(const float* a, const float* b, size_t n, double atol, double rtol, const std::string& what) {
  double worst = 0;
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(d <= atol + rtol * std::fabs(b[i]))) {
      if (bad++ == 0) first_bad = i;
    }
    if (!(d <= worst)) worst = d;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << n << " values off, first at " << first_bad << " (" << a[first_bad]
                     << " vs " << b[first_bad] << "), max |Δ| " << worst;
  return worst;
}

inline int32_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

// One sequence with its own blocks in a cache; feeds tokens in chunks.
class SequenceRunner {
 public:
  SequenceRunner(DeepseekModel& model, KvCache& cache, int64_t max_tokens) : model_(model), cache_(cache) {
    auto b = cache.allocate(KvCache::blocks_needed(max_tokens));
    EXPECT_TRUE(b.ok());
    if (b.ok()) blocks_ = *b;
  }
  ~SequenceRunner() {
    for (BlockId b : blocks_) (void)cache_.unref(b);
  }
  // Forward of `tokens` after what is cached; logits of every new token [n, V].
  ForwardResult feed(const std::vector<int32_t>& tokens, bool all_logits = true, ForwardTrace* trace = nullptr,
                     bool hidden = false) {
    SequenceInput in{tokens, n_cached_, blocks_, all_logits};
    ForwardOptions opt;
    opt.trace = trace;
    opt.return_hidden = hidden;
    auto r = model_.forward(std::span<const SequenceInput>(&in, 1), cache_, opt);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    n_cached_ += static_cast<int64_t>(tokens.size());
    return r.ok() ? std::move(*r) : ForwardResult{};
  }
  ForwardResult feed_mtp(const std::vector<int32_t>& next_tokens, const float* hidden, ForwardTrace* trace = nullptr) {
    MtpSequenceInput in{next_tokens, hidden, n_mtp_, blocks_, true};
    ForwardOptions opt;
    opt.trace = trace;
    auto r = model_.forward_mtp(std::span<const MtpSequenceInput>(&in, 1), cache_, opt);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    n_mtp_ += static_cast<int64_t>(next_tokens.size());
    return r.ok() ? std::move(*r) : ForwardResult{};
  }
  const std::vector<BlockId>& blocks() const { return blocks_; }

 private:
  DeepseekModel& model_;
  KvCache& cache_;
  std::vector<BlockId> blocks_;
  int64_t n_cached_ = 0, n_mtp_ = 0;
};

inline std::unique_ptr<DeepseekModel> load_model(const std::string& dir) {
  auto m = DeepseekModel::load(dir);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().to_string());
  return m.ok() ? std::move(*m) : nullptr;
}

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = (std::filesystem::temp_directory_path() /
             ("latent_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++)))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& f) const { return path_ + "/" + f; }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string path_;
};

// An editable in-memory copy of a checkpoint (config + tensors) that tests change and write back out.
struct Checkpoint {
  struct Tensor {
    DType dtype = DType::kF32;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
    std::vector<float> f32() const {  // F32 tensors only
      std::vector<float> v(bytes.size() / 4);
      std::memcpy(v.data(), bytes.data(), bytes.size());
      return v;
    }
    void set_f32(const std::vector<float>& v) {
      dtype = DType::kF32;
      bytes.resize(v.size() * 4);
      std::memcpy(bytes.data(), v.data(), bytes.size());
    }
  };
  nlohmann::json config;
  std::map<std::string, Tensor> tensors;

  static Checkpoint read(const std::string& dir) {
    Checkpoint c;
    std::ifstream in(dir + "/config.json");
    c.config = nlohmann::json::parse(in);
    auto f = SafetensorsFile::open(dir + "/model.safetensors");
    EXPECT_TRUE(f.ok());
    if (!f.ok()) return c;
    for (const auto& [name, t] : f->tensors()) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      c.tensors[name] = Tensor{t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes)};
    }
    return c;
  }
  std::vector<TensorToWrite> to_write(const std::vector<std::string>& names) const {
    std::vector<TensorToWrite> out;
    for (const auto& n : names) {
      const Tensor& t = tensors.at(n);
      out.push_back({n, t.dtype, t.shape, t.bytes.data()});
    }
    return out;
  }
  // config.json + model.safetensors in dir.
  void write(const std::string& dir) const {
    std::ofstream(dir + "/config.json") << config.dump(2);
    std::vector<std::string> names;
    for (const auto& [n, t] : tensors) names.push_back(n);
    Status st = write_safetensors(dir + "/model.safetensors", to_write(names));
    ASSERT_TRUE(st.ok()) << st.error().to_string();
  }
};

}  // namespace latent::test
