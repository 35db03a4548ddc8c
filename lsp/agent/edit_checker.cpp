#include "lsp/agent/edit_checker.h"

#include <tree_sitter/api.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "lsp/agent/symbol_targets.h"
#include "lsp/agent/workspace_files.h"

namespace latent::lsp::agent {
namespace {

using Json = nlohmann::json;

struct TreeDeleter {
  void operator()(TSTree* t) const { ts_tree_delete(t); }
};
using TreePtr = std::unique_ptr<TSTree, TreeDeleter>;

TreePtr parse(const LanguageInfo& language, std::string_view text) {
  struct ParserDeleter {
    void operator()(TSParser* p) const { ts_parser_delete(p); }
  };
  thread_local std::unique_ptr<TSParser, ParserDeleter> parser(ts_parser_new());
  ts_parser_set_language(parser.get(), language.grammar());
  return TreePtr(ts_parser_parse_string(parser.get(), nullptr, text.data(), static_cast<uint32_t>(text.size())));
}

uint32_t line_at(std::string_view text, size_t byte) {
  return static_cast<uint32_t>(std::count(text.begin(), text.begin() + std::min(byte, text.size()), '\n'));
}

std::string_view line_text(std::string_view text, size_t byte) {
  size_t b = text.rfind('\n', byte == 0 ? 0 : byte - 1);
  b = (b == std::string_view::npos || byte == 0) ? 0 : b + 1;
  size_t e = text.find('\n', byte);
  if (e == std::string_view::npos) e = text.size();
  return text.substr(b, std::min<size_t>(e - b, 120));
}

size_t offset_of_line(std::string_view text, int line) {
  size_t p = 0;
  for (int l = 0; l < line; ++l) {
    p = text.find('\n', p);
    if (p == std::string_view::npos) return text.size();
    ++p;
  }
  return p;
}

std::string json_type(const Json& j) { return j.type_name(); }

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// Where `old` was probably meant: the lines whose trimmed text equals old's first non-blank line, trimmed.
std::string near_misses(std::string_view text, std::string_view old) {
  std::string first;
  for (size_t p = 0; p < old.size() && first.empty();) {
    size_t e = old.find('\n', p);
    if (e == std::string_view::npos) e = old.size();
    first = trim(old.substr(p, e - p));
    p = e + 1;
  }
  if (first.empty()) return "";
  std::string lines;
  int n = 0, line = 0;
  for (size_t p = 0; p <= text.size(); ++line) {
    size_t e = text.find('\n', p);
    if (e == std::string_view::npos) e = text.size();
    if (trim(text.substr(p, e - p)) == first) {
      if (n < 3) lines += (n ? ", " : "") + std::to_string(line + 1);
      ++n;
    }
    p = e + 1;
  }
  if (n == 0) return "";
  return "; its first line appears (ignoring indentation) at line " + lines + (n > 3 ? " and more" : "") +
         ": check whitespace, indentation and line endings, or read the file again";
}

// The 0-based line of the first ERROR or MISSING node (-1 when none).
int first_error_line(const TSTree* tree) {
  TSNode node = ts_tree_root_node(tree);
  if (!ts_node_has_error(node)) return -1;
  for (;;) {
    if (ts_node_is_error(node) || ts_node_is_missing(node)) return static_cast<int>(ts_node_start_point(node).row);
    bool found = false;
    uint32_t n = ts_node_child_count(node);
    for (uint32_t i = 0; i < n; ++i) {
      TSNode c = ts_node_child(node, i);
      if (ts_node_has_error(c) || ts_node_is_missing(c)) {
        node = c;
        found = true;
        break;
      }
    }
    if (!found) return static_cast<int>(ts_node_start_point(node).row);
  }
}

struct Target {
  uint32_t start = 0, end = 0;
  std::string description;
};

EditOutcome resolve_old(const EditRequest& req, std::string_view text, Target* out) {
  const std::string& old = *req.old_text;
  std::vector<size_t> at;
  for (size_t p = text.find(old); p != std::string_view::npos; p = text.find(old, p + 1)) {
    at.push_back(p);
    if (at.size() > 50) break;
  }
  if (at.empty()) {
    return refuse("not_found", "`old` (" + std::to_string(old.size()) + " bytes) occurs 0 times in " + req.path +
                                   "; expected exactly 1" + near_misses(text, old));
  }
  if (at.size() > 1) {
    std::string lines;
    for (size_t i = 0; i < at.size() && i < 5; ++i) lines += (i ? ", " : "") + std::to_string(line_at(text, at[i]) + 1);
    return refuse("ambiguous", "`old` occurs " + std::string(at.size() > 50 ? "more than 50" : std::to_string(at.size())) +
                                   " times in " + req.path + " (lines " + lines + (at.size() > 5 ? ", ..." : "") +
                                   "); expected exactly 1: include more surrounding lines to make it unique");
  }
  out->start = static_cast<uint32_t>(at[0]);
  out->end = static_cast<uint32_t>(at[0] + old.size());
  out->description = "the one occurrence of `old` at line " + std::to_string(line_at(text, at[0]) + 1);
  return {};
}

EditOutcome resolve_symbol(const EditRequest& req, std::string_view text, const LanguageInfo* language,
                           const TSTree* tree, Target* out) {
  if (!language || !symbol_query(*language)) {
    return refuse("not_found", "symbol edits need a grammar with definitions; " + req.path + " has " +
                                   (language ? "language " + language->id + ", which has none" : "no known language") +
                                   ": use {\"old\", \"new\"} instead");
  }
  auto parts = split_qualified(req.symbol);
  auto targets = symbol_targets(*language, tree, text);
  auto found = match_symbol(targets, parts);
  if (found.empty()) {
    std::string names;
    for (size_t i = 0; i < targets.size() && i < 20; ++i) names += (i ? ", " : "") + targets[i].qualified;
    return refuse("not_found", "symbol '" + req.symbol + "' is not defined in " + req.path + "; expected one of: " +
                                   (names.empty() ? "(no definitions)" : names + (targets.size() > 20 ? ", ..." : "")));
  }
  if (found.size() > 1) {
    std::string list;
    for (size_t i = 0; i < found.size() && i < 8; ++i) {
      list += (i ? "; " : "") + found[i]->qualified + " (" + symbol_kind_name(found[i]->kind) + ", lines " +
              std::to_string(found[i]->line + 1) + "-" + std::to_string(found[i]->end_line + 1) + ")";
    }
    return refuse("ambiguous", "symbol '" + req.symbol + "' resolves to " + std::to_string(found.size()) +
                                   " definitions in " + req.path + ": " + list +
                                   "; expected exactly 1: qualify it (Outer.inner) or use {\"old\", \"new\"}");
  }
  out->start = found[0]->start_byte;
  out->end = found[0]->end_byte;
  out->description = std::string(symbol_kind_name(found[0]->kind)) + " " + found[0]->qualified + " (lines " +
                     std::to_string(found[0]->line + 1) + "-" + std::to_string(found[0]->end_line + 1) + ")";
  return {};
}

}  // namespace

EditOutcome refuse(std::string code, std::string message) {
  EditOutcome o;
  o.code = std::move(code);
  o.message = std::move(message);
  return o;
}

EditOutcome parse_edit_request(const Json& j, EditRequest* out) {
  constexpr const char* kShape = "expected {\"path\", \"symbol\" or \"old\", \"new\", \"version\"?}";
  if (!j.is_object()) return refuse("malformed", std::string(kShape) + ", found " + json_type(j));
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k != "path" && k != "symbol" && k != "old" && k != "new" && k != "version") {
      return refuse("malformed", "unknown field '" + k.substr(0, 60) + "'; " + kShape);
    }
  }
  auto str = [&](const char* key, std::string* dst) -> EditOutcome {
    const Json& v = j.at(key);
    if (!v.is_string()) return refuse("malformed", std::string("\"") + key + "\": expected a string, found " + json_type(v));
    *dst = v.get<std::string>();
    return {};
  };
  EditRequest r;
  if (!j.contains("path")) return refuse("malformed", std::string("missing \"path\"; ") + kShape);
  if (auto e = str("path", &r.path); !e.ok()) return e;
  if (r.path.empty()) return refuse("malformed", "\"path\": expected a file path, found an empty string");
  bool has_symbol = j.contains("symbol"), has_old = j.contains("old");
  if (has_symbol == has_old) {
    return refuse("malformed", std::string(has_symbol ? "both \"symbol\" and \"old\"" : "neither \"symbol\" nor \"old\"") +
                                   "; expected exactly one of them");
  }
  if (has_symbol) {
    if (auto e = str("symbol", &r.symbol); !e.ok()) return e;
    auto parts = split_qualified(r.symbol);
    // Identifiers (any script), C++ destructors and operators; anything else cannot name a definition, and is
    // refused before the file is parsed.
    auto plausible = [](const std::string& part) {
      if (part.size() > 200) return false;
      if (part.rfind("operator", 0) == 0) return true;
      for (unsigned char c : part) {
        if (!(std::isalnum(c) || c == '_' || c == '$' || c == '~' || c >= 0x80)) return false;
      }
      return true;
    };
    if (parts.empty() || !std::all_of(parts.begin(), parts.end(), plausible)) {
      return refuse("malformed", "\"symbol\": expected a name like Outer.inner, found '" + r.symbol.substr(0, 80) + "'" +
                                     (r.symbol.size() > 80 ? "..." : ""));
    }
  } else {
    std::string old;
    if (auto e = str("old", &old); !e.ok()) return e;
    if (old.empty()) return refuse("malformed", "\"old\": expected the text to replace, found an empty string");
    r.old_text = std::move(old);
  }
  if (!j.contains("new")) return refuse("malformed", std::string("missing \"new\"; ") + kShape);
  if (auto e = str("new", &r.new_text); !e.ok()) return e;
  if (j.contains("version")) {
    const Json& v = j["version"];
    if (v.is_number_integer()) {
      // An unsigned above INT64_MAX would wrap negative in get<int64_t>: refused before the cast.
      const bool huge = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT32_MAX);
      auto n = huge ? int64_t{0} : v.get<int64_t>();
      if (huge || n < INT32_MIN || n > INT32_MAX) return refuse("malformed", "\"version\": expected a 32-bit integer, found " + v.dump());
      r.version_number = static_cast<int>(n);
    } else if (v.is_string()) {
      r.version_hash = v.get<std::string>();
    } else {
      return refuse("malformed", "\"version\": expected a document version (number) or a content version (\"h:...\"), "
                                 "found " + json_type(v));
    }
  }
  *out = std::move(r);
  return {};
}

