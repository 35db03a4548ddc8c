#include "engine/repack.h"

#include <chrono>
#include <map>
#include <string>

#include "kernels/base/log.h"

namespace latent {

bool repack_applies() {
  return cpu::linear_precision() == cpu::LinearPrecision::kBf16Activations && cpu::bf16_activations_available();
}

Status repack_linears(std::span<cpu::WeightView* const> views, Weights& weights, ShardStore& store,
                      RepackedWeights& out, cpu::ThreadPool* pool) {
  const auto t0 = std::chrono::steady_clock::now();
  // One arena for every tensor, each at a 4 KiB boundary (a buffer per tensor, rounded to 2 MiB huge pages,
  // held 0.3 GB more than the weights for Coder-V2-Lite's 5.8 MB experts).
  constexpr size_t kAlign = 4096;
  std::map<const void*, size_t> offset;  // mapped data -> its tiles' offset in the arena
  size_t total = 0, todo = 0;
  for (const cpu::WeightView* v : views) {
    const size_t n = static_cast<size_t>(v->rows * v->cols * 2);
    if (!cpu::can_pack_bf16_tiles(*v) || !weights.maps(v->data, n) || offset.count(v->data)) continue;
    offset.emplace(v->data, total);
    total += (cpu::bf16_tiles_bytes(v->rows, v->cols) + kAlign - 1) / kAlign * kAlign;
    todo += n;
  }
  if (offset.empty()) return Status::Ok();
  if (todo > (size_t{1} << 30)) {
    LATENT_LOG_INFO("repacking %.1f GB of BF16 weights into the vdpbf16ps tile order (once, at load)", todo / 1e9);
  }
  cpu::TileBuffer arena = cpu::TileBuffer::allocate(total);
  if (!arena.data()) {
    return make_error(ErrorCode::kResourceExhausted, "repacking BF16 weights: expected " + std::to_string(total) +
                                                         " bytes of memory for their tiles, found none free");
  }
  auto* base = static_cast<uint8_t*>(arena.data());
  std::map<const void*, cpu::WeightView> done;  // mapped data -> its repacked view
  size_t next_report = size_t{1} << 30, seen = 0;
  for (cpu::WeightView* v : views) {
    auto at = offset.find(v->data);
    if (at == offset.end() || !cpu::can_pack_bf16_tiles(*v)) continue;
    if (auto it = done.find(v->data); it != done.end()) {  // the same tensor reached twice
      if (it->second.rows == v->rows && it->second.cols == v->cols) *v = it->second;
      continue;
    }
    const cpu::WeightView mapped = *v;
    const size_t n = static_cast<size_t>(mapped.rows * mapped.cols * 2);
    *v = cpu::pack_bf16_tiles(mapped, base + at->second, pool);
    done.emplace(mapped.data, *v);
    weights.release(mapped.data, n);
    store.forget_mapped(mapped.data);
    out.bytes += cpu::bf16_tiles_bytes(mapped.rows, mapped.cols);
    out.tensors += 1;
    seen += n;
    if (todo > (size_t{4} << 30) && seen >= next_report) {  // a large model: progress every GB
      LATENT_LOG_INFO("repacked %.1f of %.1f GB", seen / 1e9, todo / 1e9);
      next_report += size_t{1} << 30;
    }
  }
  out.buffers.push_back(std::move(arena));
  out.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (todo > (size_t{1} << 30)) {  // a small model's repack is not worth a line
    LATENT_LOG_INFO("repacked %zu BF16 tensors (%.1f GB) in %.2f s; %.1f GB of the mapping given back", out.tensors,
                    out.bytes / 1e9, out.seconds, weights.released_bytes() / 1e9);
  } else {
    LATENT_LOG_DEBUG("repacked %zu BF16 tensors (%.1f MB) in %.3f s", out.tensors, out.bytes / 1e6, out.seconds);
  }
  return Status::Ok();
}

}  // namespace latent
