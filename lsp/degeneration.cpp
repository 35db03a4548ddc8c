#include "lsp/degeneration.h"

#include <cctype>
#include <map>
#include <vector>

namespace latent::lsp {
namespace {

struct Line {
  size_t start = 0;
  std::string_view text;  // without the newline and trailing spaces
  size_t number = 0;      // 1-based, in the completion
};

bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool has_word(std::string_view s) {
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

std::string_view rstrip(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string_view trim(std::string_view s) {
  s = rstrip(s);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// Whole, non-blank lines (the last one only when `final`).
std::vector<Line> whole_lines(std::string_view text, bool final) {
  std::vector<Line> out;
  size_t pos = 0, number = 1;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos && !final) break;
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view t = rstrip(text.substr(pos, end - pos));
    if (!trim(t).empty()) out.push_back({pos, t, number});
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
    ++number;
  }
  return out;
}

void take(Degeneration* best, size_t cut, const char* rule, std::string detail) {
  if (cut < best->cut) {
    best->cut = cut;
    best->rule = rule;
    best->detail = std::move(detail);
  }
}

// Lines j..j+k-1 equal lines j-k..j-1 (indentation included): the first copy stays.
void repeated_blocks(const std::vector<Line>& lines, const DegenerationOptions& o, Degeneration* best) {
  for (size_t j = 1; j < lines.size(); ++j) {
    for (size_t k = 1; k <= o.max_block_lines && k <= j && j + k <= lines.size(); ++k) {
      bool same = true, words = false;
      for (size_t i = 0; i < k && same; ++i) {
        same = lines[j - k + i].text == lines[j + i].text;
        words |= has_word(lines[j + i].text);
      }
      if (same && words) {
        std::string what = k == 1 ? "line " + std::to_string(lines[j - 1].number)
                                  : "lines " + std::to_string(lines[j - k].number) + "-" +
                                        std::to_string(lines[j - 1].number);
        take(best, lines[j].start, "repeated_lines",
             "line " + std::to_string(lines[j].number) + " starts a repeat of " + what);
        return;
      }
    }
  }
}

// The same line of code a third time, anywhere.
void repeated_line(const std::vector<Line>& lines, const DegenerationOptions& o, Degeneration* best) {
  std::map<std::string_view, size_t> seen;
  for (const auto& l : lines) {
    if (!has_word(l.text) || trim(l.text).size() < 6) continue;
    if (++seen[l.text] > o.max_line_repeats) {
      take(best, l.start, "repeated_line",
           "line " + std::to_string(l.number) + " is copy " + std::to_string(seen[l.text]) + " of '" +
               std::string(trim(l.text).substr(0, 60)) + "'");
      return;
    }
  }
}

// A word n-gram a third time: cut before that occurrence's line (or at the word, on the first line).
void repeated_ngram(std::string_view text, bool final, const DegenerationOptions& o, Degeneration* best) {
  struct Word {
    size_t start;
    std::string_view w;
  };
  std::vector<Word> words;
  size_t limit = final ? text.size() : text.rfind('\n') == std::string_view::npos ? 0 : text.rfind('\n');
  for (size_t i = 0; i < limit;) {
    if (!is_word(text[i])) {
      ++i;
      continue;
    }
    size_t s = i;
    while (i < text.size() && is_word(text[i])) ++i;
    if (i <= limit || final) words.push_back({s, text.substr(s, i - s)});
  }
  if (o.ngram == 0 || words.size() < o.ngram) return;
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i + o.ngram <= words.size(); ++i) {
    std::string key;
    for (size_t k = 0; k < o.ngram; ++k) {
      key += words[i + k].w;
      key += ' ';
    }
    if (++seen[key] > o.max_ngram_repeats) {
      size_t at = words[i].start;
      size_t ls = at == 0 ? std::string_view::npos : text.rfind('\n', at - 1);
      size_t cut = ls == std::string_view::npos ? at : ls + 1;
      key.pop_back();
      take(best, cut, "repeated_ngram", "'" + key + "' " + std::to_string(seen[key]) + " times");
      return;
    }
  }
}

// A triple-quoted string opened in the completion and open after max_docstring_lines lines: cut after its
// first line of text (the summary), for the checker to close.
void runaway_docstring(std::string_view text, const DegenerationOptions& o, Degeneration* best) {
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '#') {  // comment to the end of the line
      size_t nl = text.find('\n', i);
      if (nl == std::string_view::npos) return;
      i = nl + 1;
      continue;
    }
    if (c != '"' && c != '\'') {
      ++i;
      continue;
    }
    bool triple = text.substr(i, 3) == std::string_view(std::string(3, c));
    if (!triple) {  // a one-line string: skip it
      size_t j = i + 1;
      while (j < text.size() && text[j] != c && text[j] != '\n') j += text[j] == '\\' ? 2 : 1;
      i = j + 1;
      continue;
    }
    std::string_view quotes = text.substr(i, 3);
    size_t close = text.find(quotes, i + 3);
    size_t end = close == std::string_view::npos ? text.size() : close;
    size_t newlines = 0;
    for (size_t k = i + 3; k < end; ++k) newlines += text[k] == '\n';
    if (close == std::string_view::npos && newlines > o.max_docstring_lines) {
      size_t first_nl = text.find('\n', i + 3);
      // `"""` alone on its line: the summary is the next line
      if (trim(text.substr(i + 3, first_nl - i - 3)).empty()) first_nl = text.find('\n', first_nl + 1);
      take(best, first_nl, "runaway_docstring",
           "a docstring still open after " + std::to_string(newlines) + " lines");
      return;
    }
    if (close == std::string_view::npos) return;
    i = close + 3;
  }
}

}  // namespace

Degeneration find_degeneration(std::string_view text, bool final, const DegenerationOptions& options) {
  Degeneration best;
  auto lines = whole_lines(text, final);
  repeated_blocks(lines, options, &best);
  repeated_line(lines, options, &best);
  repeated_ngram(text, final, options, &best);
  if (options.triple_quotes) runaway_docstring(text, options, &best);
  return best;
}

}  // namespace latent::lsp
