#pragma once
// Open documents: uri -> {text, version, tree-sitter tree}. Each change edits the old tree (ts_tree_edit) and
// re-parses incrementally, on the request path (clangd's DraftStore plus the parse).
//
// The tree after any sequence of changes equals a fresh parse of the text (the didchange fuzz target's
// invariant). tree-sitter alone does not promise that where the text has syntax errors: reusing the old tree's
// subtrees, its incremental parse can recover from an error otherwise than a fresh parse. So with exact trees (the
// default) a text that had or has an error is parsed afresh (Document::parse). The cost is a whole parse per change
// while the text is broken, as it is for most keystrokes of a statement being typed: bench/lsp_bench prints both
// ways side by side. exact_trees = false keeps tree-sitter's own incremental result (text and positions are still
// exact; only the recovery from errors may differ from a fresh parse's).
//
// Thread-safety: DocumentStore's methods are thread-safe; a Document is mutated only through the store, and
// readers on other threads take a Snapshot (immutable text + a tree copy).
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernels/base/result.h"
#include "lsp/languages.h"
#include "lsp/positions.h"

struct TSTree;
struct TSParser;

namespace latent::lsp {

struct ContentChange {
  std::optional<Range> range;  // none: the text replaces the whole document
  std::string text;
};

// An immutable view of a document at one version; owns a copy of the tree (ts_tree_copy is cheap).
struct Snapshot {
  Snapshot() = default;
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  ~Snapshot();
  std::string uri;
  std::string path;
  std::string language_id;
  const LanguageInfo* language = nullptr;  // nullptr: no grammar, no tree
  int version = 0;
  std::shared_ptr<const std::string> text;
  TSTree* tree = nullptr;
};

class Document {
 public:
  Document(std::string uri, std::string language_id, int version, std::string text, bool exact_trees = true);
  ~Document();
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  // Applies changes in order, editing the tree for each, then re-parses once. All or nothing: on an error
  // (a reversed range) the document keeps its text, tree and version.
  Status apply(const std::vector<ContentChange>& changes, int version, PositionEncoding enc);

  const std::string& uri() const { return uri_; }
  const std::string& path() const { return path_; }
  const std::string& language_id() const { return language_id_; }
  const LanguageInfo* language() const { return language_; }
  int version() const { return version_; }
  const std::string& text() const { return *text_; }
  TSTree* tree() const { return tree_; }
  std::chrono::steady_clock::time_point last_edit() const { return last_edit_; }
  size_t last_edit_offset() const { return last_edit_offset_; }
  std::unique_ptr<Snapshot> snapshot() const;

 private:
  void parse();

  std::string uri_, path_, language_id_;
  bool exact_trees_ = true;
  const LanguageInfo* language_ = nullptr;
  int version_ = 0;
  std::shared_ptr<std::string> text_;
  TSParser* parser_ = nullptr;
  TSTree* tree_ = nullptr;
  std::chrono::steady_clock::time_point last_edit_;
  size_t last_edit_offset_ = 0;
};

class DocumentStore {
 public:
  explicit DocumentStore(bool exact_trees = true) : exact_trees_(exact_trees) {}
  Status open(const std::string& uri, const std::string& language_id, int version, std::string text);
  Status change(const std::string& uri, int version, const std::vector<ContentChange>& changes,
                PositionEncoding enc);
  Status close(const std::string& uri);
  std::unique_ptr<Snapshot> snapshot(const std::string& uri) const;  // nullptr when not open
  std::vector<std::unique_ptr<Snapshot>> all_snapshots() const;
  // Runs `fn` on the live document under the store's lock (for cheap reads without copying).
  template <typename Fn>
  bool with_document(const std::string& uri, Fn&& fn) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = docs_.find(uri);
    if (it == docs_.end()) return false;
    fn(*it->second);
    return true;
  }
  size_t size() const;

 private:
  bool exact_trees_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Document>> docs_;
};

}  // namespace latent::lsp
