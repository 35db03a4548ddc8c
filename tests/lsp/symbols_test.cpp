#include "lsp/symbols.h"

#include <gtest/gtest.h>
#include <tree_sitter/api.h>

#include <map>

namespace latent::lsp {
namespace {

struct Parsed {
  TSParser* parser = nullptr;
  TSTree* tree = nullptr;
  std::string text;
  const LanguageInfo* lang = nullptr;
  Parsed(const char* id, std::string src) : text(std::move(src)), lang(language_by_id(id)) {
    parser = ts_parser_new();
    ts_parser_set_language(parser, lang->grammar());
    tree = ts_parser_parse_string(parser, nullptr, text.data(), static_cast<uint32_t>(text.size()));
  }
  ~Parsed() {
    ts_tree_delete(tree);
    ts_parser_delete(parser);
  }
  std::map<std::string, Symbol> symbols() const {
    std::map<std::string, Symbol> out;
    for (auto& s : extract_symbols(*lang, tree, text, "f")) out[s.name] = s;
    return out;
  }
};

TEST(Symbols, EveryQueryCompiles) {
  Status st = check_symbol_queries();
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
}

TEST(Symbols, Python) {
  Parsed p("python", "import os\n\nclass Greeter(Base):\n    def greet(self, name: str) -> str:\n        return name\n\n"
                     "def helper(a, b=2):\n    pass\n");
  auto s = p.symbols();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s["Greeter"].kind, SymbolKind::kClass);
  EXPECT_EQ(s["Greeter"].signature, "class Greeter(Base):");
  EXPECT_EQ(s["greet"].kind, SymbolKind::kMethod);
  EXPECT_EQ(s["greet"].signature, "def greet(self, name: str) -> str:");
  EXPECT_EQ(s["greet"].line, 3u);
  EXPECT_EQ(s["helper"].kind, SymbolKind::kFunction);
  EXPECT_EQ(s["helper"].preview, "def helper(a, b=2):\n    pass");
}

TEST(Symbols, CppQualifiedAndStructs) {
  Parsed p("cpp", "namespace n {\nstruct Point { int x; int norm() const; };\nclass Box {};\n}\n"
                  "int n::Point::norm() const { return x; }\nusing Id = int;\nstatic int* make(int k) { return 0; }\n");
  auto s = p.symbols();
  EXPECT_EQ(s["Point"].kind, SymbolKind::kStruct);
  EXPECT_EQ(s["Box"].kind, SymbolKind::kClass);
  ASSERT_TRUE(s.count("norm"));
  EXPECT_EQ(s["Id"].kind, SymbolKind::kType);
  ASSERT_TRUE(s.count("make"));
  EXPECT_EQ(s["make"].signature, "static int* make(int k)");
}

TEST(Symbols, GoRustJavaTypescript) {
  EXPECT_TRUE(Parsed("go", "package m\ntype T struct{}\nfunc (t T) M() {}\nfunc F() int { return 1 }\n").symbols().count("M"));
  auto r = Parsed("rust", "struct S;\ntrait Tr { fn g(&self); }\nimpl S { fn new() -> S { S } }\nfn top() {}\n").symbols();
  EXPECT_EQ(r["S"].kind, SymbolKind::kStruct);
  EXPECT_EQ(r["new"].kind, SymbolKind::kMethod);
  EXPECT_EQ(r["top"].kind, SymbolKind::kFunction);
  auto j = Parsed("java", "class A { int f(int x) { return x; } A() {} }\n").symbols();
  EXPECT_EQ(j["f"].kind, SymbolKind::kMethod);
  auto t = Parsed("typescript", "interface I { a: number }\nexport const k = (x: number) => x;\n"
                                "class C { m(): void {} }\ntype U = string;\n").symbols();
  EXPECT_EQ(t["I"].kind, SymbolKind::kInterface);
  EXPECT_EQ(t["k"].kind, SymbolKind::kFunction);
  EXPECT_EQ(t["m"].kind, SymbolKind::kMethod);
  EXPECT_EQ(t["U"].kind, SymbolKind::kType);
}

TEST(Symbols, EnclosingScopesAndImports) {
  Parsed p("python", "import os\nfrom a import b\n\nclass K:\n    def m(self):\n        x = 1\n        return x\n");
  size_t cursor = p.text.find("return");
  auto scopes = enclosing_scopes(p.tree, p.text, static_cast<uint32_t>(cursor));
  ASSERT_EQ(scopes.size(), 2u);
  EXPECT_EQ(scopes[0].text, "class K:");
  EXPECT_EQ(scopes[1].text, "def m(self):");
  EXPECT_EQ(scopes[1].line, 4u);
  auto imps = imports(p.tree, p.text);
  ASSERT_EQ(imps.size(), 2u);
  EXPECT_EQ(imps[1].text, "from a import b");
}

}  // namespace
}  // namespace latent::lsp
