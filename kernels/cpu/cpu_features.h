#pragma once
// What this CPU can do, detected once at run time (cpuid + OS support), so that one binary picks the best
// kernel on every machine: AMX-BF16 > AVX512-BF16 > AVX-512 > AVX2+FMA > scalar.

namespace latent::cpu {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512bf16 = false;
  bool amx_tile = false;
  bool amx_bf16 = false;  // usable: the CPU has it AND the kernel granted XTILEDATA to this process
};

// Detected once; thread-safe. LATENT_CPU=scalar|avx2|avx512 caps what is used (for tests and benchmarks).
const CpuFeatures& cpu_features();

// Asks the kernel for permission to use AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM). Idempotent.
bool request_amx_permission();

// "avx512bf16+amx" etc., for logs and benchmark output.
const char* cpu_features_string();

}  // namespace latent::cpu
