#include "lsp/document_store.h"

#include <gtest/gtest.h>
#include <tree_sitter/api.h>

#include <random>

namespace latent::lsp {
namespace {

// Every node with its type, byte range and (row, column) points: an edit with wrong points shows here even
// when the s-expression is the same.
void dump(TSNode n, std::string* out) {
  TSPoint a = ts_node_start_point(n), b = ts_node_end_point(n);
  *out += std::string(ts_node_type(n)) + "[" + std::to_string(ts_node_start_byte(n)) + "," +
          std::to_string(ts_node_end_byte(n)) + ")@" + std::to_string(a.row) + ":" + std::to_string(a.column) + "-" +
          std::to_string(b.row) + ":" + std::to_string(b.column) + (ts_node_has_error(n) ? "!" : "") + "(";
  for (uint32_t i = 0; i < ts_node_child_count(n); ++i) dump(ts_node_child(n, i), out);
  *out += ")";
}

std::string sexp(TSTree* tree) {
  std::string out;
  dump(ts_tree_root_node(tree), &out);
  return out;
}

std::string full_parse_sexp(const LanguageInfo& lang, const std::string& text) {
  TSParser* p = ts_parser_new();
  ts_parser_set_language(p, lang.grammar());
  TSTree* t = ts_parser_parse_string(p, nullptr, text.data(), static_cast<uint32_t>(text.size()));
  std::string s = sexp(t);
  ts_tree_delete(t);
  ts_parser_delete(p);
  return s;
}

ContentChange edit(uint32_t l0, uint32_t c0, uint32_t l1, uint32_t c1, std::string text) {
  return ContentChange{Range{{l0, c0}, {l1, c1}}, std::move(text)};
}

TEST(DocumentStore, IncrementalEditsWithNonAsciiUtf16) {
  DocumentStore store;
  ASSERT_TRUE(store.open("file:///w/a.py", "python", 1, "s = \"héllo 😀\"\nx = 1\n").ok());
  // Replace "😀" (UTF-16 columns 11..13 on line 0) with "wörld"; then insert a line after it.
  ASSERT_TRUE(store.change("file:///w/a.py", 2, {edit(0, 11, 0, 13, "wörld")}, PositionEncoding::kUtf16).ok());
  ASSERT_TRUE(store.change("file:///w/a.py", 3, {edit(1, 0, 1, 0, "y = \"ü\"\n"), edit(2, 4, 2, 5, "2")},
                           PositionEncoding::kUtf16).ok());
  auto snap = store.snapshot("file:///w/a.py");
  ASSERT_NE(snap, nullptr);
  EXPECT_EQ(*snap->text, "s = \"héllo wörld\"\ny = \"ü\"\nx = 2\n");
  EXPECT_EQ(snap->version, 3);
  EXPECT_EQ(sexp(snap->tree), full_parse_sexp(*snap->language, *snap->text));
}

TEST(DocumentStore, Utf8NegotiatedPositionsAreBytes) {
  DocumentStore store;
  ASSERT_TRUE(store.open("file:///w/b.py", "python", 1, "é = 1\n").ok());
  ASSERT_TRUE(store.change("file:///w/b.py", 2, {edit(0, 2, 0, 2, "x")}, PositionEncoding::kUtf8).ok());
  EXPECT_EQ(*store.snapshot("file:///w/b.py")->text, "éx = 1\n");
}

TEST(DocumentStore, FullReplaceAndErrors) {
  DocumentStore store;
  ASSERT_TRUE(store.open("file:///w/c.js", "javascript", 1, "let a = 1;").ok());
  ASSERT_TRUE(store.change("file:///w/c.js", 2, {ContentChange{std::nullopt, "function f() {}"}},
                           PositionEncoding::kUtf16).ok());
  auto snap = store.snapshot("file:///w/c.js");
  EXPECT_EQ(sexp(snap->tree), full_parse_sexp(*snap->language, *snap->text));
  EXPECT_FALSE(store.change("file:///nope", 1, {}, PositionEncoding::kUtf16).ok());
  Status st = store.change("file:///w/c.js", 3, {edit(0, 5, 0, 1, "")}, PositionEncoding::kUtf16);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("expected range.start <= range.end"), std::string::npos);
}

// A multi-change didChange whose second change has a reversed range: nothing of it applies. Before, the first
// change edited the tree but the text was not committed, so the tree no longer described the text (and every
// later incremental parse built on the wrong tree).
TEST(DocumentStore, AReversedRangeInAMultiChangeAppliesNothing) {
  DocumentStore store;
  const std::string uri = "file:///w/m.py";
  const std::string text = "def f(x):\n    return x\n";
  ASSERT_TRUE(store.open(uri, "python", 1, text).ok());
  const std::string before = sexp(store.snapshot(uri)->tree);
  Status st = store.change(uri, 2, {edit(0, 0, 0, 0, "import os\n"), edit(1, 9, 1, 2, "")}, PositionEncoding::kUtf16);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("no change of this notification was applied"), std::string::npos);
  auto snap = store.snapshot(uri);
  EXPECT_EQ(*snap->text, text);
  EXPECT_EQ(snap->version, 1);
  EXPECT_EQ(sexp(snap->tree), before);
  EXPECT_EQ(sexp(snap->tree), full_parse_sexp(*snap->language, text));
  // A full replacement followed by a bad change also leaves the document as it was.
  st = store.change(uri, 3, {ContentChange{std::nullopt, "x = 1\n"}, edit(0, 3, 0, 1, "")}, PositionEncoding::kUtf16);
  ASSERT_FALSE(st.ok());
  snap = store.snapshot(uri);
  EXPECT_EQ(*snap->text, text);
  EXPECT_EQ(sexp(snap->tree), before);
  // The next good change parses incrementally from a tree that matches the text.
  ASSERT_TRUE(store.change(uri, 4, {edit(1, 11, 1, 12, "x + 1")}, PositionEncoding::kUtf16).ok());
  snap = store.snapshot(uri);
  EXPECT_EQ(*snap->text, "def f(x):\n    return x + 1\n");
  EXPECT_EQ(sexp(snap->tree), full_parse_sexp(*snap->language, *snap->text));
}

