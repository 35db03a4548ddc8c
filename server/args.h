#pragma once
// A small command-line parser shared by `latent` and `latentd`: --name value, --name=value, boolean --flag,
// positional arguments; unknown options are errors that list the known ones.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/local_ranks.h"
#include "kernels/base/result.h"

namespace latent::cli {

struct OptionSpec {
  std::string name;     // without dashes: "model"
  std::string value;    // placeholder shown in help ("DIR"); empty for a boolean flag
  std::string help;
  std::string default_value;
};

class Args {
 public:
  // Parses argv[first..argc). Returns an error naming the offending argument.
  static Result<Args> parse(int argc, char** argv, int first, const std::vector<OptionSpec>& specs);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  Result<long long> get_int(const std::string& name, long long fallback) const;
  Result<double> get_double(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// "1,2,3" -> token ids; errors name the option (--ids, --context-ids) and the item that is not an id.
Result<std::vector<int32_t>> parse_token_ids(const std::string& text, const std::string& option);

// --tp N, --ep M and --precision exact|bf16, shared by latent logits|generate and latentd: the options' specs,
// and their values checked (ep in {1, tp}). parse_parallel also sets the process-wide CPU linear precision
// when --precision is given (cpu::set_linear_precision; default bf16, or LATENT_LINEAR_PRECISION).
std::vector<OptionSpec> parallel_option_specs();
std::vector<OptionSpec> with_parallel_options(std::vector<OptionSpec> specs);  // appended
Result<ParallelOptions> parse_parallel(const Args& args);

std::string format_help(const std::string& usage, const std::string& summary,
                        const std::vector<OptionSpec>& specs);

}  // namespace latent::cli
