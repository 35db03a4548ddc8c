// DeviceSpec parsing, DeviceBuffer, and the choice of device (engine/device.h).
#include "engine/device.h"

#include <algorithm>
#include <charconv>

#include "engine/sampler.h"
#include "kernels/base/log.h"
#include "kernels/cpu/thread_pool.h"

namespace latent {

Result<DeviceSpec> DeviceSpec::parse(std::string_view text) {
  DeviceSpec s;
  if (text == "cpu") return s;
  if (text == "auto") {
    s.kind = Kind::kAuto;
    return s;
  }
  if (text == "cuda") {
    s.kind = Kind::kCuda;
    return s;
  }
  if (text.starts_with("cuda:")) {
    const std::string_view n = text.substr(5);
    int index = -1;
    const auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), index);
    if (ec == std::errc() && end == n.data() + n.size() && !n.empty() && index >= 0) {
      s.kind = Kind::kCuda;
      s.index = index;
      return s;
    }
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "--device: expected cpu, cuda, cuda:N (N >= 0) or auto, found '" + std::string(text) + "'");
}

std::string DeviceSpec::name() const {
  switch (kind) {
    case Kind::kCpu: return "cpu";
    case Kind::kAuto: return "auto";
    case Kind::kCuda: return "cuda:" + std::to_string(index);
  }
  return "?";
}

void select_on_host(const float* logits, int64_t vocab, std::span<const TokenSelect> rows, std::vector<int32_t>* ids,
                    cpu::ThreadPool* pool) {
  ids->assign(rows.size(), -1);
  auto select = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (!rows[r].params) continue;
      Sampler sampler(*rows[r].params);
      (*ids)[r] = sampler.sample(std::span<const float>(logits + r * vocab, static_cast<size_t>(vocab)), rows[r].history);
    }
  };
  const auto wanted = std::count_if(rows.begin(), rows.end(), [](const TokenSelect& s) { return s.params != nullptr; });
  if (pool && pool->size() > 1 && wanted > 1) {
    pool->parallel_for(static_cast<int64_t>(rows.size()), 1, select);
  } else {
    select(0, static_cast<int64_t>(rows.size()));
  }
}

Status Device::select_tokens(const float* logits, int64_t vocab, std::span<const TokenSelect> rows,
                             std::vector<int32_t>* ids) {
  const int64_t n = static_cast<int64_t>(rows.size()) * vocab;
  if (is_host()) {
    std::vector<float> none;
    LATENT_RETURN_IF_ERROR(fetch_out(none, logits));  // the step's end (nothing to copy)
    select_on_host(logits, vocab, rows, ids);
    return Status::Ok();
  }
  std::vector<float> host(static_cast<size_t>(n));
  LATENT_RETURN_IF_ERROR(fetch_out(host, logits));
  select_on_host(host.data(), vocab, rows, ids);
  return Status::Ok();
}

DeviceBuffer::~DeviceBuffer() {
  if (p_ && device_) device_->release(p_);
}

Result<float*> DeviceBuffer::resize(int64_t n) {
  if (n > cap_) {
    if (!device_) return make_error(ErrorCode::kInternal, "DeviceBuffer: expected a device, found none");
    if (p_) device_->release(p_);
    p_ = nullptr;
    n_ = cap_ = 0;
    LATENT_ASSIGN_OR_RETURN(p_, device_->allocate(n));
    cap_ = n;
  }
  n_ = n;
  return p_;
}

DType gpu_cache_dtype() {
  return cpu::linear_precision() == cpu::LinearPrecision::kExact ? DType::kF32 : DType::kBF16;
}

DType cache_dtype_for(const DeviceSpec& spec) {
  const bool gpu = spec.kind == DeviceSpec::Kind::kCuda ||
                   (spec.kind == DeviceSpec::Kind::kAuto && cuda_device_count() > 0);
  return gpu ? gpu_cache_dtype() : KvCache::dtype_for_precision();
}

Result<std::unique_ptr<Device>> make_device(const DeviceSpec& spec, const ModelConfig& c, cpu::ThreadPool* pool,
                                            uint64_t random_seed) {
  const auto cpu = [&]() -> Result<std::unique_ptr<Device>> {
    if (random_seed != 0) {
      return make_error(ErrorCode::kUnsupported, "random weights: expected a device that generates them (--device "
                                                 "cuda), found the CPU");
    }
    return make_cpu_device(c, pool);
  };
  switch (spec.kind) {
    case DeviceSpec::Kind::kCpu: return cpu();
    case DeviceSpec::Kind::kCuda: return make_cuda_device(spec.index, c, random_seed);
    case DeviceSpec::Kind::kAuto: {
      if (cuda_device_count() == 0) {
        LATENT_LOG_INFO("--device auto: no CUDA GPU (or a build without CUDA): running on the CPU");
        return cpu();
      }
      return make_cuda_device(0, c, random_seed);
    }
  }
  return make_error(ErrorCode::kInvalidArgument, "--device: unknown kind");
}

}  // namespace latent
