#include "server/openai/syntax_gate.h"

#include <algorithm>
#include <chrono>

#include "lsp/postprocess.h"

namespace latent::openai {

namespace {
std::string last_line(const std::string& s) {
  size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}
}  // namespace

SyntaxGate::SyntaxGate(const std::string& language, std::string prefix, std::string suffix, lsp::SyntaxStats* stats)
    : line_prefix_(last_line(prefix)),
      suffix_head_(suffix.substr(0, 4096)),
      checker_(lsp::language_by_id(language), std::move(prefix), std::move(suffix)),
      stats_(stats) {}

bool SyntaxGate::degenerated(const std::string& text) {
  if (degenerated_) return true;
  size_t newlines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  if (newlines == scanned_newlines_) return false;
  scanned_newlines_ = newlines;
  auto t0 = std::chrono::steady_clock::now();
  degenerated_ = checker_.scan(text, /*final=*/false).found();
  scan_micros_ += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  return degenerated_;
}

lsp::SyntaxVerdict SyntaxGate::verdict(const std::string& text) {
  auto t0 = std::chrono::steady_clock::now();
  std::string pp = lsp::postprocess_completion(text, line_prefix_, suffix_head_, /*final=*/true).text;
  double pp_micros = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  lsp::SyntaxVerdict v = checker_.check(pp, /*final=*/true);
  v.micros += pp_micros;
  return v;
}

void SyntaxGate::ranked(int candidates, int chosen, double micros) {
  candidates_ = candidates;
  chosen_ = chosen;
  scan_micros_ += micros;
}

lsp::SyntaxVerdict SyntaxGate::finish(const std::string& text) {
  lsp::SyntaxVerdict v = verdict(text);
  v.micros += scan_micros_;
  v.candidates = candidates_;
  v.chosen = chosen_;
  if (stats_) stats_->record(v);
  return v;
}

nlohmann::json syntax_json(const lsp::SyntaxVerdict& v) {
  return nlohmann::json{{"action", lsp::syntax_action_name(v.action)},
                        {"rules", v.rules},
                        {"reason", v.reason},
                        {"closer", v.closer},
                        {"candidates", v.candidates},
                        {"chosen", v.chosen},
                        {"errors_without", v.errors_without},
                        {"errors_with", v.errors_with},
                        {"has_code", v.has_code},
                        {"parses", v.parses},
                        {"check_ms", v.micros / 1000.0}};
}

void add_syntax_metrics(MetricsRegistry& registry, const lsp::SyntaxStats& stats) {
  // Counters are monotonic; the collector raises each to the stats' running total.
  auto raise = [](Counter& c, double total) {
    if (total > c.value()) c.inc(total - c.value());
  };
  registry.add_collector([&stats, raise](MetricsRegistry& r) {
    auto s = stats.snapshot();
    for (const char* a : {"kept", "cut", "refused", "unchecked"}) {
      raise(r.counter("latent_syntax_checks_total", "Completions checked with tree-sitter, by verdict", {{"action", a}}),
            static_cast<double>(s.actions[a]));
    }
    for (const char* rule : {"parse_error", "refused_parse_error", "closed_string", "closed_brackets", "repeated_lines",
                             "repeated_line", "repeated_ngram", "runaway_docstring", "dangling_operator", "bad_indent", "open_try",
                             "continued"}) {
      raise(r.counter("latent_syntax_rule_total", "How often each rule of the syntax check acted", {{"rule", rule}}),
            static_cast<double>(s.rules[rule]));
    }
    raise(r.counter("latent_syntax_parses_total", "tree-sitter parses run by the syntax check"),
          static_cast<double>(s.parses));
    raise(r.counter("latent_syntax_check_seconds_total", "Time spent in the syntax check"), s.seconds);
  });
}

}  // namespace latent::openai
