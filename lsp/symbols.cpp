#include "lsp/symbols.h"

#include <tree_sitter/api.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "kernels/base/log.h"

namespace latent::lsp {

const char* symbol_kind_name(SymbolKind kind) {
  switch (kind) {
    case SymbolKind::kFunction: return "function";
    case SymbolKind::kMethod: return "method";
    case SymbolKind::kClass: return "class";
    case SymbolKind::kStruct: return "struct";
    case SymbolKind::kInterface: return "interface";
    case SymbolKind::kType: return "type";
    case SymbolKind::kEnum: return "enum";
    case SymbolKind::kModule: return "module";
  }
  return "symbol";
}

namespace {

// Captures: @name, and @definition.<kind> on the whole definition.
constexpr const char* kPython = R"(
(class_definition name: (identifier) @name) @definition.class
(function_definition name: (identifier) @name) @definition.function
)";

#define LATENT_JS_COMMON                                                                              \
  "(class_declaration name: (_) @name) @definition.class\n"                                          \
  "(method_definition name: (property_identifier) @name) @definition.method\n"                       \
  "(function_declaration name: (identifier) @name) @definition.function\n"                           \
  "(generator_function_declaration name: (identifier) @name) @definition.function\n"                 \
  "(lexical_declaration (variable_declarator name: (identifier) @name"                                \
  " value: [(arrow_function) (function_expression)])) @definition.function\n"

constexpr const char* kJavascript = LATENT_JS_COMMON;

constexpr const char* kTypescript = LATENT_JS_COMMON R"(
(abstract_class_declaration name: (type_identifier) @name) @definition.class
(interface_declaration name: (type_identifier) @name) @definition.interface
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.enum
(function_signature name: (identifier) @name) @definition.function
)";

constexpr const char* kC = R"(
(function_definition declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator
  declarator: (identifier) @name))) @definition.function
(declaration declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(struct_specifier name: (type_identifier) @name body: (_)) @definition.struct
(enum_specifier name: (type_identifier) @name body: (_)) @definition.enum
(type_definition declarator: (type_identifier) @name) @definition.type
)";

constexpr const char* kCpp = R"(
(function_definition declarator: (function_declarator
  declarator: [(identifier) (field_identifier) (qualified_identifier) (destructor_name)] @name)) @definition.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator
  declarator: [(identifier) (field_identifier) (qualified_identifier)] @name))) @definition.function
(function_definition declarator: (reference_declarator (function_declarator
  declarator: [(identifier) (field_identifier) (qualified_identifier)] @name))) @definition.function
(declaration declarator: (function_declarator declarator: [(identifier) (qualified_identifier)] @name)) @definition.function
(field_declaration declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method
(class_specifier name: (type_identifier) @name body: (_)) @definition.class
(struct_specifier name: (type_identifier) @name body: (_)) @definition.struct
(enum_specifier name: (type_identifier) @name body: (_)) @definition.enum
(type_definition declarator: (type_identifier) @name) @definition.type
(alias_declaration name: (type_identifier) @name) @definition.type
)";

constexpr const char* kGo = R"(
(function_declaration name: (identifier) @name) @definition.function
(method_declaration name: (field_identifier) @name) @definition.method
(type_spec name: (type_identifier) @name) @definition.type
)";

constexpr const char* kRust = R"(
(function_item name: (identifier) @name) @definition.function
(function_signature_item name: (identifier) @name) @definition.function
(struct_item name: (type_identifier) @name) @definition.struct
(enum_item name: (type_identifier) @name) @definition.enum
(trait_item name: (type_identifier) @name) @definition.interface
(type_item name: (type_identifier) @name) @definition.type
(mod_item name: (identifier) @name) @definition.module
)";

constexpr const char* kJava = R"(
(class_declaration name: (identifier) @name) @definition.class
(interface_declaration name: (identifier) @name) @definition.interface
(enum_declaration name: (identifier) @name) @definition.enum
(record_declaration name: (identifier) @name) @definition.class
(method_declaration name: (identifier) @name) @definition.method
(constructor_declaration name: (identifier) @name) @definition.method
)";

constexpr const char* kBash = R"(
(function_definition name: (word) @name) @definition.function
)";

