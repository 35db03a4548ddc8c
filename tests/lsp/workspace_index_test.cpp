#include "lsp/workspace_index.h"

#include <gtest/gtest.h>

#include "lsp/gitignore.h"
#include "test_files.h"

namespace latent::lsp {
namespace {

TEST(GitIgnore, Patterns) {
  GitIgnore g;
  g.add("", "# comment\n*.log\nbuild/\n/top.py\ndocs/**/gen\n!keep.log\n");
  g.add("sub", "local.py\n");
  EXPECT_TRUE(g.ignored("a.log", false));
  EXPECT_TRUE(g.ignored("x/y/a.log", false));
  EXPECT_FALSE(g.ignored("keep.log", false));
  EXPECT_TRUE(g.ignored("build", true));
  EXPECT_FALSE(g.ignored("build", false));  // dir-only pattern
  EXPECT_TRUE(g.ignored("top.py", false));
  EXPECT_FALSE(g.ignored("x/top.py", false));  // anchored to the root
  EXPECT_TRUE(g.ignored("docs/a/b/gen", true));
  EXPECT_TRUE(g.ignored("docs/gen", true));
  EXPECT_TRUE(g.ignored("sub/local.py", false));
  EXPECT_FALSE(g.ignored("local.py", false));  // only below sub/
}

TEST(WorkspaceIndex, WalksRespectingGitignoreSkippingBinaryAndHuge) {
  testing::TempTree t;
  t.write(".gitignore", "ignored/\n*.gen.py\n");
  t.write("src/util.py", "def add(a, b):\n    return a + b\n\nclass Vec:\n    def dot(self, o):\n        pass\n");
  t.write("src/x.gen.py", "def generated():\n    pass\n");
  t.write("ignored/skip.py", "def skipped():\n    pass\n");
  t.write("lib/bin.py", std::string("def binary():\n\0\0\0", 18));
  t.write("lib/huge.py", "def huge():\n    pass\n" + std::string(2 << 20, '#'));
  t.write("lib/sub/.gitignore", "private.c\n");
  t.write("lib/sub/private.c", "int private_fn(void) { return 0; }\n");
  t.write("lib/sub/public.c", "int public_fn(void) { return 1; }\n");
  t.write("notes.txt", "def not_code():\n");
  WorkspaceIndex index(IndexOptions{.background = false});
  IndexStats s = index.index_now(t.root());
  EXPECT_EQ(s.files, 2u);  // util.py, public.c
  EXPECT_EQ(s.skipped_binary, 1u);
  EXPECT_EQ(s.skipped_large, 1u);
  EXPECT_GE(s.skipped_ignored, 3u);  // ignored/, x.gen.py, private.c
  ASSERT_EQ(index.lookup("add").size(), 1u);
  EXPECT_EQ(index.lookup("add")[0].signature, "def add(a, b):");
  EXPECT_EQ(index.lookup("dot")[0].kind, SymbolKind::kMethod);
  EXPECT_EQ(index.lookup("public_fn").size(), 1u);
  EXPECT_TRUE(index.lookup("generated").empty());
  EXPECT_TRUE(index.lookup("skipped").empty());
  EXPECT_TRUE(index.lookup("private_fn").empty());
  EXPECT_TRUE(index.lookup("binary").empty());
  EXPECT_TRUE(index.lookup("huge").empty());
}

TEST(WorkspaceIndex, BackgroundWalkAndFileEvents) {
  testing::TempTree t;
  std::string util = t.write("util.py", "def first():\n    pass\n");
  WorkspaceIndex index;
  index.add_root(t.root());
  ASSERT_TRUE(index.wait_idle(10000));
  EXPECT_EQ(index.lookup("first").size(), 1u);
  EXPECT_EQ(index.relative_path(util), "util.py");
  t.write("util.py", "def second():\n    pass\n");
  index.file_changed(util);
  ASSERT_TRUE(index.wait_idle(10000));
  EXPECT_TRUE(index.lookup("first").empty());
  EXPECT_EQ(index.lookup("second").size(), 1u);
  index.file_deleted(util);
  EXPECT_TRUE(index.lookup("second").empty());
}

}  // namespace
}  // namespace latent::lsp
