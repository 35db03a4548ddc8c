#include "server/args.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <sstream>

#include "kernels/cpu/ops.h"

namespace latent::cli {

Result<Args> Args::parse(int argc, char** argv, int first, const std::vector<OptionSpec>& specs) {
  Args args;
  for (const auto& s : specs) {
    if (!s.default_value.empty()) args.values_[s.name] = s.default_value;
  }
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      args.positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool has_inline = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    const OptionSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (!spec) {
      std::string known;
      for (const auto& s : specs) known += (known.empty() ? "--" : ", --") + s.name;
      return make_error(ErrorCode::kInvalidArgument,
                        "unknown option '" + a + "'; expected one of: " + known);
    }
    if (spec->value.empty()) {
      if (has_inline) return make_error(ErrorCode::kInvalidArgument, "--" + name + " takes no value");
      args.values_[name] = "1";
      continue;
    }
    if (!has_inline) {
      if (i + 1 >= argc) {
        return make_error(ErrorCode::kInvalidArgument,
                          "--" + name + ": expected a value (" + spec->value + "), found the end of the line");
      }
      value = argv[++i];
    }
    args.values_[name] = value;
  }
  return args;
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

Result<long long> Args::get_int(const std::string& name, long long fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0') {
    return make_error(ErrorCode::kInvalidArgument,
                      "--" + name + ": expected an integer, found '" + it->second + "'");
  }
  return v;
}

Result<double> Args::get_double(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') {
    return make_error(ErrorCode::kInvalidArgument,
                      "--" + name + ": expected a number, found '" + it->second + "'");
  }
  return v;
}

Result<std::vector<int32_t>> parse_token_ids(const std::string& text, const std::string& option) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v > INT32_MAX) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--" + option + ": expected comma-separated token ids, found '" + item + "'");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "--" + option + ": expected at least one token id, found none");
  }
  return ids;
}

std::string format_help(const std::string& usage, const std::string& summary,
                        const std::vector<OptionSpec>& specs) {
  std::ostringstream os;
  os << "usage: " << usage << "\n\n" << summary << "\n\noptions:\n";
  for (const auto& s : specs) {
    std::string left = "  --" + s.name + (s.value.empty() ? "" : " " + s.value);
    os << left;
    if (left.size() < 28) os << std::string(28 - left.size(), ' ');
    else os << "\n" << std::string(28, ' ');
    os << s.help;
    if (!s.default_value.empty()) os << " (default: " << s.default_value << ")";
    os << "\n";
  }
  return os.str();
}

std::vector<OptionSpec> parallel_option_specs() {
  return {
      {"tp", "N", "ranks sharing the model: attention by heads, MLPs by intermediate size, lm_head by vocabulary "
                  "(in-process threads; under mpirun, one rank per process and N = -np)", "1"},
      {"ep", "M", "ranks sharing the routed experts by id: M = N, or 1 to split every expert like the MLPs", "1"},
      {"pp", "P", "pipeline stages: consecutive layer ranges, each on its own N ranks (P x N ranks in all; under "
                  "mpirun -np P*N, stage s = ranks s*N .. s*N+N-1), the hidden state sent from stage to stage; at "
                  "most num_hidden_layers", "1"},
      {"dp-attention", "", "data-parallel attention: each of the --tp ranks holds the whole attention weights and "
                           "attends its share of a batch's sequences (for large batches: no attention all-reduce); "
                           "the MoE stays split", ""},
      {"device", "cpu|cuda[:N]|auto", "where the model runs: the CPU, CUDA GPU N (default 0; one rank only), or "
                                      "auto (a GPU when the build has CUDA and one is present, else the CPU)", "cpu"},
      {"precision", "exact|bf16", "CPU math for BF16 weights: bf16 rounds activations to BF16 and uses vdpbf16ps "
                                  "(AVX512-BF16; ~1e-3 relative error), exact is float32 math (the golden tests' "
                                  "path); default bf16, or LATENT_LINEAR_PRECISION when set", ""},
  };
}

std::vector<OptionSpec> with_parallel_options(std::vector<OptionSpec> specs) {
  for (OptionSpec& o : parallel_option_specs()) specs.push_back(std::move(o));
  return specs;
}

Result<ParallelOptions> parse_parallel(const Args& args) {
  if (args.has("precision")) {
    auto p = cpu::parse_linear_precision(args.get("precision"));
    if (!p) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--precision: expected exact or bf16, found '" + args.get("precision") + "'");
    }
    cpu::set_linear_precision(*p);
  }
  LATENT_ASSIGN_OR_RETURN(long long tp, args.get_int("tp", 1));
  LATENT_ASSIGN_OR_RETURN(long long ep, args.get_int("ep", 1));
  LATENT_ASSIGN_OR_RETURN(long long pp, args.get_int("pp", 1));
  if (tp < 1 || tp > 1024) return make_error(ErrorCode::kInvalidArgument, "--tp: expected 1..1024, found " + std::to_string(tp));
  if (pp < 1 || pp > 1024) return make_error(ErrorCode::kInvalidArgument, "--pp: expected 1..1024, found " + std::to_string(pp));
  ParallelOptions p{static_cast<int>(tp), static_cast<int>(ep), static_cast<int>(pp), args.has("dp-attention"), {}};
  if (args.has("device")) {
    LATENT_ASSIGN_OR_RETURN(p.device, DeviceSpec::parse(args.get("device")));
  }
  LATENT_RETURN_IF_ERROR(p.validate());
  return p;
}

}  // namespace latent::cli
