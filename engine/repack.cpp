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
  std::map<const void*, cpu::WeightView> done;  // mapped data -> its repacked view
  size_t todo = 0;
  for (const cpu::WeightView* v : views) {
    if (cpu::can_pack_bf16_tiles(*v)) todo += static_cast<size_t>(v->rows * v->cols * 2);
  }
  if (todo > (size_t{1} << 30)) {
    LATENT_LOG_INFO("repacking %.1f GB of BF16 weights into the vdpbf16ps tile order (once, at load)", todo / 1e9);
  }
  size_t next_report = size_t{1} << 30, seen = 0;
  for (cpu::WeightView* v : views) {
    if (!cpu::can_pack_bf16_tiles(*v)) continue;
    const size_t n = static_cast<size_t>(v->rows * v->cols * 2);
    if (auto it = done.find(v->data); it != done.end() && it->second.rows == v->rows && it->second.cols == v->cols) {
      *v = it->second;
      continue;
    }
    if (!weights.maps(v->data, n)) continue;
    const size_t bytes = cpu::bf16_tiles_bytes(v->rows, v->cols);
    cpu::TileBuffer buf = cpu::TileBuffer::allocate(bytes);
    if (!buf.data()) {
      return make_error(ErrorCode::kResourceExhausted, "repacking BF16 weights: expected " + std::to_string(bytes) +
                                                           " bytes of memory for a [" + std::to_string(v->rows) + ", " +
                                                           std::to_string(v->cols) + "] tensor, found none free");
    }
    const cpu::WeightView mapped = *v;
    *v = cpu::pack_bf16_tiles(mapped, buf.data(), pool);
    done.emplace(mapped.data, *v);
    weights.release(mapped.data, n);
    store.forget_mapped(mapped.data);
    out.bytes += bytes;
    out.tensors += 1;
    out.buffers.push_back(std::move(buf));
    seen += n;
    if (todo > (size_t{4} << 30) && seen >= next_report) {  // a large model: progress every GB
      LATENT_LOG_INFO("repacked %.1f of %.1f GB", seen / 1e9, todo / 1e9);
      next_report += size_t{1} << 30;
    }
  }
  out.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (out.tensors > 0) {
    LATENT_LOG_INFO("repacked %zu BF16 tensors (%.1f GB) in %.2f s; %.1f GB of the mapping given back", out.tensors,
                    out.bytes / 1e9, out.seconds, weights.released_bytes() / 1e9);
  }
  return Status::Ok();
}

}  // namespace latent
