#include "lsp/agent/agent_tools.h"

#include <tree_sitter/api.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "lsp/agent/symbol_targets.h"
#include "lsp/agent/workspace_files.h"
#include "lsp/gitignore.h"
#include "lsp/uri.h"

namespace latent::lsp::agent {
namespace {

namespace fs = std::filesystem;

ToolOutput fail(const std::string& message) {
  ToolOutput o;
  o.ok = false;
  o.result = {{"error", message}};
  return o;
}

ToolOutput fail(const std::string& code, const std::string& message) {
  ToolOutput o = fail(message);
  o.result["code"] = code;
  return o;
}

std::string str_arg(const Json& args, const char* key, bool* ok, std::string* error) {
  if (!args.contains(key)) {
    *ok = false;
    *error = std::string("missing \"") + key + "\"";
    return "";
  }
  if (!args[key].is_string()) {
    *ok = false;
    *error = std::string("\"") + key + "\": expected a string, found " + args[key].type_name();
    return "";
  }
  return args[key].get<std::string>();
}

int int_arg(const Json& args, const char* key, int fallback, int lo, int hi) {
  if (!args.contains(key) || !args[key].is_number_integer()) return fallback;
  return static_cast<int>(std::clamp<long long>(args[key].get<long long>(), lo, hi));
}

// Walks the workspace below `dir` (canonical, inside `root`), skipping .git, .gitignore'd paths and symlinks;
// calls fn(relative_path, absolute_path, is_dir) until it returns false.
template <typename Fn>
void walk(const std::string& root, const std::string& dir, Fn&& fn) {
  GitIgnore ignore;
  auto read_ignore = [&](const fs::path& d, const std::string& rel) {
    std::ifstream in(d / ".gitignore");
    if (!in) return;
    std::stringstream ss;
    ss << in.rdbuf();
    ignore.add(rel, ss.str());
  };
  // .gitignore files on the way down from the root apply too.
  std::string start_rel = fs::path(dir).lexically_relative(root).generic_string();
  if (start_rel == ".") start_rel.clear();
  read_ignore(root, "");
  {
    std::string acc;
    for (const auto& part : fs::path(start_rel)) {
      acc = acc.empty() ? part.string() : acc + "/" + part.string();
      read_ignore(fs::path(root) / acc, acc);
    }
  }
  std::vector<std::pair<fs::path, std::string>> stack = {{dir, start_rel}};
  std::error_code ec;
  while (!stack.empty()) {
    auto [d, rel] = stack.back();
    stack.pop_back();
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(d, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
         it.increment(ec)) {
      entries.push_back(*it);
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.path() > b.path(); });
    for (const auto& e : entries) {
      std::string name = e.path().filename().string();
      if (name == ".git" || e.is_symlink(ec)) continue;
      std::string child = rel.empty() ? name : rel + "/" + name;
      bool is_dir = e.is_directory(ec);
      if (ignore.ignored(child, is_dir)) continue;
      if (!fn(child, e.path().string(), is_dir)) return;
      if (is_dir) {
        read_ignore(e.path(), child);
        stack.push_back({e.path(), child});
      }
    }
  }
}

// The text to search for a workspace file: the open buffer, else the disk (text files under 1 MiB).
std::optional<std::string> searchable_text(const ToolContext& ctx, const std::string& absolute) {
  if (ctx.documents) {
    std::optional<std::string> live;
    ctx.documents->with_document(path_to_uri(absolute), [&](const Document& d) { live = d.text(); });
    if (live) return live;
  }
  auto text = read_text_file(absolute, 1u << 20);
  if (!text.ok() || looks_binary(std::string_view(*text).substr(0, 8000))) return std::nullopt;
  return std::move(*text);
}

bool is_ident(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$'; }

// Occurrences of `needle` in every file below `dir`: {path, line, text}, at most `max`.
Json search(const ToolContext& ctx, const ConfinedPath& dir, const std::string& needle, bool whole_word, int max,
            bool* truncated) {
  Json out = Json::array();
  auto scan = [&](const std::string& rel, const std::string& abs) {
    auto text = searchable_text(ctx, abs);
    if (!text) return true;
    int line = 0;
    size_t line_start = 0;
    for (size_t p = text->find(needle); p != std::string::npos; p = text->find(needle, p + 1)) {
      if (whole_word && ((p > 0 && is_ident((*text)[p - 1])) ||
                         (p + needle.size() < text->size() && is_ident((*text)[p + needle.size()])))) {
        continue;
      }
      line += static_cast<int>(std::count(text->begin() + line_start, text->begin() + p, '\n'));
      line_start = text->rfind('\n', p);
      line_start = line_start == std::string::npos ? 0 : line_start + 1;
      size_t end = text->find('\n', p);
      std::string snippet = text->substr(line_start, std::min<size_t>((end == std::string::npos ? text->size() : end) - line_start, 200));
      if (static_cast<int>(out.size()) >= max) {
        *truncated = true;
        return false;
      }
      out.push_back({{"path", rel}, {"line", line + 1}, {"text", snippet}});
      p = end == std::string::npos ? text->size() : end;  // one match per line
      if (p >= text->size()) break;
    }
    return true;
  };
  if (fs::is_regular_file(dir.absolute)) {
    scan(dir.relative, dir.absolute);
    return out;
  }
  walk(dir.root, dir.absolute, [&](const std::string& rel, const std::string& abs, bool is_dir) {
    return is_dir || scan(rel, abs);
  });
  return out;
}

ToolOutput read_file(const ToolContext& ctx, const Json& args) {
  bool ok = true;
  std::string error;
  std::string path = str_arg(args, "path", &ok, &error);
  if (!ok) return fail("malformed", "read_file: " + error);
  auto f = current_text(ctx, path);
  if (!f.ok()) return fail("read_file: " + f.error().message);
  if (!f->exists) return fail("not_found", "read_file: " + path + " does not exist");
  if (looks_binary(std::string_view(f->text).substr(0, 8000))) return fail("read_file: " + path + " is a binary file");
  int total = static_cast<int>(std::count(f->text.begin(), f->text.end(), '\n')) +
              (f->text.empty() || f->text.back() == '\n' ? 0 : 1);
  int start = int_arg(args, "startLine", 1, 1, std::max(total, 1));
  int end = int_arg(args, "endLine", std::min(total, start + kMaxReadLines - 1), start, std::max(total, start));
  end = std::min(end, start + kMaxReadLines - 1);
  size_t b = 0;
  for (int l = 1; l < start && b < f->text.size(); ++l) b = f->text.find('\n', b) + 1;
  size_t e = b;
  for (int l = start; l <= end && e < f->text.size(); ++l) {
    size_t nl = f->text.find('\n', e);
    e = nl == std::string::npos ? f->text.size() : nl + 1;
  }
  ToolOutput o;
  o.result = {{"path", f->relative}, {"startLine", start}, {"endLine", end}, {"totalLines", total},
              {"text", f->text.substr(b, e - b)}};
  o.result["version"] = f->version.number ? Json(*f->version.number) : Json(f->version.hash);
  return o;
}

ToolOutput list_files(const ToolContext& ctx, const Json& args) {
  std::string path = args.contains("path") && args["path"].is_string() ? args["path"].get<std::string>() : ".";
  auto dir = confine_path(ctx.roots, path);
  if (!dir.ok()) return fail("path", "list_files: " + dir.error().message);
  if (!fs::is_directory(dir->absolute)) return fail("not_found", "list_files: " + path + " is not a directory");
  int max = int_arg(args, "maxResults", 200, 1, kMaxListed);
  std::vector<std::string> files;
  bool truncated = false;
  walk(dir->root, dir->absolute, [&](const std::string& rel, const std::string&, bool is_dir) {
    if (static_cast<int>(files.size()) >= max) {
      truncated = true;
      return false;
    }
    files.push_back(is_dir ? rel + "/" : rel);
    return true;
  });
  std::sort(files.begin(), files.end());
  ToolOutput o;
  o.result = {{"files", files}, {"truncated", truncated}};
  return o;
}

ToolOutput search_text(const ToolContext& ctx, const Json& args, bool whole_word, const char* key) {
  bool ok = true;
  std::string error;
  std::string query = str_arg(args, key, &ok, &error);
  if (!ok || query.empty()) return fail("malformed", std::string(whole_word ? "references" : "search_text") + ": " +
                                                         (ok ? std::string("\"") + key + "\" is empty" : error));
  std::string path = args.contains("path") && args["path"].is_string() ? args["path"].get<std::string>() : ".";
  auto dir = confine_path(ctx.roots, path);
  if (!dir.ok()) return fail("path", dir.error().message);
  bool truncated = false;
  Json matches = search(ctx, *dir, query, whole_word, int_arg(args, "maxResults", 50, 1, kMaxMatches), &truncated);
  ToolOutput o;
  o.result = {{"matches", matches}, {"truncated", truncated}};
  if (whole_word) o.result["note"] = "textual matches of the identifier, not a semantic analysis";
  return o;
}

// The index knows definitions by their last component; a qualified name (Outer.inner) keeps only those that
// the file's own definitions (its current text, parsed once per file) place inside the named enclosing ones.
bool defined_inside(const ToolContext& ctx, const Symbol& s, const std::vector<std::string>& parts,
                    std::map<std::string, std::vector<SymbolTarget>>& targets_of) {
  auto it = targets_of.find(s.path);
  if (it == targets_of.end()) {
    std::vector<SymbolTarget> targets;
    const LanguageInfo* language = language_by_path(s.path);
    auto f = current_text(ctx, s.path);
    if (language && f.ok() && f->exists) targets = symbol_targets(*language, f->text);
    it = targets_of.emplace(s.path, std::move(targets)).first;
  }
  for (const SymbolTarget* t : match_symbol(it->second, parts)) {
    // The target's range starts at its decorators; the index's at the definition proper. Both end together.
    if (t->end_byte == s.end_byte && t->start_byte <= s.start_byte) return true;
  }
  return false;
}

std::vector<Symbol> lookup(const ToolContext& ctx, const std::string& name) {
  auto parts = split_qualified(name);
  if (parts.empty() || !ctx.index) return {};
  auto found = ctx.index->lookup(parts.back());
  std::vector<Symbol> out;
  std::map<std::string, std::vector<SymbolTarget>> targets_of;
  for (auto& s : found) {
    if (!confine_path(ctx.roots, s.path).ok()) continue;
    if (parts.size() > 1 && !defined_inside(ctx, s, parts, targets_of)) continue;
    out.push_back(std::move(s));
  }
  return out;
}

ToolOutput find_symbol(const ToolContext& ctx, const Json& args, bool with_text) {
  bool ok = true;
  std::string error;
  std::string name = str_arg(args, "name", &ok, &error);
  if (!ok) return fail("malformed", error);
  if (!ctx.index) return fail("find_symbol: no workspace index");
  Json out = Json::array();
  for (const auto& s : lookup(ctx, name)) {
    if (out.size() >= 20) break;
    Json item = {{"path", ctx.index->relative_path(s.path)}, {"line", s.line + 1}, {"endLine", s.end_line + 1},
                 {"kind", symbol_kind_name(s.kind)}, {"signature", s.signature}};
    if (with_text) {
      auto f = current_text(ctx, s.path);
      if (f.ok() && f->exists && s.end_byte <= f->text.size() && s.start_byte <= s.end_byte) {
        std::string text = f->text.substr(s.start_byte, std::min<size_t>(s.end_byte - s.start_byte, 16000));
        item["text"] = text;
        item["version"] = f->version.number ? Json(*f->version.number) : Json(f->version.hash);
      } else {
        item["text"] = s.preview;
      }
    }
    out.push_back(std::move(item));
  }
  ToolOutput o;
  o.result = {{"symbols", out}};
  if (out.empty()) {
    o.ok = false;
    o.result["error"] = "no definition of '" + name + "' in the workspace index";
  }
  return o;
}

ToolOutput edit(const ToolContext& ctx, const Json& args) {
  EditRequest req;
  if (auto e = parse_edit_request(args, &req); !e.ok()) return fail(e.code, "edit refused (" + e.code + "): " + e.message);
  auto f = current_text(ctx, req.path);
  if (!f.ok()) return fail("path", "edit refused (path): " + f.error().message);
  if (!f->exists) return fail("not_found", "edit refused (not_found): " + req.path + " does not exist: use create_file");
  EditOutcome o = check_edit(req, f->text, language_by_path(f->absolute), f->version);
  if (!o.ok()) return fail(o.code, "edit refused (" + o.code + "): " + o.message);
  ProposedEdit p;
  p.relative = f->relative;
  p.absolute = f->absolute;
  p.uri = f->uri;
  p.start_byte = o.start_byte;
  p.end_byte = o.end_byte;
  p.old_text = f->text.substr(o.start_byte, o.end_byte - o.start_byte);
  p.new_text = o.new_text;
  p.before = std::move(f->text);
  p.after = std::move(o.result);
  p.description = o.message;
  p.editor_version = f->version.number;
  ToolOutput out;
  out.result = {{"proposed", o.message}};
  out.edit = std::move(p);
  return out;
}

ToolOutput create_file(const ToolContext& ctx, const Json& args) {
  bool ok = true;
  std::string error;
  std::string path = str_arg(args, "path", &ok, &error);
  std::string content = ok ? str_arg(args, "content", &ok, &error) : "";
  if (!ok) return fail("malformed", "create_file: " + error);
  auto f = current_text(ctx, path);
  if (!f.ok()) return fail("path", "create_file refused (path): " + f.error().message);
  if (f->exists) return fail("exists", "create_file refused: " + path + " exists; use edit to change it");
  if (content.size() > kMaxEditResultBytes) return fail("too_large", "create_file refused: content too large");
  if (const LanguageInfo* lang = language_by_path(f->absolute)) {
    TSParser* parser = ts_parser_new();
    ts_parser_set_language(parser, lang->grammar());
    TSTree* tree = ts_parser_parse_string(parser, nullptr, content.data(), static_cast<uint32_t>(content.size()));
    int errors = count_syntax_errors(tree);
    ts_tree_delete(tree);
    ts_parser_delete(parser);
    if (errors > 0) {
      return fail("syntax", "create_file refused (syntax): the content has " + std::to_string(errors) + " " + lang->id +
                                " syntax error(s); expected none");
    }
  }
  ProposedEdit p;
  p.relative = f->relative;
  p.absolute = f->absolute;
  p.uri = f->uri;
  p.create = true;
  p.new_text = content;
  p.after = content;
  p.description = "create " + f->relative + " (" + std::to_string(content.size()) + " bytes)";
  ToolOutput out;
  out.result = {{"proposed", p.description}};
  out.edit = std::move(p);
  return out;
}

ToolOutput run_command(const ToolContext& ctx, const Json& args) {
  bool ok = true;
  std::string error;
  std::string command = str_arg(args, "command", &ok, &error);
  if (!ok || command.empty()) return fail("malformed", "run_command: " + (ok ? std::string("\"command\" is empty") : error));
  std::string cwd = args.contains("cwd") && args["cwd"].is_string() ? args["cwd"].get<std::string>() : ".";
  auto dir = confine_path(ctx.roots, cwd);
  if (!dir.ok()) return fail("path", "run_command: " + dir.error().message);
  ToolOutput o;
  o.command = Json{{"command", command},
                   {"cwd", dir->absolute},
                   {"timeoutMs", int_arg(args, "timeoutMs", 60000, 1000, 600000)},
                   {"maxOutputBytes", 65536}};
  o.result = {{"requested", command}};
  return o;
}

}  // namespace

Result<FileText> current_text(const ToolContext& ctx, std::string_view path) {
  auto p = confine_path(ctx.roots, path);
  if (!p.ok()) return p.error();
  FileText f;
  f.absolute = p->absolute;
  f.relative = p->relative;
  f.uri = path_to_uri(p->absolute);
  bool open = false;
  if (ctx.documents) {
    open = ctx.documents->with_document(f.uri, [&](const Document& d) {
      f.text = d.text();
      f.version.number = d.version();
    });
  }
  if (!open) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(p->absolute, ec))) {
      f.exists = false;
      f.version.hash = content_version("");
      return f;
    }
    auto text = read_text_file(p->absolute, kMaxEditResultBytes);
    if (!text.ok()) return text.error();
    f.text = std::move(*text);
  }
  f.version.hash = content_version(f.text);
  return f;
}