EditOutcome check_edit(const EditRequest& req, std::string_view text, const LanguageInfo* language,
                       const CurrentVersion& current) {
  if (text.find('\0') != std::string_view::npos) {
    return refuse("path", req.path + ": expected a text file, found a NUL byte (a binary file)");
  }
  if (req.version_number) {
    if (!current.number) {
      return refuse("stale", "version " + std::to_string(*req.version_number) + " is an editor document version, but " +
                                 req.path + " is not open in the editor; its current version is \"" + current.hash +
                                 "\": read it again");
    }
    if (*req.version_number != *current.number) {
      return refuse("stale", req.path + ": expected version " + std::to_string(*req.version_number) + ", found version " +
                                 std::to_string(*current.number) + " (it changed since it was read): read it again");
    }
  }
  if (req.version_hash && *req.version_hash != current.hash) {
    return refuse("stale", req.path + ": expected content version \"" + req.version_hash->substr(0, 40) +
                               "\", found \"" + current.hash + "\" (it changed since it was read): read it again");
  }
  TreePtr before;  // a symbol needs the tree to resolve; `old` is found first, and parsed only then
  if (language && !req.old_text) before = parse(*language, text);
  Target target;
  EditOutcome resolved = req.old_text ? resolve_old(req, text, &target)
                                      : resolve_symbol(req, text, language, before.get(), &target);
  if (!resolved.ok()) return resolved;
  size_t size = text.size() - (target.end - target.start) + req.new_text.size();
  if (size > kMaxEditResultBytes) {
    return refuse("too_large", req.path + ": the result would be " + std::to_string(size) + " bytes; expected at most " +
                                   std::to_string(kMaxEditResultBytes));
  }
  EditOutcome o;
  o.path = req.path;
  o.start_byte = target.start;
  o.end_byte = target.end;
  o.line = line_at(text, target.start);
  o.end_line = line_at(text, target.end);
  o.new_text = req.new_text;
  o.result.reserve(size);
  o.result.append(text.substr(0, target.start)).append(req.new_text).append(text.substr(target.end));
  // Every byte before the range and after it must be the original's, at the same distance from either end.
  size_t tail = text.size() - target.end;
  if (o.result.size() != size || o.result.compare(0, target.start, text.substr(0, target.start)) != 0 ||
      o.result.compare(o.result.size() - tail, tail, text.substr(target.end)) != 0) {
    return refuse("outside_range", req.path + ": bytes outside " + target.description + " would change; refused");
  }
  if (language) {
    if (!before) before = parse(*language, text);
    TreePtr after = parse(*language, o.result);
    o.errors_before = count_syntax_errors(before.get());
    o.errors_after = count_syntax_errors(after.get());
    if (o.errors_after > o.errors_before) {
      int line = first_error_line(after.get());
      return refuse("syntax", req.path + ": replacing " + target.description + " gives " +
                                  std::to_string(o.errors_after) + " " + language->id + " syntax error(s), the original has " +
                                  std::to_string(o.errors_before) + "; expected no more. First error at line " +
                                  std::to_string(line + 1) + ": '" + std::string(line_text(o.result, offset_of_line(o.result, line))) + "'");
    }
  } else {
    o.errors_before = o.errors_after = -1;
  }
  o.message = "replaced " + target.description + " in " + req.path + " (" + std::to_string(target.end - target.start) +
              " bytes -> " + std::to_string(req.new_text.size()) + ")";
  return o;
}

