// latent agent-edit: the agent's edit checker for scripts. Applies one edit ({"path", "symbol"|"old", "new",
// "version"?}, lsp/agent/edit_checker.h) to a file under --root, or refuses it and leaves the file
// byte-for-byte unchanged.
//   exit 0: prints {"ok": true, "path", "range", "version", ...}
//   exit 2: prints {"error": {"code", "message"}} (code: malformed, path, not_found, ambiguous, stale, syntax, ...)
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "lsp/agent/edit_checker.h"
#include "lsp/agent/workspace_files.h"
#include "server/args.h"
#include "server/cli/command.h"

namespace latent::cli {
namespace {

const std::vector<OptionSpec> kOptions = {
    {"root", "DIR", "the workspace folder; the edit's path is relative to it and must stay inside it", ""},
    {"edit", "JSON", "the edit as JSON text, @FILE to read it from a file, or - to read it from stdin", ""},
    {"help", "", "print this help and exit", ""},
};

int print_outcome(const lsp::agent::EditOutcome& o) {
  std::printf("%s\n", lsp::agent::outcome_json(o).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  return o.ok() ? 0 : 2;
}

int run_agent_edit(int argc, char** argv) {
  auto args = Args::parse(argc, argv, 2, kOptions);
  if (!args.ok()) return print_outcome(lsp::agent::refuse("malformed", "latent agent-edit: " + args.error().message));
  if (args->has("help")) {
    std::printf("%s", format_help("latent agent-edit --root DIR --edit JSON",
                                  "Applies one agent edit under DIR after every check passes ({\"path\", \"symbol\": "
                                  "\"Outer.inner\" | \"old\": TEXT, \"new\": TEXT, \"version\"?}); exit 0 and a JSON "
                                  "summary, or exit 2 and {\"error\": {\"code\", \"message\"}} with the file unchanged.",
                                  kOptions)
                          .c_str());
    return 0;
  }
  if (!args->has("root") || !args->has("edit") || !args->positional().empty()) {
    return print_outcome(lsp::agent::refuse(
        "malformed", "latent agent-edit: expected --root DIR --edit JSON" +
                         std::string(args->positional().empty() ? "" : ", found extra argument '" + args->positional()[0] + "'")));
  }
  std::string edit = args->get("edit");
  if (edit == "-") {
    edit.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else if (!edit.empty() && edit[0] == '@') {
    auto text = lsp::agent::read_text_file(edit.substr(1), 16u << 20);
    if (!text.ok()) return print_outcome(lsp::agent::refuse("io", "--edit " + edit + ": " + text.error().message));
    edit = std::move(*text);
  }
  return print_outcome(lsp::agent::apply_edit_json({args->get("root")}, edit));
}

const CommandRegistration kReg{"agent-edit", "apply one checked agent edit under a root (or refuse it)", run_agent_edit};

}  // namespace
}  // namespace latent::cli
