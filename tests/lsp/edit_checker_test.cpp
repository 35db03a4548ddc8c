#include "lsp/agent/edit_checker.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <tree_sitter/api.h>

#include <filesystem>

#include "lsp/agent/symbol_targets.h"
#include "lsp/agent/workspace_files.h"
#include "tests/lsp/test_files.h"

namespace latent::lsp::agent {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const char* kPy =
    "import os\n"
    "\n"
    "class Outer:\n"
    "    @staticmethod\n"
    "    @cache\n"
    "    def inner(x):\n"
    "        return x + 1\n"
    "\n"
    "    def other(self):\n"
    "        return 2\n"
    "\n"
    "def inner(y):\n"
    "    return y\n";

EditOutcome check(const std::string& json, std::string_view text, const char* lang = "python",
                  CurrentVersion v = {std::nullopt, ""}) {
  EditRequest r;
  auto e = parse_edit_request(Json::parse(json), &r);
  if (!e.ok()) return e;
  if (v.hash.empty()) v.hash = content_version(text);
  return check_edit(r, text, language_by_id(lang), v);
}

TEST(EditChecker, SymbolRangeIncludesDecoratorsAndQualifies) {
  auto o = check(R"({"path":"a.py","symbol":"Outer.inner","new":"def inner(x):\n        return x"})", kPy);
  ASSERT_TRUE(o.ok()) << o.code << ": " << o.message;
  std::string text = kPy;
  EXPECT_EQ(text.substr(o.start_byte, o.end_byte - o.start_byte),
            "@staticmethod\n    @cache\n    def inner(x):\n        return x + 1");
  EXPECT_EQ(o.line, 3u);
  EXPECT_EQ(o.end_line, 6u);
  EXPECT_EQ(o.result, text.substr(0, o.start_byte) + "def inner(x):\n        return x" + text.substr(o.end_byte));
  EXPECT_EQ(o.errors_before, 0);
  EXPECT_EQ(o.errors_after, 0);
}

TEST(EditChecker, BareNameThatIsDefinedTwiceIsAmbiguous) {
  auto o = check(R"({"path":"a.py","symbol":"inner","new":"pass"})", kPy);
  EXPECT_EQ(o.code, "ambiguous");
  EXPECT_NE(o.message.find("Outer.inner (method, lines 4-7)"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("inner (function, lines 12-13)"), std::string::npos) << o.message;
  auto top = check(R"({"path":"a.py","symbol":"other","new":"def other(self):\n        return 3"})", kPy);
  EXPECT_TRUE(top.ok()) << top.message;  // unique as a suffix
}

TEST(EditChecker, UnknownSymbolListsTheDefinitions) {
  auto o = check(R"({"path":"a.py","symbol":"Outer.missing","new":"x"})", kPy);
  EXPECT_EQ(o.code, "not_found");
  EXPECT_NE(o.message.find("Outer.inner, Outer.other, inner"), std::string::npos) << o.message;
}

TEST(EditChecker, OldMustOccurExactlyOnce) {
  auto twice = check(R"({"path":"a.py","old":"return","new":"yield"})", kPy);
  EXPECT_EQ(twice.code, "ambiguous");
  EXPECT_NE(twice.message.find("occurs 3 times"), std::string::npos) << twice.message;
  EXPECT_NE(twice.message.find("lines 7, 10, 13"), std::string::npos) << twice.message;
  auto none = check(R"({"path":"a.py","old":"return x + 2","new":"y"})", kPy);
  EXPECT_EQ(none.code, "not_found");
  EXPECT_NE(none.message.find("occurs 0 times"), std::string::npos);
  auto indent = check(R"({"path":"a.py","old":"def other(self):\n    return 2","new":"y"})", kPy);
  EXPECT_EQ(indent.code, "not_found");
  EXPECT_NE(indent.message.find("at line 9"), std::string::npos) << indent.message;
  auto once = check(R"({"path":"a.py","old":"return 2","new":"return 3"})", kPy);
  ASSERT_TRUE(once.ok()) << once.message;
  EXPECT_EQ(once.line, 9u);
}

TEST(EditChecker, OverlappingOccurrencesCountAsTwo) {
  auto o = check(R"({"path":"a.txt","old":"aa","new":"b"})", "aaa", "none");
  EXPECT_EQ(o.code, "ambiguous");
}

TEST(EditChecker, MoreSyntaxErrorsAreRefused) {
  auto o = check(R"({"path":"a.py","old":"return 2","new":"return (2"})", kPy);
  EXPECT_EQ(o.code, "syntax");
  EXPECT_NE(o.message.find("the original has 0"), std::string::npos) << o.message;
  // A file that is already broken may stay as broken, not get worse.
  std::string broken = std::string(kPy) + "def broken(:\n";
  auto same = check(R"({"path":"a.py","old":"return 2","new":"return 4"})", broken);
  EXPECT_TRUE(same.ok()) << same.message;
  EXPECT_GT(same.errors_before, 0);
  // C++ too.
  auto cpp = check(R"({"path":"a.cc","symbol":"S.f","new":"int f() { return 1 }"})",
                   "struct S {\n  int f() { return 0; }\n};\n", "cpp");
  EXPECT_EQ(cpp.code, "syntax") << cpp.message;
}

TEST(EditChecker, VersionsMustBeCurrent) {
  CurrentVersion open{7, ""};
  EXPECT_TRUE(check(R"({"path":"a.py","old":"return 2","new":"return 3","version":7})", kPy, "python", open).ok());
  auto stale = check(R"({"path":"a.py","old":"return 2","new":"return 3","version":6})", kPy, "python", open);
  EXPECT_EQ(stale.code, "stale");
  EXPECT_NE(stale.message.find("expected version 6, found version 7"), std::string::npos) << stale.message;
  auto closed = check(R"({"path":"a.py","old":"return 2","new":"return 3","version":6})", kPy);
  EXPECT_EQ(closed.code, "stale");
  std::string h = content_version(kPy);
  EXPECT_TRUE(check(R"({"path":"a.py","old":"return 2","new":"return 3","version":")" + h + "\"}", kPy).ok());
  EXPECT_EQ(check(R"({"path":"a.py","old":"return 2","new":"return 3","version":"h:0"})", kPy).code, "stale");
}

TEST(EditChecker, MalformedRequestsNameTheField) {
  EXPECT_EQ(check(R"([1])", kPy).code, "malformed");
  auto both = check(R"({"path":"a","symbol":"x","old":"y","new":""})", kPy);
  EXPECT_EQ(both.code, "malformed");
  EXPECT_NE(both.message.find("both"), std::string::npos);
  EXPECT_NE(check(R"({"path":"a","old":"y"})", kPy).message.find("missing \"new\""), std::string::npos);
  EXPECT_NE(check(R"({"path":"a","old":1,"new":""})", kPy).message.find("expected a string, found number"),
            std::string::npos);
  EXPECT_NE(check(R"({"path":"a","old_text":"x","new":""})", kPy).message.find("unknown field 'old_text'"),
            std::string::npos);
  EXPECT_EQ(check(R"({"path":"a","symbol":"a..b","new":""})", kPy).code, "malformed");
  EXPECT_EQ(check(R"x({"path":"a","symbol":"$(rm -rf /)","new":""})x", kPy).code, "malformed");
  EXPECT_EQ(check(R"({"path":"a","symbol":")" + std::string(300, 'A') + R"(","new":""})", kPy).code, "malformed");
  EXPECT_EQ(check(R"({"path":"a.py","symbol":"Outer.café","new":""})", kPy).code, "not_found");  // plausible, absent
  EXPECT_EQ(check(R"({"path":"a","old":"x","new":"","version":1.5})", kPy).code, "malformed");
  // Versions beyond 32 bits, the largest an unsigned literal (2^64 - 1, which get<int64_t> would wrap to -1).
  EXPECT_EQ(check(R"({"path":"a","old":"x","new":"","version":4294967296})", kPy).code, "malformed");
  const auto huge = check(R"({"path":"a","old":"x","new":"","version":18446744073709551615})", kPy);
  EXPECT_EQ(huge.code, "malformed");
  EXPECT_NE(huge.message.find("found 18446744073709551615"), std::string::npos) << huge.message;
}

TEST(SymbolTargets, CppOutOfLineRustAttributesAndTypescriptDecorators) {
  auto targets_of = [](const char* lang, const std::string& text) {
    TSParser* p = ts_parser_new();
    ts_parser_set_language(p, language_by_id(lang)->grammar());
    TSTree* t = ts_parser_parse_string(p, nullptr, text.data(), static_cast<uint32_t>(text.size()));
    auto out = symbol_targets(*language_by_id(lang), t, text);
    ts_tree_delete(t);
    ts_parser_delete(p);
    return out;
  };
  std::string cpp = "struct Point {\n  int norm() const;\n};\nint Point::norm() const { return 0; }\n";
  auto c = targets_of("cpp", cpp);
  auto m = match_symbol(c, split_qualified("Point::norm"));
  ASSERT_EQ(m.size(), 2u);  // the declaration and the out-of-line definition
  std::string rs = "#[derive(Debug)]\n#[repr(C)]\nstruct P { x: i32 }\nimpl P {\n    #[inline]\n    fn get(&self) -> i32 { self.x }\n}\n";
  auto r = targets_of("rust", rs);
  auto p = match_symbol(r, {"P"});
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0]->start_byte, 0u);
  auto get = match_symbol(r, {"get"});
  ASSERT_EQ(get.size(), 1u);
  EXPECT_EQ(rs.substr(get[0]->start_byte, 9), "#[inline]");
  std::string ts = "@Component({})\nexport class App {\n  @Input() name = '';\n  @HostListener('x')\n  go(): void {}\n}\n";
  auto t = targets_of("typescript", ts);
  auto app = match_symbol(t, {"App"});
  ASSERT_EQ(app.size(), 1u);
  EXPECT_EQ(app[0]->start_byte, 0u);
  auto go = match_symbol(t, split_qualified("App.go"));
  ASSERT_EQ(go.size(), 1u);
  EXPECT_EQ(ts.substr(go[0]->start_byte, 14), "@HostListener(");
}

