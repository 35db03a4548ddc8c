// LSP framing and dispatch: bytes are split into pieces (as a pipe delivers them), framed by the daemon's
// ContentLengthFramer (Content-Length headers, a 1 MiB limit), and every message is dispatched to a real
// LspServer over an AssistantCore (no model; a workspace index without a thread that stops at the first
// file). The server must never crash, and afterwards it still answers a well-formed request (unless the input
// said "exit").
#include <chrono>
#include <cstdlib>
#include <string>

#include "kernels/base/log.h"
#include "lsp/lsp_server.h"
#include "lsp/transport_memory.h"
#include "server/transport_stdio.h"

#define FUZZ_CHECK(c) \
  if (!(c)) std::abort()

using namespace latent::lsp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    latent::set_log_level(latent::LogLevel::kError);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 64;
  latent::server::ContentLengthFramer framer(1 << 20);
  InMemoryTransport t;
  size_t messages = 0;
  bool saw_exit = false;
  for (size_t off = 1; off < size; off += piece) {
    framer.feed(std::string_view(reinterpret_cast<const char*>(data + off), std::min(piece, size - off)));
    for (int guard = 0; guard < 1000; ++guard) {
      auto m = framer.next();
      if (m.ok() && !m->has_value()) break;
      if (m.ok()) {
        saw_exit |= (*m)->find("exit") != std::string::npos;  // conservative: any mention
        t.client_send(std::move(**m));
        ++messages;
      }
    }
  }
  // The probe: a request the server must still answer after whatever came before (unless the input said exit).
  t.client_send(std::string(R"({"jsonrpc":"2.0","id":"probe","method":"shutdown"})"));
  t.client_close();
  AssistantOptions options;
  options.index.background = false;
  options.index.max_files = 0;  // a folder "file:///" stops at its first file: no disk walk per input
  options.index.max_file_bytes = 4096;
  AssistantCore core(options, nullptr);
  LspServer server(t, core);
  server.run();
  bool probe_answered = false;
  while (auto m = t.client_receive(std::chrono::milliseconds(0))) {
    probe_answered |= m->is_object() && m->value("id", Json()) == "probe" && !m->contains("method");
  }
  FUZZ_CHECK(probe_answered || saw_exit);
  (void)messages;
  return 0;
}
