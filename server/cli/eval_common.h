#pragma once
// What `latent eval infill` and `latent eval replay` share: the model loaded as latentd loads it (EngineHost +
// EngineCompletionBackend, the context budget fitted to the cache the same way), its settings, file output.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lsp/assistant_core.h"
#include "server/args.h"
#include "server/engine_completion_backend.h"
#include "server/engine_host.h"

namespace latent::cli {

struct LoadedModel {
  std::string dir;
  std::string describe;
  std::unique_ptr<EngineHost> host;
  std::unique_ptr<server::EngineCompletionBackend> backend;  // declared after the host: goes first
  lsp::AssistantOptions assistant;                           // latentd's, made stateless (eval_assistant_options)
  nlohmann::json settings_json() const;
  LoadedModel() = default;
  LoadedModel(LoadedModel&&) = default;
  LoadedModel& operator=(LoadedModel&&) = default;
  ~LoadedModel();
};

// --model, --context-tokens, --max-tokens, --completion-budget-ms, --cache-mb (latentd's defaults).
std::vector<OptionSpec> model_option_specs();
// --model, else $LATENT_MODEL, else the embedded demo model (as latentd chooses).
Result<LoadedModel> load_model(const Args& args, const std::string& who);

nlohmann::json sandbox_json();
// Creates `dir` if needed and writes dir/name.
Status write_text_file(const std::string& dir, const std::string& name, const std::string& text);

int run_replay(int argc, char** argv);  // cmd_eval_replay.cpp

}  // namespace latent::cli