class EditFiles : public ::testing::Test {
 protected:
  testing::TempTree tree;
  std::string outside_dir = tree.root() + "_outside";
  void SetUp() override { fs::create_directories(outside_dir); }
  void TearDown() override { fs::remove_all(outside_dir); }
  std::string read(const std::string& p) { return *read_text_file(p); }
};

TEST_F(EditFiles, AppliesAtomicallyAndKeepsTheMode) {
  std::string f = tree.write("src/a.py", kPy);
  ::chmod(f.c_str(), 0750);
  auto o = apply_edit_json({tree.root()}, R"({"path":"src/a.py","old":"return 2","new":"return 3"})");
  ASSERT_TRUE(o.ok()) << o.message;
  EXPECT_EQ(read(f), std::string(kPy).replace(std::string(kPy).find("return 2"), 8, "return 3"));
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);
  for (auto& e : fs::directory_iterator(tree.root() + "/src")) EXPECT_EQ(e.path().filename(), "a.py");  // no temp left
}

TEST_F(EditFiles, PathsAreConfinedToTheRoot) {
  tree.write("in.py", kPy);
  std::string secret = outside_dir + "/secret.py";
  std::ofstream(secret) << kPy;
  fs::create_symlink(secret, tree.root() + "/link.py");
  fs::create_symlink(outside_dir, tree.root() + "/linkdir");
  fs::create_symlink(outside_dir + "/nothing.py", tree.root() + "/dangling.py");
  fs::create_symlink(tree.root() + "/in.py", tree.root() + "/inside_link.py");
  const char* outside[] = {"../x.py", "a/../../x.py", "link.py", "linkdir/secret.py", "dangling.py", "/etc/passwd"};
  for (const char* p : outside) {
    auto o = apply_edit_json({tree.root()}, Json{{"path", p}, {"old", "return 2"}, {"new", "return 9"}}.dump());
    EXPECT_EQ(o.code, "path") << p << ": " << o.message;
    EXPECT_NE(o.message.find("expected a path inside the workspace"), std::string::npos) << o.message;
  }
  EXPECT_EQ(read(secret), kPy);
  EXPECT_FALSE(fs::exists(outside_dir + "/nothing.py"));
  auto abs = confine_path({tree.root()}, tree.root() + "/in.py");
  ASSERT_TRUE(abs.ok());
  EXPECT_EQ(abs->relative, "in.py");
  // A symlink that stays inside is followed, and the file it names is edited (the link stays a link).
  auto o = apply_edit_json({tree.root()}, R"({"path":"inside_link.py","old":"return 2","new":"return 5"})");
  ASSERT_TRUE(o.ok()) << o.message;
  EXPECT_TRUE(fs::is_symlink(tree.root() + "/inside_link.py"));
  EXPECT_NE(read(tree.root() + "/in.py").find("return 5"), std::string::npos);
}

