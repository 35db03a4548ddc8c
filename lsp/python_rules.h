#pragma once
// Forms that CPython's parser refuses and tree-sitter's Python grammar accepts (it also parses Python 2 and is
// lenient about argument order). Found by judging shown completions with CPython's `ast`
// (bench/syntax_bench.py reports the judge's messages); each is one rule here:
//   positional_after_keyword   f(a=1, 2), f(**k, 2), f(**k, *a)
//   parameter_order            def f(a=1, b), def f(**k, a), def f(*, **k)
//   python2_statement          print 'x', exec 'x', except E, e:, a <> b, `x`
//   bad_literal                0777, 10L, ur'x'
//   bad_target                 del f(), (a, b) += 1
#include <string_view>

#include <tree_sitter/api.h>

namespace latent::lsp {

// The rule `node` breaks (one of the names above) and, in `*at`, the node to blame; null when it breaks none.
// Looks at `node` and its direct children only; `text` is the parsed text (for literals).
const char* python_refused_form(TSNode node, std::string_view text, TSNode* at);

}  // namespace latent::lsp
