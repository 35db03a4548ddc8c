#include "lsp/document_store.h"

#include <tree_sitter/api.h>

#include "lsp/uri.h"

namespace latent::lsp {

namespace {

// The tree-sitter point (row, byte column) of byte `offset`.
TSPoint point_at(std::string_view text, size_t offset) {
  size_t line_start = offset == 0 ? std::string_view::npos : text.rfind('\n', offset - 1);
  line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
  uint32_t row = 0;
  for (size_t i = 0; i < line_start; ++i) row += text[i] == '\n';
  return TSPoint{row, static_cast<uint32_t>(offset - line_start)};
}

// The point after inserting `inserted` at `start`.
TSPoint point_after(TSPoint start, std::string_view inserted) {
  size_t nl = inserted.rfind('\n');
  if (nl == std::string_view::npos) {
    return TSPoint{start.row, start.column + static_cast<uint32_t>(inserted.size())};
  }
  uint32_t rows = 0;
  for (char c : inserted) rows += c == '\n';
  return TSPoint{start.row + rows, static_cast<uint32_t>(inserted.size() - nl - 1)};
}

const LanguageInfo* pick_language(const std::string& language_id, const std::string& path) {
  const LanguageInfo* lang = language_by_id(language_id);
  return lang ? lang : language_by_path(path);
}

}  // namespace

Snapshot::~Snapshot() {
  if (tree) ts_tree_delete(tree);
}

Document::Document(std::string uri, std::string language_id, int version, std::string text, bool exact_trees)
    : uri_(std::move(uri)),
      path_(uri_to_path(uri_)),
      language_id_(std::move(language_id)),
      exact_trees_(exact_trees),
      version_(version),
      text_(std::make_shared<std::string>(std::move(text))),
      last_edit_(std::chrono::steady_clock::now()) {
  language_ = pick_language(language_id_, path_);
  if (language_) {
    parser_ = ts_parser_new();
    if (!ts_parser_set_language(parser_, language_->grammar())) {
      ts_parser_delete(parser_);
      parser_ = nullptr;
      language_ = nullptr;
    }
  }
  parse();
}

Document::~Document() {
  if (tree_) ts_tree_delete(tree_);
  if (parser_) ts_parser_delete(parser_);
}

// tree_ is the old tree, edited (or null). tree-sitter's incremental parse does not promise the fresh parse's tree
// where there are syntax errors: reusing the old tree's subtrees, it can recover from an error otherwise ("Rb- x"
// left inside an ERROR where a fresh parse reads an expression; a binary_operator where a fresh parse reads a
// comparison_operator: both found by the didchange fuzz target, whose invariant is that the tree always equals a
// fresh parse; marking the old error regions as changed was not enough). With exact trees, a text that had or has
// an error is parsed afresh: an incremental parse only from an error-free tree, kept only when its result is
// error-free too.
void Document::parse() {
  if (!parser_) return;
  const auto size = static_cast<uint32_t>(text_->size());
  const bool old_had_error = tree_ && ts_node_has_error(ts_tree_root_node(tree_));
  TSTree* next = ts_parser_parse_string(parser_, exact_trees_ && old_had_error ? nullptr : tree_, text_->data(), size);
  if (exact_trees_ && tree_ && !old_had_error && next && ts_node_has_error(ts_tree_root_node(next))) {
    ts_tree_delete(next);
    next = ts_parser_parse_string(parser_, nullptr, text_->data(), size);
  }
  if (tree_) ts_tree_delete(tree_);
  tree_ = next;
}

Status Document::apply(const std::vector<ContentChange>& changes, int version, PositionEncoding enc) {
  // All or nothing: the changes edit a copy of the text (copy-on-write: snapshots handed out earlier keep
  // theirs) and a copy of the tree; the document takes both only when every change applied. A bad change in
  // the middle leaves text, tree and version as they were, so the tree always describes the text.
  auto text = std::make_shared<std::string>(*text_);
  TSTree* tree = tree_ ? ts_tree_copy(tree_) : nullptr;
  size_t last_edit_offset = last_edit_offset_;
  for (const auto& change : changes) {
    if (!change.range) {
      *text = change.text;
      if (tree) {
        ts_tree_delete(tree);
        tree = nullptr;
      }
      last_edit_offset = 0;
      continue;
    }
    const Range& r = *change.range;
    if (r.end.line < r.start.line || (r.end.line == r.start.line && r.end.character < r.start.character)) {
      if (tree) ts_tree_delete(tree);
      return make_error(ErrorCode::kInvalidArgument,
                        "didChange: expected range.start <= range.end, found " + std::to_string(r.start.line) +
                            ":" + std::to_string(r.start.character) + " > " + std::to_string(r.end.line) + ":" +
                            std::to_string(r.end.character) + " (no change of this notification was applied)");
    }
    size_t start = offset_of(*text, r.start, enc);
    size_t end = offset_of(*text, r.end, enc);
    if (end < start) end = start;
    if (tree) {
      TSInputEdit edit;
      edit.start_byte = static_cast<uint32_t>(start);
      edit.old_end_byte = static_cast<uint32_t>(end);
      edit.new_end_byte = static_cast<uint32_t>(start + change.text.size());
      edit.start_point = point_at(*text, start);
      edit.old_end_point = point_at(*text, end);
      edit.new_end_point = point_after(edit.start_point, change.text);
      ts_tree_edit(tree, &edit);
    }
    text->replace(start, end - start, change.text);
    last_edit_offset = start + change.text.size();
  }
  if (tree_) ts_tree_delete(tree_);
  tree_ = tree;
  text_ = std::move(text);
  version_ = version;
  last_edit_offset_ = last_edit_offset;
  last_edit_ = std::chrono::steady_clock::now();
  parse();
  return Status::Ok();
}

std::unique_ptr<Snapshot> Document::snapshot() const {
  auto s = std::make_unique<Snapshot>();
  s->uri = uri_;
  s->path = path_;
  s->language_id = language_id_;
  s->language = language_;
  s->version = version_;
  s->text = text_;
  s->tree = tree_ ? ts_tree_copy(tree_) : nullptr;
  return s;
}

Status DocumentStore::open(const std::string& uri, const std::string& language_id, int version,
                           std::string text) {
  auto doc = std::make_unique<Document>(uri, language_id, version, std::move(text), exact_trees_);
  std::lock_guard<std::mutex> lock(mu_);
  docs_[uri] = std::move(doc);
  return Status::Ok();
}

Status DocumentStore::change(const std::string& uri, int version, const std::vector<ContentChange>& changes,
                             PositionEncoding enc) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = docs_.find(uri);
  if (it == docs_.end()) {
    return make_error(ErrorCode::kNotFound, "didChange: expected an open document, found none for " + uri);
  }
  return it->second->apply(changes, version, enc);
}

Status DocumentStore::close(const std::string& uri) {
  std::lock_guard<std::mutex> lock(mu_);
  if (docs_.erase(uri) == 0) {
    return make_error(ErrorCode::kNotFound, "didClose: expected an open document, found none for " + uri);
  }
  return Status::Ok();
}

std::unique_ptr<Snapshot> DocumentStore::snapshot(const std::string& uri) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = docs_.find(uri);
  return it == docs_.end() ? nullptr : it->second->snapshot();
}

std::vector<std::unique_ptr<Snapshot>> DocumentStore::all_snapshots() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::unique_ptr<Snapshot>> out;
  for (const auto& [uri, doc] : docs_) out.push_back(doc->snapshot());
  return out;
}

size_t DocumentStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return docs_.size();
}

}  // namespace latent::lsp
