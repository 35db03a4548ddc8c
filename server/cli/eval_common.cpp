#include "server/cli/eval_common.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "server/eval/editor_session.h"
#include "server/eval/sandbox.h"

namespace latent::cli {

LoadedModel::~LoadedModel() {
  backend.reset();
  host.reset();
}

std::vector<OptionSpec> model_option_specs() {
  return {
      {"model", "DIR", "checkpoint directory (default: $LATENT_MODEL, else the embedded demo model)", ""},
      {"context-tokens", "N", "prompt budget for a completion's context (as latentd)", "2048"},
      {"max-tokens", "N", "most tokens per completion (as latentd)", "128"},
      {"completion-budget-ms", "N", "most time one completion may take (as latentd)", "3000"},
      {"cache-mb", "N", "latent (KV) cache size in MiB", "256"},
  };
}

Result<LoadedModel> load_model(const Args& args, const std::string& who) {
  LoadedModel m;
  if (args.has("model")) {
    m.dir = args.get("model");
  } else if (const char* env = std::getenv("LATENT_MODEL"); env && *env) {
    m.dir = env;
  } else {
    m.dir = LATENT_DEFAULT_MODEL_DIR;
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(m.dir + "/config.json", ec)) {
    return make_error(ErrorCode::kNotFound, "--model: expected a checkpoint directory with config.json, found '" +
                                                m.dir + "'");
  }
  auto context_tokens = args.get_int("context-tokens", 2048);
  auto max_tokens = args.get_int("max-tokens", 128);
  auto budget_ms = args.get_int("completion-budget-ms", 3000);
  auto cache_mb = args.get_int("cache-mb", 256);
  for (auto* r : {&context_tokens, &max_tokens, &budget_ms, &cache_mb}) {
    if (!r->ok() || **r <= 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "expected positive numbers for --context-tokens, --max-tokens, --completion-budget-ms and "
                        "--cache-mb");
    }
  }
  EngineHostOptions hopt;
  hopt.model_dir = m.dir;
  hopt.cache_bytes = static_cast<size_t>(*cache_mb) << 20;
  LATENT_ASSIGN_OR_RETURN(m.host, EngineHost::load(hopt));
  m.backend = std::make_unique<server::EngineCompletionBackend>(*m.host);
  m.describe = m.backend->describe();
  int64_t budget = *context_tokens;
  if (budget + *max_tokens > m.host->context_length()) {  // as latentd: fit the budget to the cache
    budget = std::max<int64_t>(64, m.host->context_length() - *max_tokens);
    std::fprintf(stderr, "%s: --context-tokens %lld + %lld exceed the %lld tokens the cache holds: budget %lld\n",
                 who.c_str(), static_cast<long long>(*context_tokens), static_cast<long long>(*max_tokens),
                 static_cast<long long>(m.host->context_length()), static_cast<long long>(budget));
  }
  m.assistant = eval::eval_assistant_options(static_cast<size_t>(budget), static_cast<int>(*max_tokens),
                                             std::chrono::milliseconds(*budget_ms));
  return m;
}

nlohmann::json LoadedModel::settings_json() const {
  return {{"model_dir", dir},
          {"context_tokens", assistant.context.budget_tokens},
          {"prompt_layout", lsp::prompt_layout_name(assistant.context.layout)},
          {"max_tokens", assistant.max_tokens},
          {"completion_budget_ms", assistant.time_budget.count()}};
}

nlohmann::json sandbox_json() {
  const auto& c = eval::sandbox_capabilities();
  return {{"python", c.interpreter},
          {"network_namespace", c.network_namespace},
          {"landlock_abi", c.landlock_abi},
          {"warnings", c.warnings}};
}

Status write_text_file(const std::string& dir, const std::string& name, const std::string& text) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "--out: cannot create the directory " + dir + ": " + ec.message());
  const std::string path = dir + "/" + name;
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) return make_error(ErrorCode::kIo, "cannot write " + path);
  return Status::Ok();
}

}  // namespace latent::cli
