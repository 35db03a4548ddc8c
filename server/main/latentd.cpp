// latentd: Latent's daemon. Speaks LSP-style JSON-RPC over stdio or WebSocket, and the OpenAI-compatible
// HTTP API on the same port.
#include <cstdio>
#include <cstring>
#include <string>

#include "kernels/base/log.h"
#include "kernels/base/version.h"
#include "server/args.h"

namespace {

const std::vector<latent::cli::OptionSpec> kOptions = {
    {"stdio", "", "serve one client over stdin/stdout (LSP base protocol)", ""},
    {"listen", "HOST:PORT", "serve WebSocket (/lsp) and HTTP on this address", ""},
    {"model", "DIR", "checkpoint directory (config.json, safetensors, tokenizer.json)", ""},
    {"token-file", "FILE", "bearer token clients must send (required when HOST is not loopback)", ""},
    {"log-level", "LEVEL", "error, warn, info, debug or trace", "info"},
    {"version", "", "print the version and exit", ""},
    {"help", "", "print this help and exit", ""},
};

}  // namespace

int main(int argc, char** argv) {
  auto args = latent::cli::Args::parse(argc, argv, 1, kOptions);
  if (!args.ok()) {
    std::fprintf(stderr, "latentd: %s\n", args.error().message.c_str());
    return 2;
  }
  if (args->has("help")) {
    std::printf("%s", latent::cli::format_help("latentd (--stdio | --listen HOST:PORT) [--model DIR]",
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
  latent::LogLevel level;
  if (!latent::parse_log_level(args->get("log-level"), &level)) {
    std::fprintf(stderr, "latentd: --log-level: expected error|warn|info|debug|trace, found '%s'\n",
                 args->get("log-level").c_str());
    return 2;
  }
  latent::set_log_level(level);
  if (args->has("stdio") == args->has("listen")) {
    std::fprintf(stderr, "latentd: expected exactly one of --stdio or --listen HOST:PORT (see --help)\n");
    return 2;
  }
  std::fprintf(stderr, "latentd: serving is not built yet in this version\n");
  return 1;
}