const char* query_source(const std::string& id) {
  if (id == "python") return kPython;
  if (id == "javascript" || id == "javascriptreact") return kJavascript;
  if (id == "typescript" || id == "typescriptreact") return kTypescript;
  if (id == "c") return kC;
  if (id == "cpp") return kCpp;
  if (id == "go") return kGo;
  if (id == "rust") return kRust;
  if (id == "java") return kJava;
  if (id == "shellscript") return kBash;
  return nullptr;
}

struct QueryCache {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<TSQuery, void (*)(TSQuery*)>> queries;
  std::map<std::string, std::string> errors;
};

QueryCache& cache() {
  static QueryCache c;
  return c;
}

const TSQuery* compile(const LanguageInfo& language, std::string* error) {
  QueryCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.queries.find(language.id);
  if (it != c.queries.end()) return it->second.get();
  auto err = c.errors.find(language.id);
  if (err != c.errors.end()) {
    if (error) *error = err->second;
    return nullptr;
  }
  const char* src = query_source(language.id);
  if (!src) return nullptr;
  uint32_t error_offset = 0;
  TSQueryError error_type = TSQueryErrorNone;
  TSQuery* q = ts_query_new(language.grammar(), src, static_cast<uint32_t>(std::strlen(src)), &error_offset,
                            &error_type);
  if (!q) {
    std::string msg = "symbol query for " + language.id + ": expected a valid query, found error " +
                      std::to_string(static_cast<int>(error_type)) + " at offset " +
                      std::to_string(error_offset) + " near '" +
                      std::string(src + error_offset, std::min<size_t>(40, std::strlen(src + error_offset))) + "'";
    LATENT_LOG_ERROR("%s", msg.c_str());
    c.errors[language.id] = msg;
    if (error) *error = msg;
    return nullptr;
  }
  auto [ins, _] = c.queries.emplace(language.id, std::unique_ptr<TSQuery, void (*)(TSQuery*)>(q, ts_query_delete));
  return ins->second.get();
}

