#include "lsp/syntax_check.h"

#include "lsp/postprocess.h"
#include "lsp/python_rules.h"

#include <tree_sitter/api.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <tuple>

namespace latent::lsp {
namespace {

std::string_view rstrip(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

TSPoint point_after(TSPoint at, std::string_view text) {
  size_t nl = text.rfind('\n');
  if (nl == std::string_view::npos) return {at.row, at.column + static_cast<uint32_t>(text.size())};
  uint32_t rows = 0;
  for (char c : text) rows += c == '\n';
  return {at.row + rows, static_cast<uint32_t>(text.size() - nl - 1)};
}

}  // namespace

struct ErrorNode {
  std::string_view type;  // ERROR, a MISSING node's type, or block (an empty Python block)
  bool missing = false;
  uint32_t start = 0, end = 0;
  bool operator==(const ErrorNode& o) const {
    return type == o.type && missing == o.missing && start == o.start && end == o.end;
  }
};

struct ErrorCount {
  int total = 0;
  int inside = 0;  // errors touching [lo, to]: the cursor's statement and the inserted text
  std::vector<ErrorNode> nodes;
};

namespace {

// Python's grammar accepts an empty block (`if x:` and then a dedent), which Python does not: a block with
// nothing but comments in it counts as an error. Only near the insertion ([lo, to]), so that the walk stays
// off the rest of the tree.
bool empty_block(TSNode node) {
  if (std::string_view(ts_node_type(node)) != "block") return false;
  uint32_t n = ts_node_named_child_count(node);
  for (uint32_t i = 0; i < n; ++i) {
    if (std::string_view(ts_node_type(ts_node_named_child(node, i))) != "comment") return false;
  }
  return true;
}

// Python's grammar also accepts two statements on one line with no `;` between them (`"text" name = 1`,
// `import a.b()`), which Python does not: a statement of a block or module that starts on the row where the
// sibling before it (a named node: a `;` is anonymous) ends counts as an error.
bool juxtaposed_statement(TSNode node) {
  TSNode parent = ts_node_parent(node);
  if (ts_node_is_null(parent) || !ts_node_is_named(node)) return false;
  const std::string_view pt = ts_node_type(parent);
  if (pt != "block" && pt != "module") return false;
  if (std::string_view(ts_node_type(node)) == "comment") return false;
  TSNode prev = ts_node_prev_sibling(node);
  if (ts_node_is_null(prev) || !ts_node_is_named(prev) || std::string_view(ts_node_type(prev)) == "comment") {
    return false;
  }
  return ts_node_end_point(prev).row == ts_node_start_point(node).row;
}

// ERROR + MISSING nodes (+ empty Python blocks near the insertion, statements juxtaposed on one line in it), descending only into subtrees that hold
// an error or overlap [lo, to] (a cursor: ts_node_child is linear in the index, so wide nodes would make a
// child loop quadratic).
// Python: also the forms CPython refuses that the grammar accepts (python_rules.h), in nodes near the insertion;
// `text` is what was parsed.
ErrorCount count_errors(const TSTree* tree, uint32_t lo, uint32_t from, uint32_t to, bool python,
                        std::string_view text) {
  ErrorCount n;
  TSNode root = ts_tree_root_node(tree);
  TSTreeCursor cur = ts_tree_cursor_new(root);
  for (;;) {
    TSNode node = ts_tree_cursor_current_node(&cur);
    uint32_t s = ts_node_start_byte(node), e = ts_node_end_byte(node);
    bool err = ts_node_has_error(node);
    bool near = s <= to && e >= lo;
    bool counted = err && (ts_node_is_error(node) || ts_node_is_missing(node));
    counted |= python && near && s >= lo && empty_block(node);
    counted |= python && s >= std::max(lo, from) && s < to && juxtaposed_statement(node);  // of the insertion
    if (counted) {
      ++n.total;
      if (to > from && s <= to && e >= lo) ++n.inside;
      n.nodes.push_back({ts_node_type(node), ts_node_is_missing(node), s, e});
    } else if (python && near) {
      TSNode at;
      if (const char* rule = python_refused_form(node, text, &at)) {
        const uint32_t as = ts_node_start_byte(at), ae = ts_node_end_byte(at);
        ++n.total;
        if (to > from && as <= to && ae >= lo) ++n.inside;
        n.nodes.push_back({rule, false, as, ae});
      }
    }
    if ((err || near) && ts_tree_cursor_goto_first_child(&cur)) continue;
    bool up = false;
    while (!ts_tree_cursor_goto_next_sibling(&cur)) {
      if (!ts_tree_cursor_goto_parent(&cur)) {
        up = true;
        break;
      }
    }
    if (up) break;
  }
  ts_tree_cursor_delete(&cur);
  return n;
}

// A Python window that starts inside a block (an HTTP client's last N lines) confuses the grammar's indent
// tracking; `if 1:` headers at each smaller indentation the window uses open the blocks it sits in.
std::string python_window_header(std::string_view prefix, std::string_view suffix) {
  size_t first = std::string_view::npos;
  std::vector<size_t> levels = {0};
  for (std::string_view text : {prefix, suffix}) {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
      size_t ind = line.find_first_not_of(" \t");
      if (ind != std::string_view::npos && line[ind] != '\r') {
        if (first == std::string_view::npos) first = ind;
        if (ind < first && std::find(levels.begin(), levels.end(), ind) == levels.end()) levels.push_back(ind);
      }
      if (nl == std::string_view::npos) break;
      pos = nl + 1;
    }
  }
  if (first == std::string_view::npos || first == 0) return "";
  std::sort(levels.begin(), levels.end());
  std::string header;
  for (size_t l : levels) header += std::string(l, ' ') + "if 1:\n";
  return header;
}

bool top_level_start(std::string_view line) {
  for (std::string_view k : {"def ", "async def ", "class ", "@"}) {
    if (line.substr(0, k.size()) == k) return true;
  }
  return false;
}

bool blank_line(std::string_view rest) {
  size_t n = rest.find_first_not_of(" \t\r");
  return n == std::string_view::npos || rest[n] == '\n';
}

// A Python window (an HTTP client's N lines around the cursor) may start or end inside a docstring, which turns
// the window's code into string and its strings into code: a completion's errors would hide in the mess. The
// check uses the window from the `def`/`class` that holds the cursor (the last one before it that no later line
// is indented less than; with its decorators) to the next `def`/`class`/decorator at its indentation or less,
// when there are such lines: nothing outside that statement changes how it parses, except an open string or
// bracket, which the check catches at the end of the text anyway. python_window_header() then opens the blocks
// it sits in.
void anchor_python_window(std::string* prefix, std::string* suffix) {
  std::vector<size_t> starts = {0};  // where each line of the prefix starts
  for (size_t i = 0; i < prefix->size(); ++i) {
    if ((*prefix)[i] == '\n' && i + 1 < prefix->size()) starts.push_back(i + 1);
  }
  const std::string_view p(*prefix);
  size_t min_below = std::string_view::npos, anchor = std::string_view::npos;
  for (size_t k = starts.size(); k-- > 0;) {
    std::string_view line = p.substr(starts[k]);
    if (blank_line(line)) continue;
    size_t ind = indent_of(line);
    if (ind <= min_below && top_level_start(line.substr(ind)) && line[ind] != '@') {
      while (k > 0 && indent_of(p.substr(starts[k - 1])) == ind && p[starts[k - 1] + ind] == '@') --k;
      anchor = ind;
      prefix->erase(0, starts[k]);
      break;
    }
    min_below = std::min(min_below, ind);
  }
  const size_t cut_at = anchor == std::string_view::npos ? 0 : anchor;
  for (size_t pos = suffix->find('\n'); pos != std::string::npos; pos = suffix->find('\n', pos + 1)) {
    std::string_view line = std::string_view(*suffix).substr(pos + 1);
    if (blank_line(line)) continue;
    size_t ind = indent_of(line);
    if (ind <= cut_at && top_level_start(line.substr(ind))) {
      suffix->resize(pos + 1);
      break;
    }
  }
}

// A JavaScript/TypeScript window (an HTTP client's N lines around the cursor) that starts inside a block, e.g.
// a class body, has `}` it never opened and methods with no class around them: tree-sitter's error recovery
// then costs most of the check and its errors hide the completion's. The check uses the window from the
// outermost block still open at the cursor that opens after the last such `}` (its header line; a method
// header, which is not a statement, becomes `function _() {`) to the `}` in the suffix that closes it.
// Strings and comments are skipped roughly (quotes, `//`, `/* */`); a window that never dips below depth 0 is
// left as it is.
void anchor_brace_window(std::string* prefix, std::string* suffix) {
  auto scan = [](std::string_view t, auto&& on) {  // on(char, offset) for each brace outside strings/comments
    char quote = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      const char c = t[i];
      if (quote) {
        if (c == '\\') ++i;
        else if (c == quote || (c == '\n' && quote != '`')) quote = 0;
        continue;
      }
      if (c == '/' && i + 1 < t.size() && t[i + 1] == '/') {
        size_t nl = t.find('\n', i);
        i = nl == std::string_view::npos ? t.size() : nl;
        continue;
      }
      if (c == '/' && i + 1 < t.size() && t[i + 1] == '*') {
        size_t e = t.find("*/", i + 2);
        i = e == std::string_view::npos ? t.size() : e + 1;
        continue;
      }
      if (c == '"' || c == '\'' || c == '`') quote = c;
      if ((c == '{' || c == '}') && !on(c, i)) return;
    }
  };
  std::vector<size_t> open;  // offsets of the `{` still open
  bool dipped = false;
  scan(*prefix, [&](char c, size_t i) {
    if (c == '{') {
      open.push_back(i);
    } else if (open.empty()) {
      dipped = true;  // closes a block that started before the window
    } else {
      open.pop_back();
    }
    return true;
  });
  if (!dipped || open.empty()) return;
  const size_t ls = prefix->rfind('\n', open.front()) == std::string::npos ? 0 : prefix->rfind('\n', open.front()) + 1;
  std::string_view header = std::string_view(*prefix).substr(ls, open.front() - ls);
  const size_t ind = header.find_first_not_of(" \t");
  std::string_view head = ind == std::string_view::npos ? std::string_view() : header.substr(ind);
  bool statement = false;
  for (std::string_view k : {"if", "for", "while", "switch", "try", "do", "function", "async function", "class",
                             "const ", "let ", "var ", "export", "return", "("}) {
    if (head.substr(0, k.size()) == k) statement = true;
  }
  statement |= head.find('=') != std::string_view::npos;
  std::string rest = prefix->substr(open.front());  // from the `{` on
  *prefix = (statement ? std::string(header) : std::string(header.substr(0, ind == std::string_view::npos ? 0 : ind)) +
                                                   "function _() ") + rest;
  int depth = static_cast<int>(open.size());
  size_t close = std::string::npos;
  scan(*suffix, [&](char c, size_t i) {
    depth += c == '{' ? 1 : -1;
    if (depth == 0) {
      close = i;
      return false;
    }
    return true;
  });
  if (close != std::string::npos) {
    size_t nl = suffix->find('\n', close);
    suffix->resize(nl == std::string::npos ? suffix->size() : nl + 1);
  }
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Whether a Python line whose last code character is t[last] ends with an operator that needs an operand on
// the next line ("a or", "x =", "b +"), which Python refuses outside brackets (tree-sitter's grammar does not).
bool dangling_operator(std::string_view t, size_t line_start, size_t last) {
  const char c = t[last];
  if (c == '*' && t.substr(line_start, last - line_start).find("import") != std::string_view::npos) return false;
  if (std::string_view("+-*/%&|^<>=.~@").find(c) != std::string_view::npos) return true;
  if (!is_word_char(c)) return false;
  size_t b = last;
  while (b > line_start && is_word_char(t[b - 1])) --b;
  if (b > line_start && t[b - 1] == '.') return false;
  const std::string_view w = t.substr(b, last + 1 - b);
  for (std::string_view k : {"or", "and", "not", "in", "is", "if", "else"}) {
    if (w == k) return true;
  }
  return false;
}

}  // namespace

// Where the first line of Python text starts that ends, outside brackets and strings, with a dangling operator
// (npos: none). `t` starts at the beginning of a line; a bracket it closes but did not open (its context is
// unknown) ends the scan.
size_t python_dangling_line(std::string_view t) {
  int depth = 0;
  std::string_view quote;
  size_t line_start = 0, last = std::string_view::npos;
  for (size_t i = 0; i <= t.size(); ++i) {
    const char c = i < t.size() ? t[i] : '\n';
    if (!quote.empty()) {
      if (c == '\\') {
        ++i;
      } else if (t.substr(i, quote.size()) == quote) {
        i += quote.size() - 1;
        quote = {};
        last = i;
      } else if (c == '\n' && quote.size() == 1) {
        return std::string_view::npos;  // a broken one-line string: the parser sees that
      }
      continue;
    }
    if (c == '#') {
      size_t nl = t.find('\n', i);
      i = (nl == std::string_view::npos ? t.size() : nl) - 1;
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = t.substr(i, 3) == std::string(3, c) ? t.substr(i, 3) : t.substr(i, 1);
      i += quote.size() - 1;
      continue;
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if ((c == ')' || c == ']' || c == '}') && --depth < 0) return std::string_view::npos;
    if (c == '\n') {
      if (depth == 0 && last != std::string_view::npos && t[last] != '\\' && dangling_operator(t, line_start, last)) {
        return line_start;
      }
      line_start = i + 1;
      last = std::string_view::npos;
      continue;
    }
    if (c != ' ' && c != '\t' && c != '\r') last = i;
  }
  return std::string_view::npos;
}

namespace {
bool starts_keyword(std::string_view s, std::string_view k) {
  return s.substr(0, k.size()) == k &&
         (s.size() == k.size() || !(std::isalnum(static_cast<unsigned char>(s[k.size()])) || s[k.size()] == '_'));
}
}  // namespace

size_t PythonIndent::feed(std::string_view t) {
  for (auto& tr : tries) tr.second = std::string_view::npos;  // opened before this text
  for (size_t i = 0; i < t.size(); ++i) {
    if (at_line_start) {
      size_t j = i;
      while (j < t.size() && (t[j] == ' ' || t[j] == '\t')) ++j;
      if (j == t.size()) {  // an unfinished line: its indentation so far
        pending += j - i;
        return std::string_view::npos;
      }
      if (t[j] == '\n' || t[j] == '\r' || t[j] == '#') {  // blank or a comment: no logical line
        pending = 0;
        size_t nl = t.find('\n', j);
        if (nl == std::string_view::npos) {
          at_line_start = false;  // a comment to the end
          return std::string_view::npos;
        }
        i = nl;
        continue;
      }
      const size_t ind = pending + (j - i);
      pending = 0;
      if (opener) {
        if (ind <= stack.back()) return i;  // expected an indented block
        stack.push_back(ind);
      } else if (ind > stack.back()) {
        return i;  // unexpected indent
      } else {
        while (stack.size() > 1 && stack.back() > ind) stack.pop_back();
        if (stack.back() != ind) return i;  // unindent does not match any outer level
      }
      // A `try:` block must go on with `except` or `finally` at its own indentation.
      std::string_view stmt = t.substr(j);
      if (!tries.empty() && tries.back().first > ind) return i;  // dedented past an unfinished try
      if (!tries.empty() && tries.back().first == ind) {
        if (!starts_keyword(stmt, "except") && !starts_keyword(stmt, "finally")) return i;
        tries.pop_back();
      }
      if (starts_keyword(stmt, "try")) tries.emplace_back(ind, i);
      opener = false;
      at_line_start = false;
      last_code = 0;
      i = j;
    }
    const char c = t[i];
    if (!quote.empty()) {
      if (c == '\\') {
        ++i;
      } else if (t.substr(i, quote.size()) == quote) {
        i += quote.size() - 1;
        quote.clear();
        last_code = c;
      } else if (c == '\n' && quote.size() == 1) {
        quote.clear();  // a broken one-line string: the parser sees that
        --i;            // ends the line below
      }
      continue;
    }
    if (c == '#') {
      size_t nl = t.find('\n', i);
      if (nl == std::string_view::npos) return std::string_view::npos;
      i = nl - 1;
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = t.substr(i, 3) == std::string(3, c) ? std::string(3, c) : std::string(1, c);
      i += quote.size() - 1;
      continue;
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
    if (c == '\n') {
      if (depth == 0 && last_code != '\\') {
        opener = last_code == ':';
        at_line_start = true;
      }
      continue;
    }
    if (c != ' ' && c != '\t' && c != '\r') last_code = c;
  }
  return std::string_view::npos;
}

namespace {

bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

const char* syntax_mode_name(SyntaxMode m) {
  switch (m) {
    case SyntaxMode::kOff: return "off";
    case SyntaxMode::kTrim: return "trim";
    case SyntaxMode::kRank: return "rank";
  }
  return "?";
}

bool parse_syntax_mode(std::string_view s, SyntaxMode* out) {
  for (SyntaxMode m : {SyntaxMode::kOff, SyntaxMode::kTrim, SyntaxMode::kRank}) {
    if (s == syntax_mode_name(m)) {
      *out = m;
      return true;
    }
  }
  return false;
}

const char* syntax_action_name(SyntaxAction a) {
  switch (a) {
    case SyntaxAction::kKept: return "kept";
    case SyntaxAction::kCut: return "cut";
    case SyntaxAction::kRefused: return "refused";
    case SyntaxAction::kUnchecked: return "unchecked";
  }
  return "?";
}

OpenState open_state(std::string_view text, std::string_view language_id) {
  const bool py = language_id == "python";
  const bool hash_comments = py || language_id == "shellscript";
  const bool slash_comments = !hash_comments && language_id != "json";
  const bool backticks = language_id == "go" || language_id.substr(0, 10) == "javascript" ||
                         language_id.substr(0, 10) == "typescript";
  OpenState st;
  std::vector<char> stack;
  std::string quote;  // what closes the open string or comment
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (!quote.empty()) {
      if (quote == "*/") {
        if (text.substr(i, 2) == "*/") {
          quote.clear();
          i += 2;
          continue;
        }
      } else if (c == '\\') {
        i += 2;
        continue;
      } else if (text.substr(i, quote.size()) == quote) {
        i += quote.size();
        quote.clear();
        continue;
      } else if (c == '\n' && quote.size() == 1 && quote != "`") {
        quote.clear();  // a one-line string ends with its line (broken, which the parser will say)
      }
      ++i;
      continue;
    }
    if ((hash_comments && c == '#') || (slash_comments && text.substr(i, 2) == "//")) {
      size_t nl = text.find('\n', i);
      i = nl == std::string_view::npos ? text.size() : nl;
      continue;
    }
    if (slash_comments && text.substr(i, 2) == "/*") {
      quote = "*/";
      i += 2;
      continue;
    }
    if (c == '"' || c == '\'' || (backticks && c == '`')) {
      if (py && text.substr(i, 3) == std::string(3, c)) {
        quote = std::string(3, c);
      } else {
        quote = std::string(1, c);
      }
      i += quote.size();
      continue;
    }
    if (c == '(' || c == '[' || c == '{') {
      stack.push_back(c);
    } else if (c == ')' || c == ']' || c == '}') {
      char open = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (!stack.empty() && stack.back() == open) stack.pop_back();
    } else if (is_word(c)) {
      size_t j = i;
      while (j < text.size() && is_word(text[j])) ++j;
      std::string_view w = text.substr(i, j - i);
      bool string_prefix = py && w.size() <= 2 && j < text.size() && (text[j] == '"' || text[j] == '\'') &&
                           w.find_first_not_of("rRbBfFuU") == std::string_view::npos;
      if (!string_prefix) st.has_code = true;
      i = j;
      continue;
    }
    ++i;
  }
  st.in_string = !quote.empty();
  if (quote == "*/") {
    st.closer = " */";
  } else {
    st.closer = quote;
  }
  for (auto it = stack.rbegin(); it != stack.rend(); ++it) st.closer += *it == '(' ? ')' : *it == '[' ? ']' : '}';
  return st;
}

SyntaxChecker::SyntaxChecker(const LanguageInfo* language, std::string prefix, std::string suffix,
                             SyntaxCheckOptions options, const TSTree* tree)
    : language_(language), prefix_(std::move(prefix)), suffix_(std::move(suffix)), options_(options) {
  options_.degeneration.triple_quotes = language_ && language_->id == "python";
  if (!language_) return;
  parser_ = ts_parser_new();
  if (!ts_parser_set_language(parser_, language_->grammar())) {
    ts_parser_delete(parser_);
    parser_ = nullptr;
    return;
  }
  if (!tree && language_->id == "python") {
    anchor_python_window(&prefix_, &suffix_);
    prefix_ = python_window_header(prefix_, suffix_) + prefix_;
  }
  if (!tree && (language_->id.rfind("javascript", 0) == 0 || language_->id.rfind("typescript", 0) == 0)) {
    anchor_brace_window(&prefix_, &suffix_);
  }
  TSPoint at = point_after({0, 0}, prefix_);
  at_row_ = at.row;
  at_column_ = at.column;
  if (tree) {
    base_ = ts_tree_copy(tree);
  } else {
    std::string whole = prefix_ + suffix_;
    base_ = ts_parser_parse_string(parser_, nullptr, whole.data(), static_cast<uint32_t>(whole.size()));
  }
  if (!base_) {
    ts_parser_delete(parser_);
    parser_ = nullptr;
    return;
  }
  // The window for empty blocks starts at the line of the last code before the cursor (a `def f():` header).
  size_t last = prefix_.find_last_not_of(" \t\r\n");
  size_t ls = last == std::string::npos ? std::string::npos : prefix_.rfind('\n', last);
  lo_ = ls == std::string::npos ? 0 : static_cast<uint32_t>(ls + 1);
  python_ = language_->id == "python";
  if (python_) indent_ok_ = indent_.feed(prefix_) == std::string::npos;
  ErrorCount base = count_errors(base_, lo_, 0, static_cast<uint32_t>(prefix_.size()), python_, prefix_ + suffix_);
  errors_without_ = base.total;
  for (const auto& e : base.nodes) base_errors_.push_back({std::string(e.type), e.missing, e.start, e.end});
}

SyntaxChecker::~SyntaxChecker() {
  if (base_) ts_tree_delete(base_);
  if (parser_) ts_parser_delete(parser_);
}

Degeneration SyntaxChecker::scan(std::string_view completion, bool final) const {
  return find_degeneration(completion, final, options_.degeneration);
}

// Errors of a candidate that the prefix + suffix did not have: each is matched against the old ones, whose
// ranges after the cursor moved by the insertion's length (one that ends at the cursor may have moved or not).
int SyntaxChecker::new_errors(const ErrorCount& e, uint32_t at, uint32_t len) const {
  std::vector<bool> used(base_errors_.size(), false);
  int fresh = 0;
  for (const auto& n : e.nodes) {
    bool found = false;
    for (size_t i = 0; i < base_errors_.size() && !found; ++i) {
      const auto& b = base_errors_[i];
      if (used[i] || b.type != n.type || b.missing != n.missing) continue;
      uint32_t s = b.start >= at ? b.start + len : b.start;
      uint32_t t = b.end > at ? b.end + len : b.end;
      found = (n.start == s && n.end == t) || (b.end == at && n.start == s + (b.start == at ? len : 0) && n.end == t + len);
      if (found) used[i] = true;
    }
    fresh += !found;
  }
  return fresh;
}

SyntaxVerdict SyntaxChecker::check(std::string_view completion, bool final) {
  auto t0 = std::chrono::steady_clock::now();
  SyntaxVerdict v;
  v.errors_without = errors_without_;
  std::string_view work = completion;
  if (!final) {  // streaming: whole lines only
    size_t nl = work.rfind('\n');
    work = nl == std::string_view::npos ? std::string_view() : work.substr(0, nl + 1);
  }
  const std::string lang = language_ ? language_->id : "";
  Degeneration d = find_degeneration(work, /*final=*/true, options_.degeneration);
  size_t limit = d.found() ? d.cut : work.size();
  if (d.found()) v.rules.push_back(d.rule);
  // Python: a line that ends with a dangling operator is an error that tree-sitter's grammar accepts; what
  // starts with it is not shown. Only when the completion starts a line (else its brackets' context is unknown).
  if (python_ && (prefix_.empty() || prefix_.back() == '\n')) {
    size_t bad = python_dangling_line(work.substr(0, limit));
    if (bad != std::string_view::npos) {
      limit = bad;
      v.rules.push_back("dangling_operator");
    }
  }
  if (python_ && indent_ok_) {
    PythonIndent st = indent_;
    const std::string_view head = work.substr(0, limit);
    size_t bad = st.feed(head);
    // The user's indentation at the cursor (a line of blanks so far) may already rule out any statement there
    // (a file that is only "    ", a body line indented as deep as its header): a first line that breaks
    // only because of it, which `pass` (or `except`) at the same indentation breaks too, is not the completion's
    // doing.
    if (bad == 0 && indent_.pending > 0) {
      PythonIndent probe = indent_;
      const std::string lead(head.substr(0, head.find_first_not_of(" \t")));
      PythonIndent handler = indent_;  // where a `try:` waits, `except` is the statement that fits
      if (probe.feed(lead + "pass\n") == 0 && handler.feed(lead + "except Exception:\n") == 0) {
        bad = std::string_view::npos;
      }
    }
    if (bad != std::string_view::npos) {
      limit = bad;
      v.rules.push_back("bad_indent");
    }
  }

  auto finish = [&](SyntaxAction a) {
    v.action = a;
    v.micros = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    return v;
  };
  if (!parser_) {
    v.text = std::string(rstrip(work.substr(0, limit)));
    v.has_code = open_state(v.text, lang).has_code;
    v.reason = d.found() ? "cut where the text degenerates: " + d.detail : "no grammar for this language";
    return finish(d.found() ? SyntaxAction::kCut : SyntaxAction::kUnchecked);
  }

  // Candidate ends, longest first: the limit, then each line end before it.
  std::vector<size_t> ends = {limit};
  for (size_t p = limit; p > 0;) {
    size_t nl = work.rfind('\n', p - 1);
    if (nl == std::string_view::npos) break;
    ends.push_back(nl);
    p = nl;
  }
  struct Best {
    bool found = false;
    std::string_view kept;
    std::string closer;
    ErrorCount errors;
    bool has_code = false;
  } best;
  const uint32_t P = static_cast<uint32_t>(prefix_.size());
  TSPoint at{at_row_, at_column_};
  // The prefix + suffix tree, edited by the insertion and re-parsed: only the region around it is rebuilt.
  auto evaluate = [&](std::string_view kept, const std::string& closer) {
    std::string insert = std::string(kept) + closer;
    TSTree* tree = ts_tree_copy(base_);
    TSInputEdit edit{P, P, P + static_cast<uint32_t>(insert.size()), at, at, point_after(at, insert)};
    ts_tree_edit(tree, &edit);
    std::string whole = prefix_ + insert + suffix_;
    TSTree* next = ts_parser_parse_string(parser_, tree, whole.data(), static_cast<uint32_t>(whole.size()));
    ts_tree_delete(tree);
    ++v.parses;
    ErrorCount e;
    if (!next) {
      e.total = e.inside = 1 << 20;  // could not parse: never shown
      return e;
    }
    e = count_errors(next, lo_, P, P + static_cast<uint32_t>(insert.size()), python_, whole);
    ts_tree_delete(next);
    return e;
  };
  size_t last_size = std::string_view::npos;
  for (size_t end : ends) {
    std::string_view kept = rstrip(work.substr(0, end));
    if (kept.empty()) break;
    if (kept.size() == last_size) continue;  // blank lines: the same candidate
    last_size = kept.size();
    // Text that leaves a string or a bracket of its own open is shown closed or not at all: the client's
    // suffix may close it by accident (a window of the file, a docstring further down).
    if (python_ && indent_ok_) {  // a `try:` opened in the completion and not finished in it
      PythonIndent st = indent_;
      if (st.feed(std::string(kept) + "\n") == std::string_view::npos && st.open_try() != std::string_view::npos) {
        if (std::find(v.rules.begin(), v.rules.end(), "open_try") == v.rules.end()) v.rules.push_back("open_try");
        continue;
      }
    }
    OpenState open = open_state(kept, lang);
    std::vector<std::string> closers = {open.closer};
    for (const auto& closer : closers) {
      ErrorCount e = evaluate(kept, closer);
      // No worse than without: no error in the completion or the statement at the cursor, and no error
      // elsewhere that the file did not have before (the old ones, moved by the insertion, may stay: they
      // are the user's, unrelated to the completion).
      bool acceptable = e.inside == 0 && new_errors(e, P, static_cast<uint32_t>(closer.size() + kept.size())) == 0;
      if (!acceptable) continue;
      if (!best.found || e.total < best.errors.total) {
        best = {true, kept, closer, e, open.has_code};
      }
    }
    if (best.found && best.errors.total == 0) break;  // nothing shorter can do better
  }
  if (!best.found) {
    v.text.clear();
    v.errors_with = errors_without_;
    if (!work.empty() && !rstrip(work).empty()) {
      v.rules.push_back("refused_parse_error");
      v.reason = "refused: every line-aligned prefix of the completion adds a parse error (" +
                 std::to_string(errors_without_) + " error(s) without it)";
      return finish(SyntaxAction::kRefused);
    }
    v.reason = "empty";
    return finish(SyntaxAction::kKept);
  }
  v.text = std::string(best.kept) + best.closer;
  v.closer = best.closer;
  v.errors_with = best.errors.total;
  v.has_code = best.has_code;
  bool cut = best.kept.size() < rstrip(work).size();
  if (!best.closer.empty()) v.rules.push_back(open_state(best.kept, lang).in_string ? "closed_string" : "closed_brackets");
  if (cut && (!d.found() || best.kept.size() < rstrip(work.substr(0, limit)).size())) v.rules.push_back("parse_error");
  if (!cut && best.closer.empty()) {
    v.reason = "kept: parses with the surrounding text (" + std::to_string(v.errors_with) + " error(s), " +
               std::to_string(errors_without_) + " without it)";
    return finish(SyntaxAction::kKept);
  }
  std::string why;
  if (d.found()) why = "the text degenerates (" + d.rule + ": " + d.detail + ")";
  if (std::find(v.rules.begin(), v.rules.end(), "dangling_operator") != v.rules.end()) {
    if (!why.empty()) why += "; ";
    why += "a line ends with an operator and no bracket";
  }
  if (std::find(v.rules.begin(), v.rules.end(), "bad_indent") != v.rules.end()) {
    if (!why.empty()) why += "; ";
    why += "a line's indentation does not follow the blocks before it";
  }
  if (cut && best.kept.size() < rstrip(work.substr(0, limit)).size()) {
    if (!why.empty()) why += "; ";
    why += "later lines add parse errors";
  }
  if (!best.closer.empty()) {
    if (!why.empty()) why += "; ";
    why += "closed with '" + best.closer + "'";
  }
  size_t kept_lines = 1;
  for (char c : best.kept) kept_lines += c == '\n';
  v.reason = "cut back to " + std::to_string(kept_lines) + " line(s): " + why + " (" + std::to_string(v.errors_with) +
             " error(s) with it, " + std::to_string(errors_without_) + " without)";
  return finish(SyntaxAction::kCut);
}

bool better_candidate(const SyntaxVerdict& a, const SyntaxVerdict& b) {
  auto key = [](const SyntaxVerdict& v) {
    return std::make_tuple(v.action != SyntaxAction::kRefused && !v.text.empty(), v.has_code, -v.errors_with,
                           v.text.size());
  };
  return key(a) > key(b);
}

void SyntaxStats::record(const SyntaxVerdict& v) {
  std::lock_guard<std::mutex> lock(mu_);
  ++s_.actions[syntax_action_name(v.action)];
  for (const auto& r : v.rules) ++s_.rules[r];
  s_.parses += v.parses;
  s_.seconds += v.micros / 1e6;
}

SyntaxStats::Snapshot SyntaxStats::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return s_;
}

}  // namespace latent::lsp