// tree-sitter's incremental parse, reusing the old tree's subtrees, recovers from some syntax errors otherwise than
// a fresh parse; the store's trees always equal the fresh parse. Two inputs of the didchange fuzz target (kept in
// tests/fuzz/didchange/crashes), reduced: an insertion before an error ("Rb- x" stayed inside one ERROR where the
// fresh parse reads an expression), and an empty edit of a text with an invalid UTF-8 byte (with the old error
// regions marked as changed, a first fix, a comparison_operator came back as a binary_operator).
TEST(DocumentStore, EditsAroundSyntaxErrorsGiveTheFreshParsesTree) {
  DocumentStore store;
  const std::string uri = "file:///w/e.py";
  ASSERT_TRUE(store.open(uri, "python", 1, "x\r\n/*").ok());
  ASSERT_TRUE(store.change(uri, 2, {edit(0, 0, 0, 0, "e_info; ]}\nRb- ")}, PositionEncoding::kUtf16).ok());
  auto snap = store.snapshot(uri);
  ASSERT_EQ(*snap->text, "e_info; ]}\nRb- x\r\n/*");
  EXPECT_EQ(sexp(snap->tree), full_parse_sexp(*snap->language, *snap->text));
  // Typing on inside the broken region, and fixing it, stays equal too.
  ASSERT_TRUE(store.change(uri, 3, {edit(1, 5, 1, 5, " + (")}, PositionEncoding::kUtf16).ok());
  snap = store.snapshot(uri);
  EXPECT_EQ(sexp(snap->tree), full_parse_sexp(*snap->language, *snap->text));
  ASSERT_TRUE(store.change(uri, 4, {edit(0, 8, 0, 10, ""), edit(2, 0, 2, 2, ")")}, PositionEncoding::kUtf16).ok());
  snap = store.snapshot(uri);
  EXPECT_EQ(*snap->text, "e_info; \nRb- x + (\r\n)");
  EXPECT_EQ(sexp(snap->tree), full_parse_sexp(*snap->language, *snap->text));

  const std::string u2 = "file:///w/f.py";
  const std::string text = "88888l8l8ll\xb2ll|\xb2<ll,llllllll#llllllldlll";
  ASSERT_TRUE(store.open(u2, "python", 1, text).ok());
  ASSERT_TRUE(store.change(u2, 2, {edit(0, 0, 0, 0, "")}, PositionEncoding::kUtf32).ok());
  snap = store.snapshot(u2);
  EXPECT_EQ(*snap->text, text);
  EXPECT_EQ(sexp(snap->tree), full_parse_sexp(*snap->language, text));
}

