#pragma once
// The syntax check (lsp/syntax_check.h) on the HTTP completion path: /infill, and /v1/completions with a
// suffix, when the request names its "language". The text is post-processed as the LSP path does it
// (lsp/postprocess.h: block end, no repeat of the suffix, balanced brackets), then checked. While the engine
// decodes, each new whole line is scanned for loops (no parse) so that decoding stops early; the verdict is
// taken once, at the end. A streamed response therefore carries the checked text in one chunk at the end:
// text that would be cut back or refused is never sent.
//
// Thread-safety: one gate per generation, called under the Generation's lock.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "lsp/syntax_check.h"
#include "server/metrics.h"

namespace latent::openai {

class SyntaxGate {
 public:
  // `language`: an LSP languageId; unknown ids check for loops only. `prefix`/`suffix`: the text around the
  // insertion point, as the client sent it.
  SyntaxGate(const std::string& language, std::string prefix, std::string suffix, lsp::SyntaxStats* stats);

  // All the text so far; true once it has degenerated (stop decoding).
  bool degenerated(const std::string& text);
  // The verdict on the whole text, counted in the stats (once per request).
  lsp::SyntaxVerdict finish(const std::string& text);
  // rank: a verdict on one candidate, not counted; then what finish() reports about the ranking.
  lsp::SyntaxVerdict verdict(const std::string& text);
  bool scan_degenerated(const std::string& text) const { return checker_.scan(text, false).found(); }
  void ranked(int candidates, int chosen, double micros);

 private:
  std::string line_prefix_, suffix_head_;
  lsp::SyntaxChecker checker_;
  lsp::SyntaxStats* stats_;
  size_t scanned_newlines_ = 0;
  bool degenerated_ = false;
  double scan_micros_ = 0;
  int candidates_ = 1, chosen_ = 0;
};

// {"action", "rules", "reason", "closer", "candidates", "chosen", "errors_without", "errors_with", "has_code", "check_ms"}
nlohmann::json syntax_json(const lsp::SyntaxVerdict& v);

// latent_syntax_checks_total{action}, latent_syntax_rule_total{rule}, latent_syntax_check_seconds_total,
// latent_syntax_parses_total: read from `stats` when /metrics is rendered.
void add_syntax_metrics(MetricsRegistry& registry, const lsp::SyntaxStats& stats);

}  // namespace latent::openai
