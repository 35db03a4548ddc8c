#include "lsp/agent/symbol_targets.h"

#include <tree_sitter/api.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace latent::lsp::agent {
namespace {

SymbolKind kind_of(std::string_view capture) {
  constexpr std::string_view kPrefix = "definition.";
  std::string_view k = capture.substr(kPrefix.size());
  if (k == "method") return SymbolKind::kMethod;
  if (k == "class") return SymbolKind::kClass;
  if (k == "struct") return SymbolKind::kStruct;
  if (k == "interface") return SymbolKind::kInterface;
  if (k == "type") return SymbolKind::kType;
  if (k == "enum") return SymbolKind::kEnum;
  if (k == "module") return SymbolKind::kModule;
  return SymbolKind::kFunction;
}

bool is_type(TSNode n, const char* type) { return !ts_node_is_null(n) && std::strcmp(ts_node_type(n), type) == 0; }

// The definition's node widened to its decorators: Python wraps decorated definitions in a
// decorated_definition; TypeScript puts a decorated class's decorators on the `export` statement around it.
// (Rust's #[...] and TypeScript's method decorators are siblings before the item: start_with_attributes.)
TSNode with_decorators(TSNode def) {
  TSNode parent = ts_node_parent(def);
  if (is_type(parent, "decorated_definition")) return parent;
  if (is_type(parent, "export_statement")) {
    uint32_t n = ts_node_named_child_count(parent);
    for (uint32_t i = 0; i < n; ++i) {
      if (is_type(ts_node_named_child(parent, i), "decorator")) return parent;
    }
  }
  return def;
}

uint32_t start_with_attributes(TSNode def) {
  uint32_t start = ts_node_start_byte(def);
  for (TSNode s = ts_node_prev_named_sibling(def); is_type(s, "attribute_item") || is_type(s, "decorator");
       s = ts_node_prev_named_sibling(s)) {
    start = ts_node_start_byte(s);
  }
  return start;
}

uint32_t row_of(std::string_view text, uint32_t byte) {
  return static_cast<uint32_t>(std::count(text.begin(), text.begin() + std::min<size_t>(byte, text.size()), '\n'));
}

}  // namespace

std::vector<std::string> split_qualified(std::string_view name) {
  std::vector<std::string> parts;
  std::string cur;
  for (size_t i = 0; i < name.size(); ++i) {
    bool sep = name[i] == '.' || (name[i] == ':' && i + 1 < name.size() && name[i + 1] == ':');
    if (!sep) {
      cur.push_back(name[i]);
      continue;
    }
    if (cur.empty()) return {};
    parts.push_back(std::move(cur));
    cur.clear();
    if (name[i] == ':') ++i;
  }
  if (cur.empty()) return {};
  parts.push_back(std::move(cur));
  return parts;
}

