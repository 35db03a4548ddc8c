#pragma once
// An in-memory Transport for tests (clangd's unittests/LSPClient.h): the test plays the client through
// client_send / client_receive while the server runs loop() on its own thread.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "lsp/json_rpc.h"

namespace latent::lsp {

class InMemoryTransport : public MessageTransport {
 public:
  // Client side. Thread-safe.
  void client_send(std::string text);
  void client_send(const Json& message) { client_send(dump_json(message)); }
  // The next message the server wrote, or nullopt after `timeout`.
  std::optional<Json> client_receive(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Ends the server's loop once the queued messages are read.
  void client_close();

 protected:
  Result<std::optional<std::string>> read_message() override;
  void write_message(std::string text) override;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> to_server_;
  std::deque<std::string> to_client_;
  bool closed_ = false;
};

}  // namespace latent::lsp
