// Sequences of didChange notifications (several changes each, reversed ranges, positions past the end,
// multi-byte text, any encoding) against DocumentStore. Invariants after every notification: the text is what
// applying the changes to a plain string gives (all of a notification or, on an error, none of it), and the
// incrementally edited tree equals a fresh parse of that text, node by node with byte ranges and points.
#include <tree_sitter/api.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "lsp/document_store.h"
#include "lsp/languages.h"
#include "tests/fuzz/fuzz_input.h"

using namespace latent::lsp;

#define FUZZ_CHECK(c) \
  if (!(c)) std::abort()

namespace {

void dump(TSNode n, std::string* out) {
  const TSPoint a = ts_node_start_point(n), b = ts_node_end_point(n);
  *out += std::string(ts_node_type(n)) + "[" + std::to_string(ts_node_start_byte(n)) + "," +
          std::to_string(ts_node_end_byte(n)) + ")@" + std::to_string(a.row) + ":" + std::to_string(a.column) + "-" +
          std::to_string(b.row) + ":" + std::to_string(b.column) + (ts_node_has_error(n) ? "!" : "") + "(";
  for (uint32_t i = 0; i < ts_node_child_count(n); ++i) dump(ts_node_child(n, i), out);
  *out += ")";
}

std::string fresh(const LanguageInfo& lang, const std::string& text, bool* has_error) {
  TSParser* p = ts_parser_new();
  ts_parser_set_language(p, lang.grammar());
  TSTree* t = ts_parser_parse_string(p, nullptr, text.data(), static_cast<uint32_t>(text.size()));
  std::string s;
  dump(ts_tree_root_node(t), &s);
  *has_error = ts_node_has_error(ts_tree_root_node(t));
  ts_tree_delete(t);
  ts_parser_delete(p);
  return s;
}

const char* const kLanguages[] = {"python", "cpp", "rust", "typescript", "javascript", "go", "plaintext"};
const char* const kPieces[] = {"", "x", "(", ")", "{", "}", "\n", "\r\n", "  ", "\"", "'", "ü", "😀", "中",
                               "def f():\n    ", "return 1;", "/*", "*/", "#", "fn a() {}", "\xff", "\xf0\x9f"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  latent::fuzz::Input in(data, size);
  const char* lang = kLanguages[in.byte() % (sizeof kLanguages / sizeof *kLanguages)];
  const PositionEncoding enc = static_cast<PositionEncoding>(in.byte() % 3);
  std::string expected = in.bytes(200);
  DocumentStore store;
  const std::string uri = std::string("file:///w/f.") + lang;
  if (!store.open(uri, lang, 1, expected).ok()) return 0;
  int version = 1;
  while (!in.empty()) {
    const int n_changes = 1 + in.byte() % 3;
    std::vector<ContentChange> changes;
    for (int k = 0; k < n_changes && !in.empty(); ++k) {
      const uint8_t kind = in.byte();
      ContentChange c;
      if (kind % 4 == 0) {
        c.text = kPieces[in.byte() % (sizeof kPieces / sizeof *kPieces)];
      } else {
        c.text = (kind & 0x10) ? in.bytes(16) : std::string(kPieces[in.byte() % (sizeof kPieces / sizeof *kPieces)]);
      }
      if (kind % 16 != 15) {  // else: a whole-document replacement
        Position a{in.byte() % 12u, in.byte() % 40u}, b{in.byte() % 12u, in.byte() % 40u};
        if (!(kind & 0x20) && (b.line < a.line || (b.line == a.line && b.character < a.character))) std::swap(a, b);
        c.range = Range{a, b};
      }
      changes.push_back(std::move(c));
    }
    // The reference: a plain string, all of the notification or none of it.
    std::string next = expected;
    bool valid = true;
    for (const auto& c : changes) {
      if (!c.range) {
        next = c.text;
        continue;
      }
      const Range& r = *c.range;
      if (r.end.line < r.start.line || (r.end.line == r.start.line && r.end.character < r.start.character)) {
        valid = false;
        break;
      }
      size_t s = offset_of(next, r.start, enc), e = offset_of(next, r.end, enc);
      if (e < s) e = s;
      next.replace(s, e - s, c.text);
    }
    const bool ok = store.change(uri, ++version, changes, enc).ok();
    FUZZ_CHECK(ok == valid);
    if (ok) expected = next;
    auto snap = store.snapshot(uri);
    FUZZ_CHECK(snap && *snap->text == expected);
    if (snap->language) {
      FUZZ_CHECK(snap->tree != nullptr);
      bool has_error = false;
      const std::string want = fresh(*snap->language, expected, &has_error);
      std::string got;
      dump(ts_tree_root_node(snap->tree), &got);
      FUZZ_CHECK(ts_node_end_byte(ts_tree_root_node(snap->tree)) <= expected.size());
      FUZZ_CHECK(got == want);
      (void)has_error;
    }
  }
  return 0;
}
