#include "lsp/context_builder.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "lsp/fim_format.h"
#include "lsp/symbols.h"

namespace latent::lsp {

size_t estimate_tokens(std::string_view text) {
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  return std::max<size_t>((text.size() * 2 + 6) / 7, lines);
}

const char* prompt_layout_name(PromptLayout l) {
  return l == PromptLayout::kWindow ? "window" : "stable";
}

bool parse_prompt_layout(std::string_view s, PromptLayout* out) {
  if (s == "window") *out = PromptLayout::kWindow;
  else if (s == "stable") *out = PromptLayout::kCacheStable;
  else return false;
  return true;
}

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isalpha(c) || c == '_') {
      size_t j = i + 1;
      while (j < text.size() && (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_')) ++j;
      if (j - i >= 2) out.emplace_back(text.substr(i, j - i));
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

double jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.empty() || b.empty()) return 0;
  size_t i = 0, j = 0, inter = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) {
      ++inter, ++i, ++j;
    } else if (a[i] < b[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  return static_cast<double>(inter) / static_cast<double>(a.size() + b.size() - inter);
}

namespace {

std::vector<std::string> unique_sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

size_t line_start_of(std::string_view text, size_t offset) {
  if (offset == 0) return 0;
  size_t p = text.rfind('\n', offset - 1);
  return p == std::string_view::npos ? 0 : p + 1;
}

uint32_t line_of(std::string_view text, size_t offset) {
  return static_cast<uint32_t>(std::count(text.begin(), text.begin() + static_cast<long>(offset), '\n'));
}

// Moves `offset` forward to a UTF-8 code point boundary.
size_t utf8_boundary(std::string_view text, size_t offset) {
  while (offset < text.size() && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) ++offset;
  return offset;
}

}  // namespace

ContextBuilder::ContextBuilder(const WorkspaceIndex& index, ContextOptions options, TokenCounter counter)
    : index_(index), options_(options), counter_(std::move(counter)) {}

PromptContext ContextBuilder::build(const Snapshot& doc, size_t cursor, const std::vector<const Snapshot*>& others,
                                    ContextMemo* memo, const TimeLimit* time) const {
  const std::string& text = *doc.text;
  cursor = std::min(cursor, text.size());
  PromptContext ctx;
  ctx.path = index_.relative_path(doc.path);
  // The time limit binds when it is below the token budget: then it is the budget, and what only the token
  // budget would have held is dropped for time.
  const bool timed = time && time->tokens > 0 && time->tokens < options_.budget_tokens;
  const size_t budget = timed ? time->tokens : options_.budget_tokens;
  ctx.budget_tokens = budget;
  if (timed) {
    ctx.time_tokens = time->tokens;
    ctx.time_why = time->why;
  }
  const size_t window_budget = static_cast<size_t>(budget * options_.window_share);
  const size_t prefix_budget = static_cast<size_t>(window_budget * options_.prefix_share);
  const size_t suffix_budget = window_budget - prefix_budget;

  // ---- the window: whole lines outward from the cursor (the cursor's own line always, split at the cursor)
  size_t pre_start = line_start_of(text, cursor);
  size_t pre_tokens = count(std::string_view(text).substr(pre_start, cursor - pre_start));
  if (pre_tokens > prefix_budget) {  // one very long line: keep its end
    size_t keep = prefix_budget * 3;
    pre_start = utf8_boundary(text, cursor > keep ? cursor - keep : 0);
    pre_tokens = count(std::string_view(text).substr(pre_start, cursor - pre_start));
  }
  auto grow_prefix = [&](size_t limit) {
    while (pre_start > 0) {
      size_t ls = line_start_of(text, pre_start - 1);
      size_t t = count(std::string_view(text).substr(ls, pre_start - ls));
      if (pre_tokens + t > limit) break;
      pre_tokens += t;
      pre_start = ls;
    }
  };
  grow_prefix(prefix_budget);
  size_t suf_end = cursor, suf_tokens = 0;
  auto grow_suffix = [&](size_t limit) {
    while (suf_end < text.size()) {
      size_t nl = text.find('\n', suf_end);
      size_t le = nl == std::string::npos ? text.size() : nl + 1;
      size_t t = count(std::string_view(text).substr(suf_end, le - suf_end));
      if (suf_tokens + t > limit) break;
      suf_tokens += t;
      suf_end = le;
    }
  };
  grow_suffix(suffix_budget);
  // Unused suffix budget goes to the prefix, and the other way round.
  grow_prefix(prefix_budget + (suffix_budget - std::min(suffix_budget, suf_tokens)));
  grow_suffix(suffix_budget + (prefix_budget - std::min(prefix_budget, pre_tokens)));
  const bool stable = options_.layout == PromptLayout::kCacheStable;
  // Cache-stable: the window starts at the first line at or after pre_start whose number is a multiple of
  // anchor_lines, so that it moves once every anchor_lines lines typed instead of with every line.
  auto anchor_window = [&]() {
    const size_t step = static_cast<size_t>(std::max(1, options_.anchor_lines));
    const size_t cursor_ls = line_start_of(text, cursor);
    if (pre_start >= cursor_ls) return;  // the cursor's line alone fills the budget
    size_t line = line_of(text, pre_start);
    size_t p = pre_start;
    while (p < cursor_ls && (line % step != 0 || p != line_start_of(text, p))) {
      size_t nl = text.find('\n', p);
      p = nl + 1;
      ++line;
    }
    if (p != pre_start) {
      pre_start = p;
      pre_tokens = count(std::string_view(text).substr(pre_start, cursor - pre_start));
    }
    // The suffix window ends where the number of lines left in the file is a multiple of anchor_lines / 4: lines
    // typed above it do not move it, and its size does not follow the prefix's from keystroke to keystroke.
    if (suf_end < text.size()) {
      size_t left = static_cast<size_t>(std::count(text.begin() + static_cast<long>(suf_end), text.end(), '\n'));
      size_t line_end = text.find('\n', cursor);  // the rest of the cursor's line always stays
      line_end = line_end == std::string::npos ? text.size() : line_end + 1;
      size_t e = suf_end;
      const size_t suffix_step = std::max<size_t>(1, step / 4);  // the suffix window is smaller
      while (e > line_end && left % suffix_step != 0) {
        e = line_start_of(text, e - 1);
        ++left;
      }
      if (e != suf_end) {
        suf_end = std::max(e, line_end);
        suf_tokens = count(std::string_view(text).substr(cursor, suf_end - cursor));
      }
    }
  };

  // ---- candidates from outside the window
  std::vector<ContextItem> candidates;
  uint32_t cursor_line = line_of(text, cursor);
  if (stable) anchor_window();
  auto in_window = [&](size_t b, size_t e) { return b >= pre_start && e <= suf_end; };

  // Cache-stable: the context chosen for this document is kept while the cursor stays within the same group of
  // anchor_lines / 4 lines (every identifier typed, and re-indexing the document as it is typed, would otherwise
  // reshuffle it with each keystroke), unless the window has grown into the extras' share of the budget.
  const uint32_t hood_line =
      stable ? cursor_line - cursor_line % static_cast<uint32_t>(std::max(1, options_.anchor_lines / 4)) : cursor_line;
  size_t header_tokens = count(ctx.path) + 2;
  size_t used = pre_tokens + suf_tokens + header_tokens;
  bool reuse = stable && memo && memo->uri == doc.uri && memo->hood_line == hood_line && memo->budget == budget &&
               used + memo->extras_tokens <= budget;
  if (reuse) {
    candidates = memo->items;
    used += memo->extras_tokens;
  } else {
    // Scopes: look from the last non-blank byte before the cursor (a blank line after a Python body is outside it).
    size_t probe = cursor;
    while (probe > 0 && std::isspace(static_cast<unsigned char>(text[probe - 1]))) --probe;
    if (probe > 0) --probe;
    for (const auto& scope : enclosing_scopes(doc.tree, text, static_cast<uint32_t>(probe))) {
      if (scope.start_byte >= pre_start) continue;  // visible in the prefix already
      ContextItem it;
      it.kind = "scope";
      it.path = ctx.path;
      it.line = scope.line;
      size_t ls = line_start_of(text, scope.start_byte);
      it.text = text.substr(ls, scope.start_byte - ls) + scope.text;
      it.score = 1.0;
      it.reason = "encloses the cursor (line " + std::to_string(scope.line + 1) + ")";
      candidates.push_back(std::move(it));
    }
    size_t n_imports = 0;
    for (const auto& imp : imports(doc.tree, text)) {
      if (in_window(imp.start_byte, imp.end_byte)) continue;
      if (++n_imports > options_.max_imports) break;
      ContextItem it;
      it.kind = "import";
      it.path = ctx.path;
      it.line = imp.line;
      it.text = imp.text;
      it.score = 0.9;
      it.reason = "import of the current file";
      candidates.push_back(std::move(it));
    }

    // Identifiers near the cursor, closest first.
    size_t hood_start = cursor;
    for (int l = 0; l <= options_.neighbourhood_lines && hood_start > 0; ++l) hood_start = line_start_of(text, hood_start - 1);
    size_t hood_end = text.find('\n', cursor);
    hood_end = hood_end == std::string::npos ? text.size() : hood_end;
    std::string_view hood = std::string_view(text).substr(hood_start, hood_end - hood_start);
    std::vector<std::string> hood_words = words_of(hood);
    {
      std::vector<std::string> ordered;
      std::set<std::string> seen;
      for (auto it = hood_words.rbegin(); it != hood_words.rend(); ++it) {
        if (seen.insert(*it).second) ordered.push_back(*it);
      }
      size_t rank = 0, n_defs = 0;
      for (const auto& name : ordered) {
        if (n_defs >= options_.max_definitions * 2) break;
        auto symbols = index_.lookup(name);
        size_t per_name = 0;
        for (const auto& s : symbols) {
          if (s.path == doc.path && (in_window(s.start_byte, s.end_byte) ||
                                     (s.start_byte <= cursor && cursor <= s.end_byte) ||
                                     (s.start_byte >= pre_start && s.start_byte < suf_end))) {
            continue;  // its text is in the window, or it is the definition being written
          }
          if (++per_name > 2) break;
          ContextItem it;
          it.kind = "definition";
          it.path = index_.relative_path(s.path);
          it.line = s.line;
          it.text = s.preview.empty() ? s.signature : s.preview;
          it.score = 1.0 / (1.0 + static_cast<double>(rank));
          it.reason = "'" + name + "' is used near the cursor; " + symbol_kind_name(s.kind) + " defined at " +
                      it.path + ":" + std::to_string(s.line + 1);
          candidates.push_back(std::move(it));
          ++n_defs;
        }
        if (!symbols.empty()) ++rank;
      }
    }

    // Snippets from other files, by Jaccard similarity to the neighbourhood.
    {
      std::vector<std::string> query = unique_sorted(hood_words);
      struct Best { double score = 0; size_t begin = 0, end = 0; uint32_t line = 0; };
      std::vector<std::pair<const Snapshot*, Best>> best;
      for (const Snapshot* other : others) {
        if (!other || other->uri == doc.uri) continue;
        const std::string& t = *other->text;
        std::vector<size_t> starts = {0};
        for (size_t i = 0; i < t.size(); ++i) if (t[i] == '\n' && i + 1 < t.size()) starts.push_back(i + 1);
        Best b;
        int step = std::max(1, options_.snippet_lines / 2);
        for (size_t l = 0; l < starts.size(); l += static_cast<size_t>(step)) {
          size_t e_line = std::min(starts.size(), l + static_cast<size_t>(options_.snippet_lines));
          size_t begin = starts[l];
          size_t end = e_line < starts.size() ? starts[e_line] : t.size();
          double s = jaccard(query, unique_sorted(words_of(std::string_view(t).substr(begin, end - begin))));
          if (s > b.score) b = Best{s, begin, end, static_cast<uint32_t>(l)};
          if (e_line == starts.size()) break;
        }
        if (b.score > 0) best.push_back({other, b});
      }
      std::sort(best.begin(), best.end(), [](const auto& a, const auto& b) { return a.second.score > b.second.score; });
      for (size_t i = 0; i < best.size(); ++i) {
        const auto& [other, b] = best[i];
        ContextItem it;
        it.kind = "snippet";
        it.path = index_.relative_path(other->path);
        it.line = b.line;
        it.text = other->text->substr(b.begin, b.end - b.begin);
        while (!it.text.empty() && it.text.back() == '\n') it.text.pop_back();
        it.score = b.score;
        it.reason = "similar to the lines before the cursor (Jaccard " + std::to_string(b.score).substr(0, 5) + ")";
        if (b.score < options_.min_similarity) {
          it.reason += "; below the threshold " + std::to_string(options_.min_similarity).substr(0, 5);
        } else if (i >= options_.max_snippets) {
          it.reason += "; beyond the " + std::to_string(options_.max_snippets) + " best";
        }
        candidates.push_back(std::move(it));
      }
    }

    // ---- pack by priority: scopes, imports, definitions, snippets; within a kind by score
    auto priority = [](const std::string& k) { return k == "scope" ? 0 : k == "import" ? 1 : k == "definition" ? 2 : 3; };
    std::stable_sort(candidates.begin(), candidates.end(), [&](const ContextItem& a, const ContextItem& b) {
      if (priority(a.kind) != priority(b.kind)) return priority(a.kind) < priority(b.kind);
      if (a.kind == "import" || a.kind == "scope") return a.line < b.line;
      return a.score > b.score;
    });
    size_t kept_snippets = 0, kept_definitions = 0;
    for (auto& c : candidates) {
      c.tokens = count(c.text) + 1;
      if (c.kind == "snippet" && (c.score < options_.min_similarity || kept_snippets >= options_.max_snippets)) continue;
      if (c.kind == "definition" && kept_definitions >= options_.max_definitions) {
        c.reason += "; dropped: beyond the " + std::to_string(options_.max_definitions) + " nearest definitions";
        continue;
      }
      size_t file_header = c.path == ctx.path ? 0 : count(c.path) + 2;
      if (used + c.tokens + file_header > budget) {
        if (timed && used + c.tokens + file_header <= options_.budget_tokens) {
          c.reason += "; dropped for time: " + std::to_string(c.tokens) + " tokens, " +
                      std::to_string(budget - std::min(budget, used)) + " left within the time limit (" + time->why +
                      ")";
        } else {
          c.reason += "; dropped: over the budget (" + std::to_string(c.tokens) + " tokens, " +
                      std::to_string(budget - std::min(budget, used)) + " left)";
        }
        continue;
      }
      c.included = true;
      used += c.tokens + file_header;
      if (c.kind == "snippet") ++kept_snippets;
      if (c.kind == "definition") ++kept_definitions;
    }
    if (stable && memo) {
      *memo = ContextMemo{doc.uri, hood_line, budget, candidates, used - (pre_tokens + suf_tokens + header_tokens)};
    }
  }
  // Whatever the extras left over widens the window.
  if (used < budget) {
    size_t spare = budget - used;
    size_t before = pre_tokens + suf_tokens;
    grow_prefix(pre_tokens + spare * 3 / 4);
    grow_suffix(suf_tokens + (spare - std::min(spare, pre_tokens + suf_tokens - before)));
    if (stable) anchor_window();
    used = used + pre_tokens + suf_tokens - before;
  }
  for (auto& c : candidates) {  // the widened window may now show what an item repeats
    if (c.included && c.path == ctx.path && (c.kind == "import" || c.kind == "scope")) {
      size_t ls = 0;
      for (uint32_t l = 0; l < c.line && ls < text.size(); ++l) ls = text.find('\n', ls) + 1;
      if (ls >= pre_start) {
        c.included = false;
        used -= c.tokens;
        c.reason += "; dropped: inside the widened window";
      }
    }
  }

  // ---- render
  ctx.prefix = text.substr(pre_start, cursor - pre_start);
  ctx.suffix = text.substr(cursor, suf_end - cursor);
  // Cache-stable: only the near suffix follows the hole; the far one goes before the current file's header, as
  // context from the current file (it does not change while the user types before it).
  std::string far_suffix;
  std::string near_suffix = ctx.suffix;
  if (stable) {
    size_t e = cursor;
    for (int l = 0; l <= options_.near_suffix_lines && e < suf_end; ++l) {
      size_t nl = text.find('\n', e);
      e = nl == std::string::npos || nl + 1 > suf_end ? suf_end : nl + 1;
    }
    near_suffix = text.substr(cursor, e - cursor);
    far_suffix = text.substr(e, suf_end - e);
    while (!far_suffix.empty() && far_suffix.back() == '\n') far_suffix.pop_back();
  }
  std::vector<FimFile> files;
  std::map<std::string, size_t> file_index;
  // Lowest priority first, so that the most relevant context sits closest to the cursor.
  for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
    if (!it->included || it->path == ctx.path) continue;
    auto f = file_index.find(it->path);
    if (f == file_index.end()) {
      file_index[it->path] = files.size();
      files.push_back(FimFile{it->path, it->text});
    } else {
      files[f->second].text += "\n" + it->text;
    }
  }
  std::string header;
  for (const auto& c : candidates) {
    if (c.included && c.path == ctx.path && c.kind == "import") header += c.text + "\n";
  }
  for (const auto& c : candidates) {  // definitions from elsewhere in this file, nearest the cursor last
    if (c.included && c.path == ctx.path && c.kind == "definition") header += c.text + "\n";
  }
  for (const auto& c : candidates) {
    if (c.included && c.path == ctx.path && c.kind == "scope") header += c.text + "\n";
  }
  if (!far_suffix.empty()) files.push_back(FimFile{ctx.path, far_suffix});
  ctx.fim = make_fim(std::move(files), ctx.path, header, ctx.prefix, near_suffix);
  ctx.prompt = render_fim(ctx.fim);
  ctx.prompt_tokens = used;

  ContextItem pre{"prefix", ctx.path, line_of(text, pre_start), pre_tokens, 1.0, true,
                  "the window before the cursor (line " + std::to_string(cursor_line + 1) + ")", ""};
  ContextItem suf{"suffix", ctx.path, cursor_line, suf_tokens, 1.0, true, "the window after the cursor", ""};
  if (timed && (pre_start > 0 || suf_end < text.size())) {  // the token budget would have shown more of the file
    pre.reason += "; shortened for time: " + std::to_string(budget) + " tokens in all (" + time->why + ")";
    suf.reason += "; shortened for time";
  }
  candidates.insert(candidates.begin(), {std::move(pre), std::move(suf)});
  ctx.items = std::move(candidates);
  return ctx;
}

}  // namespace latent::lsp
