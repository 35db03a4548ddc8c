#include "lsp/postprocess.h"

#include <vector>

namespace latent::lsp {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }
bool is_opener(char c) { return c == '(' || c == '[' || c == '{'; }
bool is_closer(char c) { return c == ')' || c == ']' || c == '}'; }
char closer_of(char c) { return c == '(' ? ')' : c == '[' ? ']' : '}'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_space(s.front()) || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (is_space(s.back()) || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

char first_non_space(std::string_view s) {
  for (char c : s) {
    if (!is_space(c) && c != '\n') return c;
  }
  return 0;
}

}  // namespace

size_t indent_of(std::string_view line) {
  size_t n = 0;
  while (n < line.size() && (line[n] == ' ' || line[n] == '\t')) ++n;
  return n;
}

PostprocessResult postprocess_completion(std::string_view raw, std::string_view line_prefix,
                                         std::string_view suffix, bool final) {
  PostprocessResult out;
  size_t base_indent = indent_of(line_prefix);
  std::string_view lp_trim = trim(line_prefix);
  bool opens_block = !lp_trim.empty() && (lp_trim.back() == ':' || is_opener(lp_trim.back()));
  size_t nl = suffix.find('\n');
  std::string_view rest_of_line = suffix.substr(0, nl);
  std::string_view suffix_first_line = trim(rest_of_line);
  if (suffix_first_line.empty() && nl != std::string_view::npos) {  // the next non-blank line
    std::string_view after = suffix.substr(nl + 1);
    while (!after.empty()) {
      size_t e = after.find('\n');
      std::string_view l = trim(after.substr(0, e));
      if (!l.empty()) {
        suffix_first_line = l;
        break;
      }
      if (e == std::string_view::npos) break;
      after = after.substr(e + 1);
    }
  }
  char suffix_next = first_non_space(suffix);
  // Text on the rest of the line other than closers: complete that line only.
  bool single_line = false;
  for (char c : rest_of_line) {
    if (!is_space(c) && !is_closer(c) && c != ';' && c != ',' && c != '"' && c != '\'' && c != '`') single_line = true;
  }

  std::vector<char> stack;
  size_t cut = raw.size();
  size_t last_balanced_line_end = 0;  // where a multi-line completion may be cut to keep brackets balanced
  char quote = 0;
  size_t i = 0;
  size_t line_no = 0;
  while (i < raw.size()) {
    // At the start of each line after the first: block-end checks.
    if (line_no > 0 && (i == 0 || raw[i - 1] == '\n')) {
      size_t e = raw.find('\n', i);
      std::string_view line = raw.substr(i, e == std::string_view::npos ? std::string_view::npos : e - i);
      std::string_view t = trim(line);
      if (!t.empty()) {
        size_t ind = indent_of(line);
        if (!suffix_first_line.empty() && t == suffix_first_line && t.size() > 1) {
          cut = i;  // the suffix's next line: never repeat it
          out.complete = true;
          break;
        }
        bool closes_outer = is_closer(t.front()) && stack.empty();
        if (!closes_outer && stack.empty() && (ind < base_indent || (opens_block && ind <= base_indent))) {
          cut = i;  // dedent: the block ended
          out.complete = true;
          break;
        }
      }
    }
    char c = raw[i];
    if (c == '\n') {
      if (single_line) {
        cut = i;
        out.complete = true;
        break;
      }
      quote = 0;
      ++line_no;
      if (stack.empty()) last_balanced_line_end = i;
      ++i;
      continue;
    }
    if (quote) {
      if (c == '\\') {
        i += 2;
        continue;
      }
      if (c == quote) quote = 0;
      ++i;
      continue;
    }
    if (c == '"' || c == '\'' || c == '`') {
      quote = c;
    } else if (is_opener(c)) {
      stack.push_back(c);
    } else if (is_closer(c)) {
      if (!stack.empty() && closer_of(stack.back()) == c) {
        stack.pop_back();
      } else if (stack.empty()) {
        // Closes a bracket opened before the cursor. If the suffix closes it already, stop before; else keep
        // it and end the block after this line.
        if (suffix_next == c) {
          cut = i;
          out.complete = true;
          break;
        }
        size_t e = raw.find('\n', i);
        if (e != std::string_view::npos) {
          cut = e;
          out.complete = true;
          break;
        }
      } else {
        cut = i;  // a mismatched closer: the model went astray
        out.complete = true;
        break;
      }
    }
    ++i;
  }
  std::string_view kept = raw.substr(0, cut);
  if (final && !stack.empty() && kept.find('\n') != std::string_view::npos && last_balanced_line_end > 0) {
    kept = kept.substr(0, last_balanced_line_end);  // unclosed brackets at the end of a multi-line completion
  }
  // The completion's end repeating the start of the rest of the line: drop the repeat.
  std::string_view rol = trim(rest_of_line);
  if (!rol.empty()) {
    for (size_t k = std::min(rol.size(), kept.size()); k > 0; --k) {
      std::string_view head = rol.substr(0, k);
      bool punct_only = head.find_first_not_of(")]}\"'`;,") == std::string_view::npos;
      if ((k == rol.size() || punct_only) && kept.substr(kept.size() - k) == head) {
        kept.remove_suffix(k);
        break;
      }
    }
  }
  while (!kept.empty() && (kept.back() == '\n' || is_space(kept.back()))) kept.remove_suffix(1);
  out.text = std::string(kept);
  return out;
}

}  // namespace latent::lsp
