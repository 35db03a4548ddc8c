// lsp_bench: the request path of a keystroke and the background indexer.
//   1. didChange -> incremental reparse -> context ready, on a 5,000-line (--lines) Python file open in an
//      AssistantCore (the daemon's path: DocumentStore edit + ts_tree_edit + reparse, then ContextBuilder with
//      the workspace index), one character typed per iteration; p50/p99/max in milliseconds. Twice, side by
//      side: with exact trees (the daemon's: error regions parsed again, lsp/document_store.h) and with
//      tree-sitter's own incremental trees; their ratio is the cost of exactness.
//   2. Workspace indexing throughput (walk + .gitignore + tree-sitter parse + symbol query) over a real tree.
// Prints one JSON object. Usage: lsp_bench [--iterations N] [--lines N] [--tree DIR]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "lsp/assistant_core.h"

using namespace latent::lsp;
using Clock = std::chrono::steady_clock;

namespace {

std::string make_file(int lines) {
  std::string s = "import os\nimport sys\nfrom collections import defaultdict\n\n";
  for (int k = 0; std::count(s.begin(), s.end(), '\n') < lines; ++k) {
    s += "class Widget" + std::to_string(k) + ":\n";
    s += "    def __init__(self, size):\n        self.size = size\n        self.items = []\n\n";
    s += "    def grow(self, factor):\n        total = 0\n        for i in range(factor):\n";
    s += "            total += helper_" + std::to_string(k % 50) + "(i, self.size)\n";
    s += "        return total\n\n";
    s += "def helper_" + std::to_string(k) + "(a, b):\n    \"\"\"Combine a and b.\"\"\"\n    return a * b + " +
         std::to_string(k) + "\n\n";
  }
  return s;
}

double load_average() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

// CPU time of the calling thread: on a shared, oversubscribed machine the wall clock also counts the time
// spent waiting for a core, which says nothing about the code.
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// The keystroke path over `iterations` characters typed into a `lines`-line Python file (DocumentStore with
// exact or tree-sitter's own incremental trees: lsp/document_store.h). Returns the JSON object, or null on failure.
nlohmann::json keystrokes(int iterations, int lines, bool exact_trees) {
  AssistantOptions options;
  options.exact_trees = exact_trees;
  AssistantCore core(options, nullptr);
  std::string text = make_file(lines);
  int n_lines = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  const std::string uri = "file:///bench/widgets.py";
  if (!core.open(uri, "python", 1, text).ok()) return nullptr;
  // Type inside a function body near the middle: "x = helper_1(" one character at a time, then delete it.
  uint32_t line = static_cast<uint32_t>(n_lines / 2);
  while (true) {  // find a line inside a body ("        total = 0")
    std::string_view t = text;
    size_t off = offset_of(t, Position{line, 0}, PositionEncoding::kUtf16);
    if (t.substr(off, 17) == "        total = 0") break;
    ++line;
  }
  --line;  // the edits below address line + 1: the "total = 0" line, whose end (column 17) the typing starts at
  const std::string typed = "x = helper_1(total, ";
  std::vector<double> total_ms, change_ms, total_cpu_ms;
  uint32_t col = 17;
  int version = 2;
  size_t prompt_chars = 0;
  for (int it = 0; it < iterations; ++it) {
    size_t k = static_cast<size_t>(it) % (typed.size() + 1);
    ContentChange c;
    if (k < typed.size()) {
      c.range = Range{{line + 1, col}, {line + 1, col}};
      c.text = (k == 0 ? "\n        " : "") + std::string(1, typed[k]);
    } else {  // remove what was typed (from the end of "total = 0" to the cursor), back to the original text
      c.range = Range{{line, 17}, {line + 1, col}};
      c.text = "";
    }
    double c0 = thread_cpu_ms();
    auto t0 = Clock::now();
    if (!core.change(uri, version++, {c}, PositionEncoding::kUtf16).ok()) return nullptr;
    auto t1 = Clock::now();
    col = k < typed.size() ? (k == 0 ? 9 : col + 1) : 17;
    if (k == 0) ++line;
    if (k == typed.size()) --line;
    auto ctx = core.context_at(uri, Position{k < typed.size() ? line + 1 : line + 1, col}, PositionEncoding::kUtf16);
    auto t2 = Clock::now();
    total_cpu_ms.push_back(thread_cpu_ms() - c0);
    if (!ctx.ok()) return nullptr;
    prompt_chars = ctx->prompt.size();
    if (k == typed.size()) {  // the deletion restored the file exactly (it once removed the wrong range)
      auto snap = core.documents().snapshot(uri);
      if (!snap || *snap->text != text) {
        std::fprintf(stderr, "lsp_bench: expected the original text after deleting the typed line, found another\n");
        return nullptr;
      }
    }
    change_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    total_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
  }
  return {{"exact_trees", exact_trees},
          {"file_lines", n_lines},
          {"file_bytes", text.size()},
          {"iterations", iterations},
          {"change_reparse_ms", {{"p50", pct(change_ms, 0.5)}, {"p99", pct(change_ms, 0.99)}}},
          {"change_reparse_context_ms",
           {{"p50", pct(total_ms, 0.5)}, {"p99", pct(total_ms, 0.99)}, {"max", pct(total_ms, 1.0)}}},
          {"change_reparse_context_thread_cpu_ms",
           {{"p50", pct(total_cpu_ms, 0.5)}, {"p99", pct(total_cpu_ms, 0.99)}, {"max", pct(total_cpu_ms, 1.0)}}},
          {"goal_p99_ms", 5.0},
          {"load_average_1m", load_average()},
          {"prompt_chars", prompt_chars}};
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 2000, lines = 5000;
  std::string tree = "/usr/lib/python3.11";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--iterations")) iterations = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--tree")) tree = argv[i + 1];
    if (!std::strcmp(argv[i], "--lines")) lines = std::atoi(argv[i + 1]);
  }

  // ---- 1. keystroke path: the daemon's (exact trees), then tree-sitter's own incremental trees, same file and
  // keystrokes, side by side (the ratio is the cost of exact error recovery).
  const nlohmann::json exact = keystrokes(iterations, lines, true);
  const nlohmann::json inexact = keystrokes(iterations, lines, false);
  if (exact.is_null() || inexact.is_null()) return 1;

  // ---- 2. indexing throughput
  WorkspaceIndex index(IndexOptions{.background = false});
  double ic0 = thread_cpu_ms();
  IndexStats s = index.index_now(tree);
  double index_cpu_s = (thread_cpu_ms() - ic0) / 1e3;

  const double exact_p50 = exact["change_reparse_ms"]["p50"], inexact_p50 = inexact["change_reparse_ms"]["p50"];
  nlohmann::json out = {
      {"bench", "lsp"},
      {"machine", latent::bench::cpu_model_name()},
      {"keystroke", exact},
      {"keystroke_inexact_trees", inexact},
      {"exact_over_inexact_change_reparse_p50", inexact_p50 > 0 ? exact_p50 / inexact_p50 : 0},
      {"indexing",
       {{"tree", tree},
        {"files", s.files},
        {"megabytes", s.bytes / 1e6},
        {"symbols", s.symbols},
        {"seconds", s.seconds},
        {"mb_per_s", s.seconds > 0 ? s.bytes / 1e6 / s.seconds : 0},
        {"thread_cpu_seconds", index_cpu_s},
        {"mb_per_cpu_s", index_cpu_s > 0 ? s.bytes / 1e6 / index_cpu_s : 0},
        {"skipped", {{"ignored", s.skipped_ignored}, {"binary", s.skipped_binary}, {"large", s.skipped_large},
                     {"no_grammar", s.skipped_unknown}}}}},
  };
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
