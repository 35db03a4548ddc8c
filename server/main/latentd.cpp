// latentd: Latent's daemon. Speaks LSP-style JSON-RPC over stdio or WebSocket, and the OpenAI-compatible
// HTTP API on the same port.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "kernels/base/log.h"
#include "kernels/base/version.h"
#include "lsp/agent/mcp_server.h"
#include "lsp/agent/scripted_model.h"
#include "lsp/assistant_core.h"
#include "lsp/lsp_server.h"
#include "lsp/scripted_backend.h"
#include "lsp/status_feed.h"
#include "server/args.h"
#include "server/engine_completion_backend.h"
#include "server/engine_host.h"
#include "server/metrics.h"
#include "server/model_loader.h"
#include "server/openai/syntax_gate.h"
#include "server/net_server.h"
#include "server/openai/api.h"
#include "server/transport_stdio.h"
#include "server/user_access.h"
#include "server/web_ui.h"

namespace {

const std::vector<latent::cli::OptionSpec> kOptions = latent::cli::with_parallel_options({
    {"stdio", "", "serve one client over stdin/stdout (LSP base protocol)", ""},
    {"mcp", "", "serve the workspace index to other agents as an MCP server over stdio (find_symbol, definition, "
            "references, context_for); no model", ""},
    {"root", "DIR", "with --mcp: the workspace folder (default: the current directory)", ""},
    {"listen", "HOST:PORT", "serve WebSocket (/lsp) and HTTP on this address (port 0: any free port)", ""},
    {"model", "DIR", "checkpoint directory (config.json, safetensors, tokenizer.json); default: $LATENT_MODEL, "
              "else the embedded demo model (models/demo)", ""},
    {"no-model", "", "start without a model (completions and the HTTP API answer that none is loaded)", ""},
    {"token-file", "FILE", "bearer token clients must send (required when HOST is not loopback)", ""},
    {"users", "FILE", "per-user tokens and scopes, one JSON object per line (latent user add; docs/team.md); "
              "re-read on SIGHUP. Instead of --token-file", ""},
    {"max-connections-per-user", "N", "with --users: WebSocket sessions and streamed HTTP answers one user may "
                                      "hold at once", "32"},
    {"max-user-cache-share", "F", "most of the latent cache one user's running requests may hold, in (0, 1]; "
                                  "with --users, requests are also shared fairly between users", "1"},
    {"interactive-solo-tokens", "N", "a ghost-text completion runs without chat and agent work beside it until it "
                                     "has this many tokens (they pause, keeping their cache); 0: they share steps",
     "1"},
    {"requests-per-minute", "N", "with --users: generation requests per user per minute (0: no limit); over it, "
                                 "429 with Retry-After", "0"},
    {"tokens-per-minute", "N", "with --users: prompt + completion tokens per user per minute (0: no limit)", "0"},
    {"tls-cert", "FILE", "PEM certificate (chain): serve HTTPS and WSS instead of HTTP and WS (with --tls-key)", ""},
    {"tls-key", "FILE", "PEM private key of --tls-cert (unencrypted; keep it 0600)", ""},
    {"replica-id", "NAME", "this replica's name behind a load balancer: in GET /health and the X-Latent-Replica "
                           "header of every answer (letters, digits, '.', '_', ':', '-'; default: HOST:PORT)", ""},
    {"allow-origin", "LIST", "comma-separated browser Origins allowed to connect (default: none; '*' = any)", ""},
    {"ui", "on|off|auto", "serve the web playground (GET /) and dashboard (GET /dashboard) from --ui-dir; "
           "auto: on when HOST is loopback", "auto"},
    {"ui-dir", "DIR", "the built web UI (editors/web/, bundled by the build)", LATENT_WEB_DIR},
    {"max-message-bytes", "N", "largest accepted JSON-RPC message", "8388608"},
    {"max-pending", "N", "completion requests in flight per connection", "16"},
    {"context-tokens", "N", "prompt budget for a completion's context", "2048"},
    {"cache-mb", "N", "latent (KV) cache size in MiB", "256"},
    {"prompt-layout", "LAYOUT", "completion prompt layout: stable (what changes per keystroke last, for the "
                                "prefix cache) or window (the layout before 2026-12; for comparisons)", "stable"},
    {"no-type-through", "", "stop a completion's generation when its request is cancelled, even when the user "
                            "goes on to type what it predicted (for comparisons)", ""},
    {"inexact-trees", "", "keep tree-sitter's incremental syntax tree while a file has syntax errors instead of "
                          "parsing it afresh (faster keystrokes in large broken files; the tree may then recover "
                          "from an error otherwise than a fresh parse)", ""},
    {"completion-budget-ms", "N", "most time a ghost-text completion may take before it ends with what it has; "
                                  "the context is also cut to what prefills in half of it (prefill is timed at "
                                  "startup)", "3000"},
    {"no-time-sizing", "", "do not time prefill at startup: size the context by --context-tokens alone", ""},
    {"spec", "MODE", "speculative decoding (LSP completions and HTTP API): none, mtp, ngram or auto", "none"},
    {"syntax-check", "MODE", "check code completions with the file's tree-sitter grammar before showing them: off, "
     "trim (cut back to what parses, refuse what cannot, stop loops) or rank (trim, over several candidates "
     "decoded side by side: LSP and HTTP API)", "rank"},
    {"rank-candidates", "N", "--syntax-check rank: sequences decoded side by side per completion, LSP and HTTP API "
                             "(the greedy one or the request's own, plus N-1 samples; 1-32)", "16"},
    {"no-syntax-continue", "", "--syntax-check rank over the LSP: do not decode on after a best candidate that "
                               "has no code (only a docstring or comments, closed by the check)", ""},
    {"test-backend", "", "protocol tests only: stream a scripted completion (\"a + b\") instead of running a model; a document containing \"latent-test: hold after the first piece\" streams \"a\" and waits to be cancelled", ""},
    {"test-agent-script", "FILE", "agent tests only: answer agent turns from a fixed transcript ({\"turns\": [...]}) "
                                  "instead of running a model", ""},
    {"log-level", "LEVEL", "error, warn, info, debug or trace; default: $LATENT_LOG, else info", ""},
    {"version", "", "print the version and exit", ""},
    {"help", "", "print this help and exit", ""},
});

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// --replica-id goes into a response header as it is: nothing that could end a header line or confuse a log.
bool valid_replica_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

// --model, else $LATENT_MODEL, else the demo model embedded in the source tree (when it is there); none with
// --no-model, --test-backend or --test-agent-script.
std::string default_model_dir(const latent::cli::Args& args) {
  if (args.has("no-model") || args.has("test-backend") || args.has("test-agent-script")) return "";
  if (args.has("model")) return args.get("model");
  if (const char* env = std::getenv("LATENT_MODEL"); env && *env) return env;
  std::error_code ec;
  if (std::filesystem::exists(std::string(LATENT_DEFAULT_MODEL_DIR) + "/config.json", ec)) {
    return LATENT_DEFAULT_MODEL_DIR;
  }
  return "";
}

// latentd --mcp [--root DIR]: the workspace index over MCP's stdio transport, until stdin closes.
int serve_mcp(const latent::cli::Args& args) {
  if (args.has("stdio") || args.has("listen")) {
    std::fprintf(stderr, "latentd: --mcp serves stdio on its own; expected no --stdio or --listen with it\n");
    return 2;
  }
  std::error_code ec;
  std::string root = std::filesystem::absolute(args.has("root") ? args.get("root") : ".", ec).lexically_normal().string();
  if (!std::filesystem::is_directory(root, ec)) {
    std::fprintf(stderr, "latentd: --root: expected a directory, found '%s'\n", root.c_str());
    return 2;
  }
  if (!root.empty() && root.size() > 1 && root.back() == '/') root.pop_back();
  std::signal(SIGPIPE, SIG_IGN);
  latent::lsp::AssistantCore core(latent::lsp::AssistantOptions{}, nullptr);
  core.add_workspace_folder(root);
  latent::lsp::agent::McpServer mcp(core, LATENT_VERSION);
  std::ios::sync_with_stdio(false);
  auto st = mcp.serve(std::cin, std::cout);
  return st.ok() ? 0 : 1;
}

}  // namespace