std::vector<SymbolTarget> symbol_targets(const LanguageInfo& language, const TSTree* tree, std::string_view text) {
  struct Def {
    uint32_t node_start, node_end;  // the definition node proper (nesting is decided on it)
    SymbolTarget target;
    std::vector<std::string> own;   // its name's components ("n::Point::norm" -> 3)
  };
  std::vector<Def> defs;
  const TSQuery* query = symbol_query(language);
  if (!query || !tree) return {};
  TSQueryCursor* cursor = ts_query_cursor_new();
  ts_query_cursor_exec(cursor, query, ts_tree_root_node(tree));
  TSQueryMatch match;
  while (ts_query_cursor_next_match(cursor, &match)) {
    TSNode name_node{}, def_node{};
    std::string_view capture_kind;
    for (uint16_t i = 0; i < match.capture_count; ++i) {
      uint32_t len = 0;
      const char* cname = ts_query_capture_name_for_id(query, match.captures[i].index, &len);
      std::string_view capture(cname, len);
      if (capture == "name") name_node = match.captures[i].node;
      if (capture.substr(0, 11) == "definition.") {
        def_node = match.captures[i].node;
        capture_kind = capture;
      }
    }
    if (ts_node_is_null(name_node) || ts_node_is_null(def_node)) continue;
    uint32_t ns = ts_node_start_byte(name_node), ne = ts_node_end_byte(name_node);
    if (ne > text.size() || ns > ne) continue;
    Def d;
    d.own = split_qualified(text.substr(ns, ne - ns));
    if (d.own.empty()) continue;
    d.node_start = ts_node_start_byte(def_node);
    d.node_end = ts_node_end_byte(def_node);
    TSNode outer = with_decorators(def_node);
    d.target.kind = kind_of(capture_kind);
    d.target.start_byte = start_with_attributes(outer);
    d.target.end_byte = ts_node_end_byte(outer);
    defs.push_back(std::move(d));
  }
  ts_query_cursor_delete(cursor);
  // Outer definitions first, so that a stack of open definitions gives each one its qualifiers.
  std::sort(defs.begin(), defs.end(), [](const Def& a, const Def& b) {
    return a.node_start != b.node_start ? a.node_start < b.node_start : a.node_end > b.node_end;
  });
  std::vector<SymbolTarget> out;
  std::vector<const Def*> open;
  for (auto& d : defs) {
    while (!open.empty() && open.back()->node_end < d.node_end) open.pop_back();
    if (!open.empty() && open.back()->node_start == d.node_start && open.back()->node_end == d.node_end) {
      continue;  // the same node matched twice (two query patterns)
    }
    for (const Def* o : open) {
      for (const auto& p : o->own) d.target.parts.push_back(p);
      SymbolKind k = o->target.kind;
      if (d.target.kind == SymbolKind::kFunction &&
          (k == SymbolKind::kClass || k == SymbolKind::kStruct || k == SymbolKind::kInterface)) {
        d.target.kind = SymbolKind::kMethod;
      }
    }
    for (const auto& p : d.own) d.target.parts.push_back(p);
    for (size_t i = 0; i < d.target.parts.size(); ++i) {
      d.target.qualified += (i ? "." : "") + d.target.parts[i];
    }
    d.target.line = row_of(text, d.target.start_byte);
    d.target.end_line = row_of(text, d.target.end_byte);
    out.push_back(d.target);
    open.push_back(&d);
  }
  std::sort(out.begin(), out.end(), [](const SymbolTarget& a, const SymbolTarget& b) {
    return a.start_byte != b.start_byte ? a.start_byte < b.start_byte : a.end_byte > b.end_byte;
  });
  return out;
}

std::vector<SymbolTarget> symbol_targets(const LanguageInfo& language, std::string_view text) {
  if (!symbol_query(language)) return {};
  struct ParserDeleter {
    void operator()(TSParser* p) const { ts_parser_delete(p); }
  };
  thread_local std::unique_ptr<TSParser, ParserDeleter> parser(ts_parser_new());
  ts_parser_set_language(parser.get(), language.grammar());
  std::unique_ptr<TSTree, void (*)(TSTree*)> tree(
      ts_parser_parse_string(parser.get(), nullptr, text.data(), static_cast<uint32_t>(text.size())), ts_tree_delete);
  return symbol_targets(language, tree.get(), text);
}

std::vector<const SymbolTarget*> match_symbol(const std::vector<SymbolTarget>& targets,
                                              const std::vector<std::string>& parts) {
  std::vector<const SymbolTarget*> out;
  if (parts.empty()) return out;
  for (const auto& t : targets) {
    if (t.parts.size() < parts.size()) continue;
    if (std::equal(parts.rbegin(), parts.rend(), t.parts.rbegin())) out.push_back(&t);
  }
  return out;
}

int count_syntax_errors(const TSTree* tree) {
  if (!tree) return 0;
  TSNode root = ts_tree_root_node(tree);
  if (!ts_node_has_error(root)) return 0;
  int n = 0;
  TSTreeCursor cursor = ts_tree_cursor_new(root);
  for (;;) {
    TSNode node = ts_tree_cursor_current_node(&cursor);
    if (ts_node_is_error(node) || ts_node_is_missing(node)) ++n;
    // Only subtrees that contain an error are worth entering.
    if (ts_node_has_error(node) && !ts_node_is_error(node) && ts_tree_cursor_goto_first_child(&cursor)) continue;
    bool moved = false;
    while (!moved) {
      if (ts_tree_cursor_goto_next_sibling(&cursor)) {
        moved = true;
      } else if (!ts_tree_cursor_goto_parent(&cursor)) {
        ts_tree_cursor_delete(&cursor);
        return n;
      }
    }
  }
}

}  // namespace latent::lsp::agent
