#include "lsp/languages.h"

#include <gtest/gtest.h>
#include <tree_sitter/api.h>

namespace latent::lsp {
namespace {

TEST(Languages, EveryGrammarLoadsAndParses) {
  for (const auto& l : languages()) {
    TSParser* parser = ts_parser_new();
    ASSERT_TRUE(ts_parser_set_language(parser, l.grammar())) << l.id << ": grammar ABI not accepted";
    const char* src = "x";
    TSTree* tree = ts_parser_parse_string(parser, nullptr, src, 1);
    ASSERT_NE(tree, nullptr) << l.id;
    ts_tree_delete(tree);
    ts_parser_delete(parser);
  }
}

TEST(Languages, LookupByIdAndPath) {
  ASSERT_NE(language_by_id("python"), nullptr);
  EXPECT_EQ(language_by_path("/a/b/c.tsx")->id, "typescriptreact");
  EXPECT_EQ(language_by_path("src/main.rs")->id, "rust");
  EXPECT_EQ(language_by_path("Makefile"), nullptr);
  EXPECT_EQ(language_by_path("dir.d/file"), nullptr);
}

}  // namespace
}  // namespace latent::lsp
