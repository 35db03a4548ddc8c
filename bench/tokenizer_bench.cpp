// tokenizer_bench: encode/decode throughput of the DeepSeek-V3 tokenizer on one thread, over >= 10 MB of real
// code (tests/data/tokenizer/corpus repeated). Prints one JSON object.
//   tokenizer_bench [--model DIR] [--corpus DIR] [--mb N]
// "cold": the piece cache disabled (every piece is pre-tokenized and BPE-merged); "warm": the default cache.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/tokenizer.h"
#include "kernels/cpu/cpu_features.h"

namespace {

// CPU time of this thread: on a shared, loaded machine wall time overstates the cost.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  fs::path data = fs::path(__FILE__).parent_path().parent_path() / "tests" / "data" / "tokenizer";
  std::string model = (data / "deepseek-v3").string(), corpus_dir = (data / "corpus").string();
  double min_mb = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--corpus")) corpus_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--mb")) min_mb = std::atof(argv[i + 1]);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto tok = latent::Tokenizer::load(model);
  if (!tok.ok()) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", tok.error().to_string().c_str());
    return 1;
  }
  double load_s = seconds_since(t0);

  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(corpus_dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string doc;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    doc += ss.str();
  }
  if (doc.empty()) {
    std::fprintf(stderr, "tokenizer_bench: no corpus files in %s\n", corpus_dir.c_str());
    return 1;
  }
  int reps = static_cast<int>(min_mb * 1e6 / doc.size()) + 1;
  double total_mb = reps * doc.size() / 1e6;

  // Returns MB/s by wall time; *cpu_mbs by this thread's CPU time.
  auto run = [&](size_t cache_entries, size_t* n_tokens, double* cpu_mbs) {
    tok->set_cache_capacity(cache_entries);
    auto start = std::chrono::steady_clock::now();
    double cpu0 = thread_cpu_seconds();
    size_t n = 0;
    for (int r = 0; r < reps; ++r) n += tok->encode(doc).size();
    *n_tokens = n;
    *cpu_mbs = total_mb / (thread_cpu_seconds() - cpu0);
    return total_mb / seconds_since(start);
  };
  size_t n_cold = 0, n_warm = 0;
  double cold_cpu = 0, warm_cpu = 0;
  double cold = run(0, &n_cold, &cold_cpu);
  double warm = run(size_t{1} << 18, &n_warm, &warm_cpu);

  auto ids = tok->encode(doc);
  auto start = std::chrono::steady_clock::now();
  size_t out_bytes = 0;
  for (int r = 0; r < reps; ++r) out_bytes += tok->decode(ids).size();
  double decode = total_mb / seconds_since(start);

  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  nlohmann::json j = {
      {"bench", "tokenizer"},
      {"machine", {{"host", host}, {"cpu", cpu_model()}, {"features", latent::cpu::cpu_features_string()}}},
      {"threads", 1},
      {"tokenizer", model},
      {"corpus_bytes", doc.size()},
      {"repetitions", reps},
      {"encoded_mb", total_mb},
      {"tokens", n_cold},
      {"bytes_per_token", static_cast<double>(doc.size() * reps) / n_cold},
      {"load_ms", load_s * 1e3},
      {"encode_mb_per_s_cold_cache", cold},
      {"encode_mb_per_s_warm_cache", warm},
      {"encode_mb_per_cpu_s_cold_cache", cold_cpu},
      {"encode_mb_per_cpu_s_warm_cache", warm_cpu},
      {"decode_mb_per_s", decode},
      {"target_encode_mb_per_s", 20},
      {"consistent", n_cold == n_warm && out_bytes == doc.size() * reps},
  };
  std::printf("%s\n", j.dump(2).c_str());
  return n_cold == n_warm ? 0 : 1;
}
