#pragma once
// Per-thread, grow-only, 64-byte aligned scratch buffers for the op bodies (packed panels, tiles).
#include <cstddef>
#include <cstdint>

namespace latent::cpu {

enum class ScratchSlot { kPackedX = 0, kPackedW = 1, kTiles = 2, kCount = 3 };

// A buffer of at least n floats for the calling thread; valid until the same thread asks the same slot again.
float* thread_scratch(ScratchSlot slot, size_t n);

}  // namespace latent::cpu
