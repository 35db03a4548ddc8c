// latent user add NAME --scopes complete,chat --users FILE: a new user for latentd --users FILE. Prints the
// new token once, on stdout; the file gets only its SHA-256 (server/users.h). A running latentd picks the user
// up on SIGHUP.
#include <cstdio>
#include <string>

#include "server/args.h"
#include "server/cli/command.h"
#include "server/users.h"

namespace latent::cli {
namespace {

const std::vector<OptionSpec> kOptions = {
    {"scopes", "LIST", "comma-separated: complete, chat, agent, admin", ""},
    {"users", "FILE", "the users file latentd reads (--users); created 0600 when missing", ""},
    {"weight", "W", "the user's share of the engine against other users' (fair queueing), in (0, 1000]", "1"},
    {"help", "", "print this help and exit", ""},
};

int run_user(int argc, char** argv) {
  const std::string usage = "latent user add NAME --scopes complete,chat --users FILE [--weight W]";
  auto args = Args::parse(argc, argv, 2, kOptions);
  if (!args.ok()) {
    std::fprintf(stderr, "latent user: %s\n", args.error().message.c_str());
    return 2;
  }
  if (args->has("help")) {
    std::printf("%s", format_help(usage, "Adds a user to a latentd users file and prints its new token once.", kOptions).c_str());
    return 0;
  }
  const auto& pos = args->positional();
  if (pos.size() != 2 || pos[0] != "add") {
    std::fprintf(stderr, "latent user: expected 'add NAME', found %zu argument(s)%s%s\nusage: %s\n", pos.size(),
                 pos.empty() ? "" : " starting with ", pos.empty() ? "" : pos[0].c_str(), usage.c_str());
    return 2;
  }
  if (!args->has("users") || !args->has("scopes")) {
    std::fprintf(stderr, "latent user add: expected --users FILE and --scopes LIST\nusage: %s\n", usage.c_str());
    return 2;
  }
  auto scopes = server::parse_scope_list(args->get("scopes"));
  if (!scopes.ok()) {
    std::fprintf(stderr, "latent user add: %s\n", scopes.error().message.c_str());
    return 2;
  }
  auto weight = args->get_double("weight", 1.0);
  if (!weight.ok()) {
    std::fprintf(stderr, "latent user add: --weight: expected a number in (0, 1000], found '%s'\n",
                 args->get("weight").c_str());
    return 2;
  }
  auto token = server::new_token();
  if (!token.ok()) {
    std::fprintf(stderr, "latent user add: %s\n", token.error().message.c_str());
    return 1;
  }
  if (auto st = server::append_user(args->get("users"), pos[1], *scopes, *token, *weight); !st.ok()) {
    std::fprintf(stderr, "latent user add: %s\n", st.error().message.c_str());
    return 1;
  }
  std::printf("%s\n", token->c_str());
  std::fprintf(stderr, "latent user add: added '%s' to %s; the token above is shown only now (send SIGHUP to a "
                       "running latentd to load it)\n", pos[1].c_str(), args->get("users").c_str());
  return 0;
}

const CommandRegistration kReg{"user", "add a user to a latentd --users file (prints its token once)", run_user};

}  // namespace
}  // namespace latent::cli