// exact_trees = false keeps tree-sitter's own incremental result (bench/lsp_bench's comparison): the text is the
// same, the tree may recover from the error otherwise (it does on this input).
TEST(DocumentStore, InexactTreesAreTreeSittersIncrementalResult) {
  DocumentStore store(/*exact_trees=*/false);
  const std::string uri = "file:///w/e.py";
  ASSERT_TRUE(store.open(uri, "python", 1, "x\r\n/*").ok());
  ASSERT_TRUE(store.change(uri, 2, {edit(0, 0, 0, 0, "e_info; ]}\nRb- ")}, PositionEncoding::kUtf16).ok());
  auto snap = store.snapshot(uri);
  ASSERT_EQ(*snap->text, "e_info; ]}\nRb- x\r\n/*");
  EXPECT_NE(sexp(snap->tree), full_parse_sexp(*snap->language, *snap->text)) << "tree-sitter changed its recovery";
}

TEST(DocumentStore, UnknownLanguageHasNoTree) {
  DocumentStore store;
  ASSERT_TRUE(store.open("file:///w/notes.txt", "plaintext", 1, "hello").ok());
  auto snap = store.snapshot("file:///w/notes.txt");
  EXPECT_EQ(snap->tree, nullptr);
  EXPECT_EQ(snap->language, nullptr);
}

// Random edits (including non-ASCII insertions) applied incrementally must give the same tree as parsing the
// final text from scratch, and the same text as applying them to a plain string.
class IncrementalReparse : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(IncrementalReparse, EqualsFullParse) {
  auto [lang_id, source] = GetParam();
  std::string uri = std::string("file:///w/t.") + lang_id;
  DocumentStore store;
  ASSERT_TRUE(store.open(uri, lang_id, 1, source).ok());
  std::string expected = source;
  std::mt19937 rng(42);
  const std::vector<std::string> inserts = {"x", "(", ")", "\n", "  ", "ü", "😀", "foo(bar)", "{", "}", ";",
                                            "\"", "return 1", "中文"};
  for (int step = 0; step < 200; ++step) {
    auto enc = PositionEncoding::kUtf16;
    size_t a = rng() % (expected.size() + 1), b = rng() % (expected.size() + 1);
    if (a > b) std::swap(a, b);
    if (b - a > 8) b = a + rng() % 8;
    // Keep offsets on code point boundaries so that the expected string is well-formed.
    auto boundary = [&](size_t o) {
      while (o < expected.size() && (static_cast<unsigned char>(expected[o]) & 0xC0) == 0x80) ++o;
      return o;
    };
    if (step % 10 == 0) a = b = 0;  // edits at the very start
    a = boundary(a);
    b = std::max(a, boundary(b));
    std::string ins = rng() % 3 == 0 ? "" : inserts[rng() % inserts.size()];
    Position pa = position_of(expected, a, enc), pb = position_of(expected, b, enc);
    ASSERT_TRUE(store.change(uri, step + 2, {ContentChange{Range{pa, pb}, ins}}, enc).ok());
    expected.replace(a, b - a, ins);
    auto snap = store.snapshot(uri);
    ASSERT_EQ(*snap->text, expected) << "step " << step;
    ASSERT_EQ(sexp(snap->tree), full_parse_sexp(*snap->language, expected)) << lang_id << " step " << step;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Languages, IncrementalReparse,
    ::testing::Values(
        std::make_pair("python", "import os\n\nclass A:\n    def f(self, x):\n        return x + 1\n\nprint(A().f(2))\n"),
        std::make_pair("cpp", "#include <vector>\nstruct S { int f(int x) { return x * 2; } };\nint main() {\n  S s;\n"
                              "  return s.f(3);\n}\n"),
        std::make_pair("rust", "fn main() {\n    let v = vec![1, 2];\n    println!(\"{}\", v.len());\n}\n"),
        std::make_pair("typescript", "export function add(a: number, b: number): number {\n  return a + b;\n}\n")),
    [](const auto& info) { return std::string(info.param.first); });

}  // namespace
}  // namespace latent::lsp
