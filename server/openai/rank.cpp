#include "server/openai/rank.h"

#include <algorithm>
#include <chrono>

#include "engine/scheduler.h"
#include "server/openai/generation.h"

namespace latent::openai {

RankGroup::RankGroup(int n, std::shared_ptr<Generation> gen, std::shared_ptr<SyntaxGate> gate, Scheduler* scheduler)
    : gen_(std::move(gen)), gate_(std::move(gate)), scheduler_(scheduler), c_(static_cast<size_t>(n)), remaining_(n) {}

Request RankGroup::candidate(const Request& base, int k, std::function<void(const Event&)> done_hook) {
  Request r = base;
  if (k > 0) {
    r.sampling.temperature = std::max(r.sampling.temperature, 0.8f);
    r.sampling.top_k = 40;
    r.sampling.top_p = 0.95f;
    r.sampling.seed = base.sampling.seed + static_cast<uint64_t>(k) * 0x9E3779B97F4A7C15ull;
  }
  r.on_event = [this, k, hook = std::move(done_hook)](const Event& e) {
    on_event(k, e);
    if (e.kind != Event::Kind::kToken && hook) hook(e);
  };
  return r;
}

void RankGroup::submitted(int k, RequestId id) {
  std::lock_guard lock(mu_);
  auto& c = c_[static_cast<size_t>(k)];
  c.id = id;
  c.submitted = true;
  if (c.stop_wanted && !c.done) scheduler_->cancel(id);
}

void RankGroup::cancel_all() {
  std::lock_guard lock(mu_);
  for (auto& c : c_) {
    if (c.submitted && !c.done) scheduler_->cancel(c.id);
  }
}

void RankGroup::on_event(int k, const Event& e) {
  std::lock_guard lock(mu_);
  auto& c = c_[static_cast<size_t>(k)];
  if (c.done) return;
  if (e.kind == Event::Kind::kToken) {
    c.text += e.text;
    size_t newlines = static_cast<size_t>(std::count(c.text.begin(), c.text.end(), '\n'));
    if (newlines != c.newlines && !c.stop_wanted) {  // a loop: this candidate stops decoding
      c.newlines = newlines;
      auto t0 = std::chrono::steady_clock::now();
      c.stop_wanted = gate_->scan_degenerated(c.text);
      scan_micros_ += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      if (c.stop_wanted && c.submitted) scheduler_->cancel(c.id);
    }
    return;
  }
  c.done = true;
  c.last = e;
  if (--remaining_ == 0) choose();
}

void RankGroup::choose() {
  auto t0 = std::chrono::steady_clock::now();
  int best = -1;
  lsp::SyntaxVerdict best_v;
  for (size_t k = 0; k < c_.size(); ++k) {
    if (c_[k].last.kind != Event::Kind::kDone) continue;
    lsp::SyntaxVerdict v = gate_->verdict(c_[k].text);
    if (best < 0 || lsp::better_candidate(v, best_v)) {
      best = static_cast<int>(k);
      best_v = std::move(v);
    }
  }
  double micros = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  if (best < 0) {  // every candidate failed: the first error answers
    gen_->on_event(c_[0].last);
    return;
  }
  gate_->ranked(static_cast<int>(c_.size()), best, scan_micros_ + micros);
  const Candidate& c = c_[static_cast<size_t>(best)];
  Event text;
  text.kind = Event::Kind::kToken;
  text.id = c.last.id;
  text.text = c.text;
  gen_->on_event(text);
  Event done = c.last;
  if (done.finish == FinishReason::kCancelled && c.stop_wanted) done.finish = FinishReason::kStopString;
  gen_->on_event(done);
}

}  // namespace latent::openai
