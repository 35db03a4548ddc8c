#include "lsp/python_rules.h"

#include <cctype>

namespace latent::lsp {
namespace {

std::string_view type_of(TSNode n) { return ts_node_type(n); }

std::string_view text_of(TSNode n, std::string_view text) {
  uint32_t s = ts_node_start_byte(n), e = ts_node_end_byte(n);
  if (s > text.size() || e > text.size() || e < s) return {};
  return text.substr(s, e - s);
}

// f(a=1, 2): after a keyword argument or `**k`, only keyword arguments, `*it` (not after `**k`) and `**k` follow.
const char* argument_order(TSNode node, TSNode* at) {
  bool keyword = false, dict_splat = false;
  const uint32_t n = ts_node_named_child_count(node);
  for (uint32_t i = 0; i < n; ++i) {
    TSNode c = ts_node_named_child(node, i);
    const std::string_view t = type_of(c);
    if (t == "comment") continue;
    if (t == "keyword_argument") {
      keyword = true;
    } else if (t == "dictionary_splat") {
      dict_splat = true;
    } else if (t == "list_splat") {
      if (dict_splat) return *at = c, "positional_after_keyword";
    } else if (keyword || dict_splat) {
      return *at = c, "positional_after_keyword";
    }
  }
  return nullptr;
}

// def f(a=1, b): a parameter without a default after one with a default, before any `*`; nothing after `**k`;
// a bare `*` needs a named parameter after it.
const char* parameter_order(TSNode node, TSNode* at) {
  bool defaulted = false, star = false, dict_star = false, bare_star = false;
  const uint32_t n = ts_node_named_child_count(node);
  for (uint32_t i = 0; i < n; ++i) {
    TSNode c = ts_node_named_child(node, i);
    std::string_view t = type_of(c);
    if (t == "comment") continue;
    if (t == "typed_parameter" && ts_node_named_child_count(c) > 0) {
      const std::string_view inner = type_of(ts_node_named_child(c, 0));
      if (inner == "list_splat_pattern" || inner == "dictionary_splat_pattern") t = inner;
    }
    if (dict_star) return *at = c, "parameter_order";
    if (t == "positional_separator") continue;
    if (t == "keyword_separator") {
      star = bare_star = true;
      continue;
    }
    if (t == "list_splat_pattern") {
      star = true;
      bare_star = false;
      continue;
    }
    if (t == "dictionary_splat_pattern") {
      if (bare_star) return *at = c, "parameter_order";
      dict_star = true;
      continue;
    }
    bare_star = false;
    if (t == "default_parameter" || t == "typed_default_parameter") {
      defaulted = true;
    } else if (defaulted && !star) {
      return *at = c, "parameter_order";
    }
  }
  if (bare_star && n > 0) return *at = ts_node_named_child(node, n - 1), "parameter_order";
  return nullptr;
}

// 0777 (a decimal with leading zeros), 10L (Python 2's long).
bool bad_integer(std::string_view s) {
  if (s.empty()) return false;
  const char last = s.back();
  if (last == 'l' || last == 'L') return true;
  if (last == 'j' || last == 'J' || s.size() < 2 || s[0] != '0') return false;
  if (!std::isdigit(static_cast<unsigned char>(s[1])) && s[1] != '_') return false;  // 0x.., 0o.., 0b..
  for (char c : s) {
    if (c != '0' && c != '_') return true;
  }
  return false;  // 00, 0_0
}

}  // namespace

const char* python_refused_form(TSNode node, std::string_view text, TSNode* at) {
  const std::string_view t = type_of(node);
  *at = node;
  if (t == "argument_list") return argument_order(node, at);
  if (t == "parameters" || t == "lambda_parameters") return parameter_order(node, at);
  if (t == "print_statement" || t == "exec_statement") return "python2_statement";
  if (t == "except_clause" || t == "comparison_operator") {
    const uint32_t n = ts_node_child_count(node);
    for (uint32_t i = 0; i < n; ++i) {
      const std::string_view c = type_of(ts_node_child(node, i));
      if ((t == "except_clause" && c == ",") || c == "<>") return "python2_statement";
      if (c == ":") break;
    }
    return nullptr;
  }
  if (t == "integer") return bad_integer(text_of(node, text)) ? "bad_literal" : nullptr;
  if (t == "string_start") {
    const std::string_view s = text_of(node, text);
    if (!s.empty() && s[0] == '`') return "python2_statement";
    bool u = false, r = false;
    for (char c : s) {
      u |= c == 'u' || c == 'U';
      r |= c == 'r' || c == 'R';
    }
    return u && r ? "bad_literal" : nullptr;
  }
  if (t == "delete_statement" || t == "augmented_assignment") {
    TSNode target = t == "augmented_assignment" ? ts_node_child_by_field_name(node, "left", 4)
                                                 : ts_node_named_child(node, 0);
    if (ts_node_is_null(target)) return nullptr;
    const std::string_view k = type_of(target);
    const bool bad = t == "delete_statement"
                         ? k == "call"
                         : (k == "tuple_pattern" || k == "list_pattern" || k == "pattern_list" || k == "tuple" ||
                            k == "list" || k == "call");
    return bad ? (*at = target, "bad_target") : nullptr;
  }
  return nullptr;
}

}  // namespace latent::lsp