SymbolKind kind_from_capture(std::string_view capture) {
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

bool is_class_like(const char* type) {
  return std::strstr(type, "class") != nullptr || std::strcmp(type, "impl_item") == 0 ||
         std::strcmp(type, "struct_specifier") == 0 || std::strcmp(type, "interface_declaration") == 0 ||
         std::strcmp(type, "trait_item") == 0;
}

// The byte where a definition's body starts (or its end when it has none).
uint32_t body_start(TSNode node) {
  TSNode body = ts_node_child_by_field_name(node, "body", 4);
  if (!ts_node_is_null(body)) return ts_node_start_byte(body);
  // C/C++ function definitions keep the body under "body" too; declarations have none.
  return ts_node_end_byte(node);
}

std::string last_component(std::string_view name) {
  size_t p = name.rfind("::");
  if (p != std::string_view::npos) name = name.substr(p + 2);
  p = name.rfind('.');
  if (p != std::string_view::npos) name = name.substr(p + 1);
  return std::string(name);
}

// The definition's first lines, from the start of its first line (to keep indentation).
std::string preview_of(std::string_view text, uint32_t start, uint32_t end) {
  size_t line_start = start == 0 ? std::string_view::npos : text.rfind('\n', start - 1);
  line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
  size_t pos = line_start;
  for (int lines = 0; lines < kPreviewLines && pos < end; ++lines) {
    size_t nl = text.find('\n', pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  pos = std::min<size_t>({pos, static_cast<size_t>(end), line_start + kPreviewBytes, text.size()});
  std::string out(text.substr(line_start, pos - line_start));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace

std::string header_text(std::string_view text, uint32_t start_byte, uint32_t body_start_byte) {
  constexpr size_t kMax = 240;
  std::string out;
  bool space = false;
  for (uint32_t i = start_byte; i < body_start_byte && i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
    if (out.size() >= kMax) break;
  }
  while (!out.empty() && (out.back() == '{' || out.back() == ' ')) out.pop_back();
  return out;
}

const TSQuery* symbol_query(const LanguageInfo& language) { return compile(language, nullptr); }

Status check_symbol_queries() {
  for (const auto& l : languages()) {
    std::string error;
    if (!compile(l, &error) && !error.empty()) return make_error(ErrorCode::kInternal, error);
  }
  return Status::Ok();
}

std::vector<Symbol> extract_symbols(const LanguageInfo& language, const TSTree* tree, std::string_view text,
                                    const std::string& path) {
  std::vector<Symbol> out;
  const TSQuery* query = symbol_query(language);
  if (!query || !tree) return out;
  TSQueryCursor* cursor = ts_query_cursor_new();
  ts_query_cursor_exec(cursor, query, ts_tree_root_node(tree));
  TSQueryMatch match;
  while (ts_query_cursor_next_match(cursor, &match)) {
    TSNode name_node{}, def_node{};
    std::string_view def_capture;
    for (uint16_t i = 0; i < match.capture_count; ++i) {
      uint32_t len = 0;
      const char* cname = ts_query_capture_name_for_id(query, match.captures[i].index, &len);
      std::string_view capture(cname, len);
      if (capture == "name") {
        name_node = match.captures[i].node;
      } else if (capture.substr(0, 11) == "definition.") {
        def_node = match.captures[i].node;
        def_capture = capture;
      }
    }
    if (ts_node_is_null(name_node) || ts_node_is_null(def_node)) continue;
    Symbol s;
    s.name = last_component(
        text.substr(ts_node_start_byte(name_node), ts_node_end_byte(name_node) - ts_node_start_byte(name_node)));
    s.kind = kind_from_capture(def_capture);
    if (s.kind == SymbolKind::kFunction) {
      for (TSNode p = ts_node_parent(def_node); !ts_node_is_null(p); p = ts_node_parent(p)) {
        if (is_class_like(ts_node_type(p))) {
          s.kind = SymbolKind::kMethod;
          break;
        }
      }
    }
    s.path = path;
    s.start_byte = ts_node_start_byte(def_node);
    s.end_byte = ts_node_end_byte(def_node);
    s.line = ts_node_start_point(def_node).row;
    s.end_line = ts_node_end_point(def_node).row;
    s.signature = header_text(text, s.start_byte, body_start(def_node));
    s.preview = preview_of(text, s.start_byte, s.end_byte);
    out.push_back(std::move(s));
  }
  ts_query_cursor_delete(cursor);
  return out;
}

std::vector<ScopeHeader> enclosing_scopes(const TSTree* tree, std::string_view text, uint32_t byte_offset) {
  std::vector<ScopeHeader> out;
  if (!tree) return out;
  TSNode node = ts_node_descendant_for_byte_range(ts_tree_root_node(tree), byte_offset, byte_offset);
  for (; !ts_node_is_null(node); node = ts_node_parent(node)) {
    TSNode body = ts_node_child_by_field_name(node, "body", 4);
    if (ts_node_is_null(body)) continue;
    if (byte_offset < ts_node_start_byte(body)) continue;  // the cursor is in the header itself
    ScopeHeader h;
    h.start_byte = ts_node_start_byte(node);
    h.line = ts_node_start_point(node).row;
    h.text = header_text(text, h.start_byte, ts_node_start_byte(body));
    if (!h.text.empty()) out.insert(out.begin(), std::move(h));
  }
  return out;
}

std::vector<ImportLine> imports(const TSTree* tree, std::string_view text) {
  static const char* kTypes[] = {"import_statement", "import_from_statement", "future_import_statement",
                                 "import_declaration", "preproc_include", "use_declaration",
                                 "package_clause", "package_declaration", "extern_crate_declaration"};
  std::vector<ImportLine> out;
  if (!tree) return out;
  TSNode root = ts_tree_root_node(tree);
  uint32_t n = ts_node_named_child_count(root);
  for (uint32_t i = 0; i < n; ++i) {
    TSNode c = ts_node_named_child(root, i);
    const char* type = ts_node_type(c);
    for (const char* t : kTypes) {
      if (std::strcmp(type, t) == 0) {
        ImportLine line;
        line.start_byte = ts_node_start_byte(c);
        line.end_byte = ts_node_end_byte(c);
        line.line = ts_node_start_point(c).row;
        line.text = std::string(text.substr(line.start_byte, line.end_byte - line.start_byte));
        while (!line.text.empty() && (line.text.back() == '\n' || line.text.back() == '\r')) line.text.pop_back();
        out.push_back(std::move(line));
        break;
      }
    }
  }
  return out;
}

}  // namespace latent::lsp