EditOutcome apply_edit_json(const std::vector<std::string>& roots, std::string_view json_text) {
  Json j;
  try {
    j = Json::parse(json_text);
  } catch (const Json::exception& e) {
    return refuse("malformed", std::string("expected a JSON edit, found invalid JSON: ") + e.what());
  }
  EditRequest req;
  if (auto e = parse_edit_request(j, &req); !e.ok()) return e;
  auto path = confine_path(roots, req.path);
  if (!path.ok()) return refuse(path.error().code == ErrorCode::kNotFound ? "not_found" : "path", path.error().message);
  auto text = read_text_file(path->absolute, kMaxEditResultBytes);
  if (!text.ok()) {
    ErrorCode c = text.error().code;
    return refuse(c == ErrorCode::kNotFound ? "not_found" : c == ErrorCode::kIo ? "io" : "path", text.error().message);
  }
  CurrentVersion current;
  current.hash = content_version(*text);
  EditOutcome o = check_edit(req, *text, language_by_path(path->absolute), current);
  if (!o.ok()) return o;
  if (auto st = write_file_atomic(path->absolute, o.result, &*text); !st.ok()) {
    return refuse(st.error().code == ErrorCode::kCancelled ? "stale" : "io", st.error().message);
  }
  return o;
}

Json outcome_json(const EditOutcome& o) {
  if (!o.ok()) return {{"error", {{"code", o.code}, {"message", o.message}}}};
  Json out = {{"ok", true},
              {"path", o.path},
              {"message", o.message},
              {"range", {{"startByte", o.start_byte}, {"endByte", o.end_byte}, {"startLine", o.line}, {"endLine", o.end_line}}},
              {"version", content_version(o.result)}};
  if (o.errors_before >= 0) out["syntaxErrors"] = {{"before", o.errors_before}, {"after", o.errors_after}};
  return out;
}

}  // namespace latent::lsp::agent