TEST_F(EditFiles, RefusalsLeaveTheFileUntouched) {
  std::string f = tree.write("a.py", kPy);
  tree.write("bin.py", std::string("x\0y", 3));
  fs::create_directories(tree.root() + "/dir.py");
  struct Case {
    std::string json, code;
  } cases[] = {
      {R"({"path":"a.py","old":"return","new":"x"})", "ambiguous"},
      {R"({"path":"a.py","old":"return 2","new":"return (2"})", "syntax"},
      {R"({"path":"a.py","old":"return 2","new":"x","version":3})", "stale"},
      {R"({"path":"missing.py","old":"a","new":"b"})", "not_found"},
      {R"({"path":"bin.py","old":"x","new":"z"})", "path"},
      {R"({"path":"dir.py","old":"x","new":"z"})", "path"},
      {R"({"path":"a.py","old":"return 2","new":"return 3")", "malformed"},
  };
  for (const auto& c : cases) {
    auto o = apply_edit_json({tree.root()}, c.json);
    EXPECT_EQ(o.code, c.code) << c.json << " -> " << o.message;
    EXPECT_EQ(outcome_json(o)["error"]["code"], c.code);
    EXPECT_EQ(read(f), kPy);
  }
}

}  // namespace
}  // namespace latent::lsp::agent
