// latent explain: the context latentd would build for a completion at FILE:LINE:COL, with the audit of what
// went in and why, without a daemon or a model. Indexes --root (default: the file's directory) first.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "lsp/assistant_core.h"
#include "lsp/uri.h"
#include "server/args.h"
#include "server/cli/command.h"

namespace latent::cli {
namespace {

const std::vector<OptionSpec> kOptions = {
    {"root", "DIR", "workspace folder to index (default: the file's directory)", ""},
    {"budget", "N", "prompt budget in tokens (estimated)", "2048"},
    {"json", "", "print the audit as JSON (the latent/explainContext result)", ""},
    {"help", "", "print this help and exit", ""},
};

int run_explain(int argc, char** argv) {
  auto args = Args::parse(argc, argv, 2, kOptions);
  if (!args.ok()) {
    std::fprintf(stderr, "latent explain: %s\n", args.error().message.c_str());
    return 2;
  }
  if (args->has("help") || args->positional().size() != 3) {
    std::printf("%s", format_help("latent explain FILE LINE COLUMN [--root DIR]",
                                  "The completion context at FILE:LINE:COLUMN (1-based line, 0-based UTF-16 "
                                  "column) and why each piece is in it.",
                                  kOptions)
                          .c_str());
    return args->has("help") ? 0 : 2;
  }
  std::string file = std::filesystem::absolute(args->positional()[0]).string();
  long line = 0, col = 0;
  try {
    line = std::stol(args->positional()[1]);
    col = std::stol(args->positional()[2]);
  } catch (const std::exception&) {
    std::fprintf(stderr, "latent explain: expected LINE and COLUMN as numbers, found '%s' '%s'\n",
                 args->positional()[1].c_str(), args->positional()[2].c_str());
    return 2;
  }
  if (line < 1 || col < 0) {
    std::fprintf(stderr, "latent explain: expected LINE >= 1 and COLUMN >= 0, found %ld %ld\n", line, col);
    return 2;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "latent explain: cannot read %s\n", file.c_str());
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto budget = args->get_int("budget", 2048);
  if (!budget.ok() || *budget <= 0) {
    std::fprintf(stderr, "latent explain: --budget: expected a positive number\n");
    return 2;
  }
  lsp::AssistantOptions options;
  options.index.background = false;
  options.context.budget_tokens = static_cast<size_t>(*budget);
  lsp::AssistantCore core(options, nullptr);
  std::string root = args->has("root") ? std::filesystem::absolute(args->get("root")).string()
                                       : std::filesystem::path(file).parent_path().string();
  core.add_workspace_folder(root);
  std::string uri = lsp::path_to_uri(file);
  if (auto st = core.open(uri, "", 1, ss.str()); !st.ok()) {
    std::fprintf(stderr, "latent explain: %s\n", st.error().message.c_str());
    return 1;
  }
  auto ctx = core.context_at(uri, lsp::Position{static_cast<uint32_t>(line - 1), static_cast<uint32_t>(col)},
                             lsp::PositionEncoding::kUtf16);
  if (!ctx.ok()) {
    std::fprintf(stderr, "latent explain: %s\n", ctx.error().message.c_str());
    return 1;
  }
  if (args->has("json")) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& it : ctx->items) {
      items.push_back({{"kind", it.kind}, {"path", it.path}, {"line", it.line}, {"tokens", it.tokens},
                       {"score", it.score}, {"included", it.included}, {"reason", it.reason}, {"text", it.text}});
    }
    nlohmann::json out = {{"prompt", ctx->prompt}, {"promptTokens", ctx->prompt_tokens},
                          {"budgetTokens", ctx->budget_tokens}, {"items", items}};
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("context for %s:%ld:%ld — %zu of %zu tokens\n\n", ctx->path.c_str(), line, col, ctx->prompt_tokens,
              ctx->budget_tokens);
  for (const auto& it : ctx->items) {
    std::printf("%s %-10s %s:%u  %zu tokens  %s\n", it.included ? "+" : "-", it.kind.c_str(), it.path.c_str(),
                it.line + 1, it.tokens, it.reason.c_str());
  }
  std::printf("\n----- prompt -----\n%s\n", ctx->prompt.c_str());
  return 0;
}

const CommandRegistration kReg{"explain", "show the completion context at FILE LINE COLUMN and why", run_explain};

}  // namespace
}  // namespace latent::cli
