#include "lsp/syntax_check.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace latent::lsp {
namespace {

bool has_rule(const SyntaxVerdict& v, const std::string& rule) {
  return std::find(v.rules.begin(), v.rules.end(), rule) != v.rules.end();
}

SyntaxVerdict check(const char* language, const std::string& prefix, const std::string& completion,
                    const std::string& suffix, bool final = true) {
  SyntaxChecker checker(language_by_id(language), prefix, suffix);
  EXPECT_TRUE(checker.has_grammar());
  return checker.check(completion, final);
}

const std::string kPyPrefix = "import os\n\n\ndef add(a, b):\n";
const std::string kPySuffix = "\n\ndef other():\n    return 1\n";

TEST(SyntaxCheckPython, KeepsACompletionThatParses) {
  auto v = check("python", kPyPrefix, "    total = a + b\n    return total\n", kPySuffix);
  EXPECT_EQ(v.action, SyntaxAction::kKept) << v.reason;
  EXPECT_EQ(v.text, "    total = a + b\n    return total");
  EXPECT_EQ(v.errors_without, 1);  // the empty body (tree-sitter accepts it, Python does not)
  EXPECT_EQ(v.errors_with, 0);
  EXPECT_TRUE(v.has_code);
  EXPECT_TRUE(v.rules.empty());
}

TEST(SyntaxCheckPython, CutsBackToTheLastLineThatParses) {
  auto v = check("python", kPyPrefix, "    total = a + b\n    return total\n    for i in range(", kPySuffix);
  EXPECT_EQ(v.action, SyntaxAction::kCut) << v.reason;
  EXPECT_EQ(v.text, "    total = a + b\n    return total");
  EXPECT_TRUE(has_rule(v, "parse_error"));
  EXPECT_EQ(v.errors_with, 0);
  // A block opener whose body never came: cut before it.
  v = check("python", kPyPrefix, "    if a > b:\n        return a\n    elif a < b:\n", kPySuffix);
  EXPECT_EQ(v.text, "    if a > b:\n        return a");
  EXPECT_EQ(v.errors_with, 0);
}

TEST(SyntaxCheckPython, RefusesWhatOnlyAddsErrors) {
  auto v = check("python", kPyPrefix, "    return a +* b )\n", kPySuffix);
  EXPECT_EQ(v.action, SyntaxAction::kRefused) << v.reason;
  EXPECT_EQ(v.text, "");
  EXPECT_TRUE(has_rule(v, "refused_parse_error"));
  // In a file that parses, a completion that breaks it is refused too.
  v = check("python", "x = 1\n", "y = = 2\n", "z = 3\n");
  EXPECT_EQ(v.errors_without, 0);
  EXPECT_EQ(v.action, SyntaxAction::kRefused) << v.reason;
}

TEST(SyntaxCheckPython, ClosesAnOpenDocstringAndBrackets) {
  auto v = check("python", kPyPrefix, "    \"\"\"Return the sum of a and b.\n\n    The sum is", kPySuffix);
  EXPECT_EQ(v.text, "    \"\"\"Return the sum of a and b.\n\n    The sum is\"\"\"");
  EXPECT_EQ(v.closer, "\"\"\"");
  EXPECT_TRUE(has_rule(v, "closed_string"));
  EXPECT_FALSE(v.has_code);  // a docstring only
  v = check("python", kPyPrefix, "    return max(a, abs(b", kPySuffix);
  EXPECT_EQ(v.text, "    return max(a, abs(b))");
  EXPECT_TRUE(has_rule(v, "closed_brackets"));
  EXPECT_EQ(v.errors_with, 0);
}

TEST(SyntaxCheckPython, StopsLoops) {
  auto v = check("python", kPyPrefix,
                 "    if a:\n        b = a[1:]\n    if a:\n        b = a[1:]\n    if a:\n        b = a[1:]\n", kPySuffix);
  EXPECT_EQ(v.text, "    if a:\n        b = a[1:]");
  EXPECT_TRUE(has_rule(v, "repeated_lines"));
  EXPECT_EQ(v.action, SyntaxAction::kCut);
  // A phrase going round in a docstring: cut at its third time, then closed.
  v = check("python", kPyPrefix,
            "    \"\"\"Return the list of the list of the list of the list of strings.\n", kPySuffix);
  EXPECT_TRUE(has_rule(v, "repeated_ngram")) << v.reason;
  EXPECT_EQ(v.text, "    \"\"\"Return the list of the list of\"\"\"");
  // The same statement a third time, not adjacent.
  v = check("python", kPyPrefix,
            "    x = compute(a)\n    y = 1\n    x = compute(a)\n    z = 2\n    x = compute(a)\n    return x\n", kPySuffix);
  EXPECT_TRUE(has_rule(v, "repeated_line")) << v.reason;
  EXPECT_EQ(v.text, "    x = compute(a)\n    y = 1\n    x = compute(a)\n    z = 2");
}

TEST(SyntaxCheckPython, StopsARunawayDocstringAfterItsSummary) {
  std::string doc = "    \"\"\"Return the sum.\n";
  for (int i = 0; i < 10; ++i) doc += "    more words about item " + std::to_string(i) + " here\n";
  auto v = check("python", kPyPrefix, doc, kPySuffix);
  EXPECT_TRUE(has_rule(v, "runaway_docstring")) << v.reason;
  EXPECT_EQ(v.text, "    \"\"\"Return the sum.\"\"\"");
  EXPECT_EQ(v.errors_with, 0);
}

TEST(SyntaxCheckPython, StreamingChecksWholeLinesOnly) {
  SyntaxChecker checker(language_by_id("python"), kPyPrefix, kPySuffix);
  auto v = checker.check("    total = a + b\n    return to", /*final=*/false);
  EXPECT_EQ(v.text, "    total = a + b");
  v = checker.check("    tot", false);
  EXPECT_EQ(v.text, "");
}

TEST(SyntaxCheckPython, AnErrorElsewhereInTheFileIsNotTheCompletions) {
  // The file has an error of its own further down; a good completion is kept with it.
  SyntaxChecker checker(language_by_id("python"), kPyPrefix, "\n\ndef other():\n    return )\n");
  EXPECT_EQ(checker.errors_without(), 2);  // the empty body, and `return )`
  auto v = checker.check("    return a + b\n", true);
  EXPECT_NE(v.action, SyntaxAction::kRefused) << v.reason;
  EXPECT_EQ(v.text, "    return a + b");
}

TEST(SyntaxCheckPython, AWindowThatStartsInsideABlock) {
  // What an HTTP client sends: the last lines before the cursor, starting deep inside a class.
  std::string prefix = "            raise KeyError(name)\n\n        self.key = 1\n\n    @staticmethod\n    def from_json(data):\n";
  std::string suffix = "\n    @property\n    def key_type(self):\n        return 2\n";
  // A sibling method instead of a body leaves from_json empty: refused.
  auto v = check("python", prefix, "    def __reduce__(self):\n        return 1\n", suffix);
  EXPECT_EQ(v.action, SyntaxAction::kRefused) << v.reason;
  v = check("python", prefix, "        return data\n", suffix);
  EXPECT_EQ(v.action, SyntaxAction::kKept) << v.reason;
  EXPECT_EQ(v.text, "        return data");
}

TEST(SyntaxCheckPython, RealCodeIsNotALoop) {
  // From a hand-written module: branches and returns that look alike but are not a loop.
  const char* body =
      "    if not name:\n        raise ValueError('name: expected text, found nothing')\n"
      "    parts = name.split('.')\n    if len(parts) == 1:\n        return parts[0], None\n"
      "    if len(parts) == 2:\n        return parts[0], parts[1]\n    head, tail = parts[0], parts[1:]\n"
      "    for part in tail:\n        if not part:\n            return head, None\n"
      "    return head, '.'.join(tail)\n";
  auto v = check("python", "def split(name):\n", body, "\n");
  EXPECT_EQ(v.action, SyntaxAction::kKept) << v.reason;
}

TEST(SyntaxCheckPython, WithoutAGrammarOnlyLoopsAreStopped) {
  SyntaxChecker checker(nullptr, "a\n", "b\n");
  EXPECT_FALSE(checker.has_grammar());
  auto v = checker.check("some text\nsome text\n", true);
  EXPECT_EQ(v.text, "some text");
  EXPECT_EQ(v.action, SyntaxAction::kCut);
  v = checker.check("anything ( goes", true);
  EXPECT_EQ(v.action, SyntaxAction::kUnchecked);
  EXPECT_EQ(v.text, "anything ( goes");
}

const std::string kJsPrefix = "const fs = require('fs');\n\nfunction add(a, b) {\n";
const std::string kJsSuffix = "}\n\nmodule.exports = { add };\n";

TEST(SyntaxCheckJavaScript, KeepsCutsRefusesAndStopsLoops) {
  auto v = check("javascript", kJsPrefix, "  const s = a + b;\n  return s;\n", kJsSuffix);
  EXPECT_EQ(v.action, SyntaxAction::kKept) << v.reason;
  EXPECT_EQ(v.errors_without, 0);
  EXPECT_EQ(v.text, "  const s = a + b;\n  return s;");

  v = check("javascript", kJsPrefix, "  const s = a + b;\n  return s;\n  if (s > 1 {\n", kJsSuffix);
  EXPECT_EQ(v.action, SyntaxAction::kCut) << v.reason;
  EXPECT_EQ(v.text, "  const s = a + b;\n  return s;");
  EXPECT_TRUE(has_rule(v, "parse_error"));

  v = check("javascript", kJsPrefix, "  return a b c );\n", kJsSuffix);
  EXPECT_EQ(v.action, SyntaxAction::kRefused) << v.reason;
  EXPECT_EQ(v.text, "");

  v = check("javascript", kJsPrefix, "  a += b;\n  a += b;\n  a += b;\n", kJsSuffix);
  EXPECT_EQ(v.text, "  a += b;");
  EXPECT_TRUE(has_rule(v, "repeated_lines"));

  v = check("javascript", kJsPrefix, "  return Math.max(a, Math.abs(b", kJsSuffix);
  EXPECT_EQ(v.text, "  return Math.max(a, Math.abs(b))");
  EXPECT_EQ(v.errors_with, 0);
}

TEST(SyntaxCheckJavaScript, AWindowWithErrorsOfItsOwn) {
  // Methods without their class: the window has errors; a completion may not trade them for its own.
  std::string prefix = "      log.warn('config', 'unsupported.')\n    }\n  }\n\n  async execWorkspaces (args) {\n";
  std::string suffix = "  }\n}\n\nmodule.exports = ArboristCmd\n";
  SyntaxChecker checker(language_by_id("javascript"), prefix, suffix);
  EXPECT_GT(checker.errors_without(), 0);
  auto v = checker.check("    \"exec_as_external-package\".\n", true);
  EXPECT_EQ(v.action, SyntaxAction::kRefused) << v.reason;
}

TEST(SyntaxCheckGo, CutsBackToWhatParses) {
  std::string prefix = "package main\n\nfunc add(a, b int) int {\n";
  std::string suffix = "}\n";
  auto v = check("go", prefix, "\ts := a + b\n\treturn s\n\tfor i := range {\n", suffix);
  EXPECT_EQ(v.text, "\ts := a + b\n\treturn s");
  EXPECT_EQ(v.errors_with, 0);
}

TEST(SyntaxMode, Names) {
  SyntaxMode m;
  EXPECT_TRUE(parse_syntax_mode("rank", &m));
  EXPECT_EQ(m, SyntaxMode::kRank);
  EXPECT_FALSE(parse_syntax_mode("on", &m));
  EXPECT_STREQ(syntax_mode_name(SyntaxMode::kTrim), "trim");
}

TEST(SyntaxStats, CountsActionsAndRules) {
  SyntaxStats stats;
  auto v = check("python", kPyPrefix, "    a += 1\n    a += 1\n", kPySuffix);
  stats.record(v);
  auto s = stats.snapshot();
  EXPECT_EQ(s.actions["cut"], 1u);
  EXPECT_EQ(s.rules["repeated_lines"], 1u);
  EXPECT_GT(s.parses, 0u);
}

}  // namespace
}  // namespace latent::lsp
