// latent: the command-line tool. `latent --help` lists the subcommands; `latent CMD --help` explains one.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "kernels/base/version.h"
#include "server/cli/command.h"

namespace latent::cli {

std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}

namespace {

void print_help() {
  auto cmds = commands();
  std::sort(cmds.begin(), cmds.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  std::printf("usage: latent <command> [options]\n\n"
              "Latent's command-line tool: run DeepSeek-V2/V3 checkpoints, tokenize, inspect.\n\n"
              "commands:\n");
  for (const auto& c : cmds) std::printf("  %-14s %s\n", c.name.c_str(), c.summary.c_str());
  std::printf("\n  latent <command> --help    options of one command\n"
              "  latent --version           print the version\n");
}

}  // namespace
}  // namespace latent::cli

int main(int argc, char** argv) {
  using namespace latent::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("latent %s\n", LATENT_VERSION);
    return 0;
  }
  for (const auto& c : commands()) {
    if (c.name == argv[1]) return c.run(argc, argv);
  }
  std::fprintf(stderr, "latent: unknown command '%s'; expected one of:", argv[1]);
  for (const auto& c : commands()) std::fprintf(stderr, " %s", c.name.c_str());
  std::fprintf(stderr, " (see latent --help)\n");
  return 2;
}