// An mpirun rank other than 0: loads its shard and follows rank 0 (EngineHost's model options) until it stops.
int follow_rank_0(const std::string& model_dir, const latent::ParallelOptions& parallel) {
  if (model_dir.empty()) {
    std::fprintf(stderr, "latentd: under mpirun, expected --model (or $LATENT_MODEL) on every rank\n");
    return 2;
  }
  latent::ModelOptions mopt;
  mopt.load_mtp = latent::EngineHostOptions{}.load_mtp;
  auto ranked = latent::RankedModel::load(model_dir, mopt, parallel);
  if (!ranked.ok()) {
    std::fprintf(stderr, "latentd: %s\n", ranked.error().message.c_str());
    return 1;
  }
  if (!(*ranked)->followed().ok()) {
    std::fprintf(stderr, "latentd rank %d: %s\n", (*ranked)->rank(), (*ranked)->followed().error().to_string().c_str());
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  auto args = latent::cli::Args::parse(argc, argv, 1, kOptions);
  if (!args.ok()) {
    std::fprintf(stderr, "latentd: %s\n", args.error().message.c_str());
    return 2;
  }
  if (args->has("help")) {
    std::printf("%s", latent::cli::format_help("latentd (--stdio | --listen HOST:PORT) [--model DIR] [--tp N --ep M] [--pp P] [--dp-attention]",
                                               "Latent's daemon: code completions and edits from a local "
                                               "DeepSeek-architecture model.",
                                               kOptions)
                          .c_str());
    return 0;
  }
  if (args->has("version")) {
    std::printf("latentd %s\n", LATENT_VERSION);
    return 0;
  }
  // --log-level, else $LATENT_LOG, else info. A bad value of either is an error, not silently "info".
  latent::LogLevel level = latent::LogLevel::kInfo;
  const char* env_log = std::getenv("LATENT_LOG");
  const bool from_flag = args->has("log-level");
  const std::string level_name = from_flag ? args->get("log-level") : (env_log && *env_log ? env_log : "info");
  if (!latent::parse_log_level(level_name, &level)) {
    std::fprintf(stderr, "latentd: %s: expected error|warn|info|debug|trace, found '%s'\n",
                 from_flag ? "--log-level" : "LATENT_LOG", level_name.c_str());
    return 2;
  }
  latent::set_log_level(level);
  if (args->has("mcp")) return serve_mcp(*args);
  if (args->has("stdio") == args->has("listen")) {
    std::fprintf(stderr, "latentd: expected exactly one of --stdio, --listen HOST:PORT or --mcp (see --help)\n");
    return 2;
  }
  auto max_message = args->get_int("max-message-bytes", 8 << 20);
  auto max_pending = args->get_int("max-pending", 16);
  auto context_tokens = args->get_int("context-tokens", 2048);
  auto cache_mb = args->get_int("cache-mb", 256);
  auto budget_ms = args->get_int("completion-budget-ms", 3000);
  auto rank_candidates = args->get_int("rank-candidates", 16);
  if (!rank_candidates.ok() || *rank_candidates < 1 || *rank_candidates > 32) {
    std::fprintf(stderr, "latentd: --rank-candidates: expected an integer from 1 to 32, found '%s'\n",
                 args->get("rank-candidates").c_str());
    return 2;
  }
  for (auto* r : {&max_message, &max_pending, &context_tokens, &cache_mb, &budget_ms}) {
    if (!r->ok() || **r <= 0) {
      std::fprintf(stderr, "latentd: expected positive integers for --max-message-bytes, --max-pending, "
                           "--context-tokens, --cache-mb and --completion-budget-ms\n");
      return 2;
    }
  }
  latent::lsp::PromptLayout layout = latent::lsp::PromptLayout::kCacheStable;
  if (args->has("prompt-layout") && !latent::lsp::parse_prompt_layout(args->get("prompt-layout"), &layout)) {
    std::fprintf(stderr, "latentd: --prompt-layout: expected stable or window, found '%s'\n",
                 args->get("prompt-layout").c_str());
    return 2;
  }

  auto parallel = latent::cli::parse_parallel(*args);
  if (!parallel.ok()) {
    std::fprintf(stderr, "latentd: %s\n", parallel.error().message.c_str());
    return 2;
  }
  // Under mpirun every rank but 0 only runs rank 0's forwards on its shard, until rank 0 stops.
  if (latent::launched_by_mpirun()) {
    auto world = latent::mpi_collective();
    if (!world.ok()) {
      std::fprintf(stderr, "latentd: %s\n", world.error().message.c_str());
      return 1;
    }
    if ((*world)->rank() != 0) return follow_rank_0(default_model_dir(*args), *parallel);
  }

  // The completion backend: the model (--model), the scripted test double (--test-backend), or none.
  std::unique_ptr<latent::lsp::CompletionBackend> backend;
  if (args->has("test-backend")) {
    auto scripted = std::make_unique<latent::lsp::ScriptedBackend>(
        std::vector<std::string>{"a", " +", " b", "\n"}, std::chrono::milliseconds(30));
    // A prompt with this marker streams "a" and then waits to be cancelled (protocol tests of cancel).
    scripted->set_hold_marker("latent-test: hold after the first piece");
    backend = std::move(scripted);
    LATENT_LOG_WARN("--test-backend: completions come from a scripted test double, not a model");
  }
  // Declared before the host: engine callbacks count editor completions in it until the host goes.
  latent::MetricsRegistry metrics;
  // The model behind both front doors: the HTTP API (server/openai) and the LSP completion backend.
  std::unique_ptr<latent::EngineHost> host;
  std::string model_dir = default_model_dir(*args);
  if (!model_dir.empty()) {
    latent::EngineHostOptions hopt;
    hopt.model_dir = model_dir;
    hopt.cache_bytes = static_cast<size_t>(*cache_mb) << 20;
    auto share = args->get_double("max-user-cache-share", 1.0);
    if (!share.ok() || !(*share > 0 && *share <= 1)) {
      std::fprintf(stderr, "latentd: --max-user-cache-share: expected a fraction in (0, 1], found '%s'\n",
                   args->get("max-user-cache-share").c_str());
      return 2;
    }
    hopt.scheduler.max_tenant_cache_share = *share;
    auto solo = args->get_int("interactive-solo-tokens", 1);
    if (!solo.ok() || *solo < 0) {
      std::fprintf(stderr, "latentd: --interactive-solo-tokens: expected an integer >= 0, found '%s'\n",
                   args->get("interactive-solo-tokens").c_str());
      return 2;
    }
    hopt.scheduler.interactive_solo_tokens = static_cast<int>(*solo);
    hopt.parallel = *parallel;
    // A rank that stops leaves the others unable to run a forward: the service stops, saying which and why.
    hopt.on_ranks_lost = [](const latent::Error& e) {
      LATENT_LOG_ERROR("the model's ranks cannot run together any more, latentd stops: %s", e.to_string().c_str());
      std::fflush(nullptr);
      std::_Exit(1);
    };
    // config.json and the tokenizer now (a bad --model exits here); the weights load on the ModelLoader's thread
    // below while the daemon already answers.
    auto opened = latent::EngineHost::open(hopt);
    if (!opened.ok()) {
      std::fprintf(stderr, "latentd: %s\n", opened.error().message.c_str());
      return 1;
    }
    host = std::move(*opened);
  }
  // Declared after the host so that it goes first.
  std::unique_ptr<latent::server::EngineCompletionBackend> model_backend;
  if (host) {
    latent::server::EngineBackendOptions backend_options;  // --spec is validated below, with the HTTP API's
    if (!latent::parse_spec_mode(args->get("spec"), &backend_options.spec.mode)) backend_options.spec.mode = latent::SpecMode::kNone;
    backend_options.metrics = &metrics;
    model_backend = std::make_unique<latent::server::EngineCompletionBackend>(*host, backend_options);
  }
  latent::lsp::CompletionBackend* completion_backend = backend ? backend.get() : model_backend.get();
  // The agent's model: the same one, or the scripted test double (--test-agent-script).
  std::unique_ptr<latent::lsp::CompletionBackend> agent_script;
  if (args->has("test-agent-script")) {
    auto turns = latent::lsp::agent::ScriptedModel::load_script(args->get("test-agent-script"));
    if (!turns.ok()) {
      std::fprintf(stderr, "latentd: --test-agent-script: %s\n", turns.error().message.c_str());
      return 2;
    }
    agent_script = std::make_unique<latent::lsp::agent::ScriptedModel>(std::move(*turns));
    LATENT_LOG_WARN("--test-agent-script: agent turns come from a fixed transcript, not a model");
  }
  // With a model: its load on a thread of its own (server/model_loader.h): latent/status says the phase
  // (loading, uploading, warming, ready or failed) with bytes and percent, then "ready".
  latent::lsp::StatusFeed status(latent::server::LoadState{}.to_json());
  std::unique_ptr<latent::server::ModelLoader> loader;
  if (host && completion_backend) {
    // The context is sized so that the first token comes within the latency budget (AssistantCore::time_limit):
    // prefill is timed once the weights are in memory (EngineCompletionBackend::measure_prefill_cost).
    latent::server::EngineCompletionBackend* engine_backend =
        completion_backend == model_backend.get() ? model_backend.get() : nullptr;
    latent::server::ModelLoaderOptions load_options;
    load_options.ready_message = completion_backend->describe();
    if (engine_backend && !args->has("no-time-sizing")) {
      load_options.then = [engine_backend](const std::atomic<bool>& stop) {
        auto cost = engine_backend->measure_prefill_cost(stop);
        if (!cost.ok() && cost.error().code != latent::ErrorCode::kCancelled) {
          LATENT_LOG_WARN("prefill cost not measured (the context is sized by tokens only): %s",
                          cost.error().message.c_str());
        }
      };
    }
    loader = std::make_unique<latent::server::ModelLoader>(
        *host, std::move(load_options), [&status](const latent::server::LoadState& s) { status.publish(s.to_json()); });
  }

  latent::lsp::SyntaxMode syntax_mode;
  if (!latent::lsp::parse_syntax_mode(args->get("syntax-check", "rank"), &syntax_mode)) {
    std::fprintf(stderr, "latentd: --syntax-check: expected off, trim or rank, found '%s'\n",
                 args->get("syntax-check").c_str());
    return 2;
  }
  latent::lsp::SyntaxStats syntax_stats;  // both front doors count into it; /metrics reads it
  latent::lsp::AssistantOptions core_options;
  core_options.context.budget_tokens = static_cast<size_t>(*context_tokens);
  if (host && *context_tokens + core_options.max_tokens > host->context_length()) {
    // A prompt the cache cannot hold would fail every completion: fit the budget to the cache.
    const int64_t fit = std::max<int64_t>(64, host->context_length() - core_options.max_tokens);
    LATENT_LOG_WARN("--context-tokens %lld + %d completion tokens exceed the %lld tokens the latent cache holds "
                    "(--cache-mb %lld): the context budget is %lld tokens",
                    static_cast<long long>(*context_tokens), core_options.max_tokens,
                    static_cast<long long>(host->context_length()), static_cast<long long>(*cache_mb),
                    static_cast<long long>(fit));
    core_options.context.budget_tokens = static_cast<size_t>(fit);
  }
  core_options.context.layout = layout;
  core_options.type_through = !args->has("no-type-through");
  core_options.exact_trees = !args->has("inexact-trees");
  core_options.continue_after_text = !args->has("no-syntax-continue");
  core_options.time_budget = std::chrono::milliseconds(*budget_ms);
  core_options.syntax = syntax_mode;
  core_options.rank_candidates = static_cast<int>(*rank_candidates);
  core_options.syntax_stats = &syntax_stats;
  latent::lsp::LspServerOptions lsp_options;
  lsp_options.max_pending_requests = static_cast<size_t>(*max_pending);
  lsp_options.version = LATENT_VERSION;
  if (loader) lsp_options.status = &status;
  lsp_options.agent_model = agent_script ? agent_script.get() : model_backend.get();
  std::shared_ptr<latent::server::UserQuotas> user_quotas;  // --requests-per-minute / --tokens-per-minute
  auto serve = [&](latent::lsp::Transport& transport, const latent::server::SessionUser& user = {}) {
    latent::lsp::AssistantOptions connection_options = core_options;
    connection_options.tenant = user.name;
    connection_options.tenant_weight = user.weight;
    latent::lsp::AssistantCore core(connection_options, completion_backend);
    latent::lsp::LspServer server(transport, core, latent::server::options_for_user(lsp_options, user, metrics, user_quotas));
    return server.run();
  };

  if (args->has("stdio")) {
    std::signal(SIGPIPE, SIG_IGN);
    if (isatty(STDIN_FILENO)) {
      std::fprintf(stderr, "latentd: ready; speaking LSP (Content-Length framed JSON-RPC) on stdin/stdout, as editors "
                           "start it. For the HTTP API and WebSocket: latentd --listen 127.0.0.1:8741 "
                           "(scripts/run --listen 127.0.0.1:8741). Ctrl-D quits.\n");
    }
    latent::server::StdioTransport transport(STDIN_FILENO, STDOUT_FILENO, static_cast<size_t>(*max_message));
    bool clean = serve(transport);
    // stdin closed (or exit): the session's requests were cancelled; let the engine end them (one step) before
    // the host stops, so that nothing is cut off mid-step and the log says how each ended.
    if (host && !host->wait_idle(std::chrono::seconds(30))) LATENT_LOG_WARN("exit: the engine is still busy after 30 s");
    return clean ? 0 : 1;  // LSP: exit without shutdown is an error exit
  }

  std::string listen = args->get("listen");
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    std::fprintf(stderr, "latentd: --listen: expected HOST:PORT, found '%s'\n", listen.c_str());
    return 2;
  }
  latent::server::NetOptions net;
  net.host = listen.substr(0, colon);
  try {
    int port = std::stoi(listen.substr(colon + 1));
    if (port < 0 || port > 65535) throw std::out_of_range("port");
    net.port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    std::fprintf(stderr, "latentd: --listen: expected a port 0..65535, found '%s'\n", listen.substr(colon + 1).c_str());
    return 2;
  }
  if (args->has("token-file") && args->has("users")) {
    std::fprintf(stderr, "latentd: expected one of --token-file and --users, found both\n");
    return 2;
  }
  if (args->has("users")) {
    net.users = std::make_shared<latent::server::UserDirectory>(args->get("users"));
    auto n = net.users->reload();
    if (!n.ok()) {
      std::fprintf(stderr, "latentd: %s\n", n.error().message.c_str());
      return 2;
    }
    auto limit = args->get_int("max-connections-per-user", 32);
    if (!limit.ok() || *limit < 1) {
      std::fprintf(stderr, "latentd: --max-connections-per-user: expected a count >= 1, found '%s'\n",
                   args->get("max-connections-per-user").c_str());
      return 2;
    }
    net.max_connections_per_user = static_cast<size_t>(*limit);
    auto rpm = args->get_double("requests-per-minute", 0);
    auto tpm = args->get_double("tokens-per-minute", 0);
    if (!rpm.ok() || !tpm.ok() || *rpm < 0 || *tpm < 0) {
      std::fprintf(stderr, "latentd: --requests-per-minute, --tokens-per-minute: expected numbers >= 0, found '%s', '%s'\n",
                   args->get("requests-per-minute").c_str(), args->get("tokens-per-minute").c_str());
      return 2;
    }
    if (*rpm > 0 || *tpm > 0) {
      user_quotas = std::make_shared<latent::server::UserQuotas>(latent::server::QuotaLimits{*rpm, *tpm});
      net.quotas = user_quotas;
    }
    LATENT_LOG_INFO("users: %zu from %s", *n, args->get("users").c_str());
  } else if (args->has("token-file")) {
    std::ifstream in(args->get("token-file"));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string token = ss.str();
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (!in || token.empty()) {
      std::fprintf(stderr, "latentd: --token-file: expected a file holding a token, found '%s' unreadable or empty\n",
                   args->get("token-file").c_str());
      return 2;
    }
    net.token = token;
  } else if (!latent::server::is_loopback_host(net.host)) {
    std::fprintf(stderr, "latentd: --listen %s: expected --token-file FILE or --users FILE when the host is not loopback\n",
                 listen.c_str());
    return 2;
  }
  net.replica_id = args->get("replica-id");
  if (args->has("replica-id") && !valid_replica_id(net.replica_id)) {
    std::fprintf(stderr, "latentd: --replica-id: expected 1-64 letters, digits, '.', '_', ':' or '-', found '%s'\n",
                 net.replica_id.c_str());
    return 2;
  }
  net.tls_cert = args->get("tls-cert");
  net.tls_key = args->get("tls-key");
  net.allowed_origins = split_commas(args->get("allow-origin"));
  net.max_message_bytes = static_cast<size_t>(*max_message);
  std::signal(SIGPIPE, SIG_IGN);
  auto ui = latent::server::parse_ui_mode(args->get("ui", "auto"), latent::server::is_loopback_host(net.host));
  if (!ui.ok()) {
    std::fprintf(stderr, "latentd: %s\n", ui.error().message.c_str());
    return 2;
  }
  auto router = std::make_shared<latent::server::HttpRouter>();
  if (*ui) {
    // A missing build is not fatal: the daemon serves editors and the API; / says why there is no page.
    auto files = latent::server::add_web_ui_routes(*router, args->get("ui-dir", LATENT_WEB_DIR));
    if (!files.ok()) {
      LATENT_LOG_WARN("web UI off: %s", files.error().message.c_str());
      router->add_public("GET", "/", [msg = files.error().message](const latent::server::HttpRequest&) {
        return latent::server::HttpResponse::error(503, "ui_not_built", msg);
      });
    }
    net.allow_own_origin = true;
  }
  latent::openai::EngineAccess engine;
  latent::openai::ApiOptions api_options;
  api_options.syntax = syntax_mode;
  api_options.syntax_stats = &syntax_stats;
  api_options.rank_candidates = static_cast<int>(*rank_candidates);
  latent::openai::add_syntax_metrics(metrics, syntax_stats);
  if (host) {
    engine.loading = true;  // the scheduler comes with the loaded model (engine_loaded below)
    engine.tokenizer = host->shared_tokenizer();
    engine.context_length = host->context_length();  // what the cache holds, not max_position_embeddings
    engine.text = host->text();
    engine.stop_ids = host->stop_ids();
    engine.sample_engine = [h = host.get()] { h->sample(); };
    api_options.model_id = host->model_id();
    if (!latent::parse_spec_mode(args->get("spec"), &api_options.spec.mode)) {
      std::fprintf(stderr, "latentd: --spec: expected none, mtp, ngram or auto, found '%s'\n", args->get("spec").c_str());
      return 2;
    }
    host->add_metrics(metrics);
  }
  if (net.users) {
    api_options.user_weight = [users = net.users](const std::string& user) { return users->weight_of(user); };
  }
  if (user_quotas) {
    api_options.charge_user = [q = user_quotas](const std::string& user, int64_t tokens) { q->charge_tokens(user, tokens); };
  }
  auto api = std::make_shared<latent::openai::OpenAiApi>(engine, metrics, api_options);
  latent::openai::add_routes(*router, api);
  if (host) {
    // Generations that arrive while the model loads wait for it (a client that leaves drops its own).
    host->when_loaded([api, h = host.get()](const latent::Status& st) {
      api->engine_loaded(st.ok() ? latent::Result<latent::Scheduler*>(&h->scheduler())
                                 : latent::Result<latent::Scheduler*>(st.error()));
    });
  }
  if (loader) {
    net.model_health = [l = loader.get()] {
      const latent::server::LoadState s = l->state();
      return latent::server::ModelHealth{s.serving(), s.phase == latent::server::LoadPhase::kFailed, s.to_json()};
    };
  }
  latent::server::NetServer server(net, router, [&](latent::lsp::Transport& t, const latent::server::SessionUser& user) {
    serve(t, user);
  });
  if (net.users) {
    // A reload that fails keeps the users loaded before (and says why); connections already open stay.
    server.on_signal(SIGHUP, [users = net.users] {
      auto n = users->reload();
      if (n.ok()) {
        LATENT_LOG_INFO("users: reloaded %zu from %s (SIGHUP)", *n, users->path().c_str());
      } else {
        LATENT_LOG_ERROR("users: reload on SIGHUP failed, keeping the previous users: %s", n.error().message.c_str());
      }
    });
  }
  if (auto st = server.start(); !st.ok()) {
    std::fprintf(stderr, "latentd: %s\n", st.error().message.c_str());
    return 1;
  }
  std::fprintf(stderr, "latentd: listening on %s:%u (%s%s)\n", net.host.c_str(), server.port(),
               server.tls() ? "TLS: WSS /lsp, HTTPS" : "WebSocket /lsp, HTTP",
               *ui ? "; playground at / and dashboard at /dashboard" : "");
  std::fflush(stderr);
  server.run();
  return 0;
}
