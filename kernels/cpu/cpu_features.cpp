#include "kernels/cpu/cpu_features.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace latent::cpu {
namespace {

constexpr int kArchGetXcompPerm = 0x1022;
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

unsigned long long xgetbv0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  if (!osxsave) return f;
  unsigned long long xcr0 = xgetbv0();
  bool os_avx = (xcr0 & 0x6) == 0x6;
  bool os_avx512 = (xcr0 & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = os_avx && (b & (1u << 5));
  f.avx512f = os_avx512 && (b & (1u << 16));
  f.avx512bw = os_avx512 && (b & (1u << 30));
  f.avx512vl = os_avx512 && (b & (1u << 31));
  f.amx_bf16 = d & (1u << 22);
  f.amx_tile = d & (1u << 24);
  unsigned a1, b1, c1, d1;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512bf16 = os_avx512 && (a1 & (1u << 5));
  if (!f.avx2) f.fma = false;
  if (f.amx_tile && f.amx_bf16) f.amx_bf16 = request_amx_permission();
  if (!f.amx_tile) f.amx_bf16 = false;

  if (const char* cap = std::getenv("LATENT_CPU")) {
    std::string s = cap;
    if (s == "scalar" || s == "avx2") {
      f.avx512f = f.avx512bw = f.avx512vl = f.avx512bf16 = f.amx_tile = f.amx_bf16 = false;
    }
    if (s == "scalar") f.avx2 = f.fma = f.f16c = false;
    if (s == "avx512") f.amx_tile = f.amx_bf16 = false;
  }
  return f;
}

}  // namespace

bool request_amx_permission() {
  static const bool granted = [] {
    unsigned long bitmask = 0;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
    if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &bitmask) != 0) return false;
    return (bitmask & (1ul << kXfeatureXtiledata)) != 0;
  }();
  return granted;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const char* cpu_features_string() {
  static const std::string s = [] {
    const CpuFeatures& f = cpu_features();
    std::string r;
    auto add = [&](bool on, const char* name) {
      if (!on) return;
      if (!r.empty()) r += "+";
      r += name;
    };
    add(f.avx2, "avx2");
    add(f.fma, "fma");
    add(f.avx512f, "avx512f");
    add(f.avx512bf16, "avx512bf16");
    add(f.amx_bf16, "amx-bf16");
    if (r.empty()) r = "scalar";
    return r;
  }();
  return s.c_str();
}

}  // namespace latent::cpu
