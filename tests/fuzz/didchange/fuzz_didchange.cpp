// Sequences of didChange notifications (up to 6 per input, several changes each, reversed ranges, positions past
// the end, multi-byte text, any encoding) against DocumentStore. Invariants: after every notification the text is
// what applying the changes to a plain string gives (all of a notification or, on an error, none of it); after the
// last one and after any refused one, the incrementally edited tree equals a fresh parse of that text, node by
// node with byte ranges and points.
#include <tree_sitter/api.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "lsp/document_store.h"
#include "lsp/languages.h"
#include "tests/fuzz/fuzz_input.h"

using namespace latent::lsp;

// A broken invariant names itself on stderr before the abort that libFuzzer reports as the crash.
#define FUZZ_CHECK(c)                                                               \
  if (!(c)) {                                                                       \
    std::fprintf(stderr, "fuzz_didchange: invariant failed (line %d): %s\n", __LINE__, #c); \
    std::abort();                                                                   \
  }

namespace {

bool same_node(TSNode a, TSNode b) {
  const TSPoint as = ts_node_start_point(a), bs = ts_node_start_point(b);
  const TSPoint ae = ts_node_end_point(a), be = ts_node_end_point(b);
  return ts_node_symbol(a) == ts_node_symbol(b) && ts_node_start_byte(a) == ts_node_start_byte(b) &&
         ts_node_end_byte(a) == ts_node_end_byte(b) && ts_node_has_error(a) == ts_node_has_error(b) &&
         as.row == bs.row && as.column == bs.column && ae.row == be.row && ae.column == be.column;
}

// Whether two trees are equal node by node (type, byte range, start and end points, error flag) with the same
// shape: one walk over both with tree cursors, building nothing (a string per node, as this target first
// compared them, was most of its time under ASan).
void describe(const char* what, TSNode n) {
  const TSPoint ps = ts_node_start_point(n), pe = ts_node_end_point(n);
  std::fprintf(stderr, "  %s: %s [%u, %u) (%u:%u)-(%u:%u)%s\n", what, ts_node_type(n), ts_node_start_byte(n),
               ts_node_end_byte(n), ps.row, ps.column, pe.row, pe.column, ts_node_has_error(n) ? " has error" : "");
}

bool same(TSNode a, TSNode b) {
  TSTreeCursor ca = ts_tree_cursor_new(a), cb = ts_tree_cursor_new(b);
  bool ok = true;
  for (bool done = false; ok && !done;) {
    ok = same_node(ts_tree_cursor_current_node(&ca), ts_tree_cursor_current_node(&cb));
    if (!ok) {  // the first node that differs, for the crash report
      describe("edited", ts_tree_cursor_current_node(&ca));
      describe("fresh ", ts_tree_cursor_current_node(&cb));
      break;
    }
    const bool child_a = ts_tree_cursor_goto_first_child(&ca);
    ok = child_a == ts_tree_cursor_goto_first_child(&cb);
    if (!ok || child_a) continue;
    for (;;) {  // no children: the next sibling here or of the nearest ancestor that has one
      const bool sibling_a = ts_tree_cursor_goto_next_sibling(&ca);
      ok = sibling_a == ts_tree_cursor_goto_next_sibling(&cb);
      if (!ok || sibling_a) break;
      const bool parent_a = ts_tree_cursor_goto_parent(&ca);
      ok = parent_a == ts_tree_cursor_goto_parent(&cb);
      if (!ok || !parent_a) {  // back above the roots: every node compared
        done = true;
        break;
      }
    }
  }
  ts_tree_cursor_delete(&ca);
  ts_tree_cursor_delete(&cb);
  return ok;
}

// Fresh parses (no old tree) with one parser for the input's language, made once per input (tree-sitter keeps
// pointers LeakSanitizer cannot follow, so a parser kept across inputs reads as a leak).
class FreshParser {
 public:
  explicit FreshParser(const LanguageInfo& lang) : p_(ts_parser_new()) { ts_parser_set_language(p_, lang.grammar()); }
  ~FreshParser() { ts_parser_delete(p_); }
  FreshParser(const FreshParser&) = delete;
  FreshParser& operator=(const FreshParser&) = delete;
  TSTree* parse(const std::string& text) {
    return ts_parser_parse_string(p_, nullptr, text.data(), static_cast<uint32_t>(text.size()));
  }

 private:
  TSParser* p_;
};

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
  std::unique_ptr<FreshParser> parser;
  // At most kNotifications per input: each costs an incremental and a fresh parse, and on a broken text
  // tree-sitter's error recovery makes those the whole run time; longer histories come from mutating a short one.
  constexpr int kNotifications = 6;
  for (int notification = 0; notification < kNotifications && !in.empty(); ++notification) {
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
    // The tree against a fresh parse: after a refused notification (which must leave the tree as it was) and after
    // the input's last one. Every prefix of a sequence is an input of its own for the fuzzer, so an intermediate
    // state is still checked as some input's last; comparing after every notification instead made tree-sitter's
    // error recovery on broken text (half of all time) a third more of this target's run time.
    const bool last = notification == kNotifications - 1 || in.empty();
    if (snap->language && (!ok || last)) {
      FUZZ_CHECK(snap->tree != nullptr);
      if (!parser) parser = std::make_unique<FreshParser>(*snap->language);
      TSTree* want = parser->parse(expected);
      FUZZ_CHECK(ts_node_end_byte(ts_tree_root_node(snap->tree)) <= expected.size());
      FUZZ_CHECK(same(ts_tree_root_node(snap->tree), ts_tree_root_node(want)));
      ts_tree_delete(want);
    }
  }
  return 0;
}
