#pragma once
// --syntax-check rank on the HTTP path: the same prompt decoded as several sequences in one batch (the
// scheduler batches them; the prompt's cache blocks are shared through the prefix cache): the request's own
// sampling (greedy for an editor) plus `n - 1` samples at temperature 0.8. Each candidate stops at a loop;
// when all are done, each is checked (syntax_gate.h) and the best verdict (lsp::better_candidate: not refused,
// has code, fewer errors, longer; the greedy one on a tie) is handed to the Generation as its only text.
//
// Thread-safety: on_event() runs on the engine thread; cancel_all() from a network thread; a mutex orders them.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/request.h"
#include "server/openai/syntax_gate.h"

namespace latent {
class Scheduler;
}

namespace latent::openai {

class Generation;

class RankGroup {
 public:
  RankGroup(int n, std::shared_ptr<Generation> gen, std::shared_ptr<SyntaxGate> gate, Scheduler* scheduler);

  // The request of candidate k (0: as asked; others: sampled) with its callback wired to this group.
  // `done_hook` runs after each candidate's last event (the API's in-flight count, the metrics sample).
  Request candidate(const Request& base, int k, std::function<void(const Event&)> done_hook);
  void submitted(int k, RequestId id);
  void on_event(int k, const Event& e);
  void cancel_all();

 private:
  void choose();  // under mu_, once every candidate is done

  std::mutex mu_;
  std::shared_ptr<Generation> gen_;
  std::shared_ptr<SyntaxGate> gate_;
  Scheduler* scheduler_;
  struct Candidate {
    std::string text;
    size_t newlines = 0;
    RequestId id = 0;
    bool submitted = false, stop_wanted = false, done = false;
    Event last;  // kDone or kError
  };
  std::vector<Candidate> c_;
  int remaining_;
  double scan_micros_ = 0;
};

}  // namespace latent::openai
