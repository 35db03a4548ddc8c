#pragma once
// Subcommands of `latent` register themselves from their own file:
//   static const latent::cli::CommandRegistration kReg{"tokenize", "text -> token ids", run_tokenize};
// run(argc, argv) gets argv[0] = "latent", argv[1] = the subcommand; it returns the process exit code and
// prints its own --help.
#include <string>
#include <vector>

namespace latent::cli {

using CommandFn = int (*)(int argc, char** argv);

struct Command {
  std::string name;
  std::string summary;
  CommandFn run;
};

std::vector<Command>& commands();

struct CommandRegistration {
  CommandRegistration(std::string name, std::string summary, CommandFn run) {
    commands().push_back(Command{std::move(name), std::move(summary), run});
  }
};

}  // namespace latent::cli