ToolOutput run_tool(const ToolContext& ctx, const std::string& name, const Json& args) {
  if (!args.is_object()) return fail("malformed", name + ": expected the arguments as a JSON object, found " + args.type_name());
  try {
    if (name == "read_file") return read_file(ctx, args);
    if (name == "list_files") return list_files(ctx, args);
    if (name == "search_text") return search_text(ctx, args, false, "query");
    if (name == "find_symbol") return find_symbol(ctx, args, false);
    if (name == "definition") return find_symbol(ctx, args, true);
    if (name == "references") return search_text(ctx, args, true, "name");
    if (name == "edit") return edit(ctx, args);
    if (name == "create_file") return create_file(ctx, args);
    if (name == "run_command") return run_command(ctx, args);
  } catch (const std::exception& e) {
    return fail(name + " failed: " + e.what());
  }
  std::string names;
  for (const auto& t : tool_definitions()) names += (names.empty() ? "" : ", ") + t.name;
  return fail("unknown_tool", "unknown tool '" + name.substr(0, 80) + "'; expected one of: " + names);
}

const std::vector<chat::Tool>& tool_definitions() {
  static const std::vector<chat::Tool> tools = [] {
    auto obj = [](Json props, std::vector<std::string> required) {
      return Json{{"type", "object"}, {"properties", std::move(props)}, {"required", std::move(required)}}.dump();
    };
    Json s = {{"type", "string"}}, n = {{"type", "integer"}};
    return std::vector<chat::Tool>{
        {"read_file", "Read a file of the workspace (1-based, inclusive line range; at most 400 lines). Returns its "
                      "text and version.",
         obj({{"path", s}, {"startLine", n}, {"endLine", n}}, {"path"})},
        {"list_files", "List the files below a folder of the workspace (respects .gitignore).",
         obj({{"path", s}, {"maxResults", n}}, {})},
        {"search_text", "Find lines containing a literal text in the workspace (respects .gitignore).",
         obj({{"query", s}, {"path", s}, {"maxResults", n}}, {"query"})},
        {"find_symbol", "Find where a function, class or type is defined (name or Outer.inner).",
         obj({{"name", s}}, {"name"})},
        {"definition", "The full text of a symbol's definition.", obj({{"name", s}}, {"name"})},
        {"references", "Lines where an identifier occurs (word-bounded text matches).",
         obj({{"name", s}, {"path", s}, {"maxResults", n}}, {"name"})},
        {"edit", "Replace the definition of `symbol` (Outer.inner, decorators included) or the one occurrence of "
                 "`old` with `new`. Pass the version read_file returned. Refused edits say which check failed.",
         obj({{"path", s}, {"symbol", s}, {"old", s}, {"new", s}, {"version", Json::object()}}, {"path", "new"})},
        {"create_file", "Create a new file with the given content.", obj({{"path", s}, {"content", s}}, {"path", "content"})},
        {"run_command", "Ask the user to run a shell command in the editor's terminal; returns its output.",
         obj({{"command", s}, {"cwd", s}, {"timeoutMs", n}}, {"command"})},
    };
  }();
  return tools;
}

}  // namespace latent::lsp::agent
