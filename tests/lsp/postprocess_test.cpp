#include "lsp/postprocess.h"

#include <gtest/gtest.h>

namespace latent::lsp {
namespace {

std::string pp(const std::string& raw, const std::string& line_prefix, const std::string& suffix) {
  return postprocess_completion(raw, line_prefix, suffix).text;
}

TEST(Postprocess, CutsAtPythonBlockEnd) {
  auto r = postprocess_completion("return a + b\n\ndef other():\n    pass\n", "    ", "\n");
  EXPECT_EQ(r.text, "return a + b");
  EXPECT_TRUE(r.complete);
  // After a header line, the body is kept and the next top-level statement ends it.
  EXPECT_EQ(pp("\n    x = 1\n    return x\nprint(f())\n", "def f():", "\n"), "\n    x = 1\n    return x");
}

TEST(Postprocess, NeverRepeatsTheSuffix) {
  // The closing parenthesis is already after the cursor.
  EXPECT_EQ(pp("a, b)", "print(", ")\n"), "a, b");
  // The next line of the suffix is not generated again.
  EXPECT_EQ(pp("x = 1\n    return x\n", "    ", "\n    return x\n"), "x = 1");
  // The rest of the line repeated at the end of the completion.
  EXPECT_EQ(pp("name\")", "print(\"", "\")\n"), "name");
}

TEST(Postprocess, BracesCloseTheBlockWhenTheSuffixDoesNot) {
  // At the end of a file: the closing brace is kept, then the completion ends.
  EXPECT_EQ(pp("\n  return 1;\n}\n\nint g() {\n", "int f() {", ""), "\n  return 1;\n}");
  // The suffix closes it already: stop before.
  EXPECT_EQ(pp("\n  return 1;\n}\n", "int f() {", "\n}\n"), "\n  return 1;");
}

TEST(Postprocess, KeepsBracketsBalanced) {
  // A multi-line completion that leaves a bracket open is cut back to its last balanced line.
  EXPECT_EQ(pp("x = 1\ny = f(\n  2,\n", "", ""), "x = 1");
  // Brackets inside strings do not count.
  EXPECT_EQ(pp("s = \"(\"\nt = 2\n", "", ""), "s = \"(\"\nt = 2");
  // Mismatched closer: the model went astray.
  EXPECT_EQ(pp("f(a]", "", ""), "f(a");
}

TEST(Postprocess, SingleLineWhenTextFollowsOnTheLine) {
  EXPECT_EQ(pp("foo\nbar\n", "x = ", " + 1\n"), "foo");
}

}  // namespace
}  // namespace latent::lsp
