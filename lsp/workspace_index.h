#pragma once
// The workspace on disk as a symbol table: a background thread walks each root (respecting .gitignore,
// skipping binary and huge files and files without a grammar), parses with tree-sitter and extracts
// symbols (symbols.h). Open documents update their own entries from their live tree.
//
// Thread-safety: all public methods are thread-safe. The walk runs on one low-priority worker thread.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kernels/base/result.h"
#include "lsp/document_store.h"
#include "lsp/symbols.h"

struct TSTree;

namespace latent::lsp {

struct IndexOptions {
  size_t max_file_bytes = 1 << 20;  // bigger files are skipped (generated code, data)
  size_t max_files = 100000;        // per root; the walk stops there and logs it
  bool background = true;           // false: no worker thread; tests and the bench call index_now
};

struct IndexStats {
  size_t files = 0;           // parsed and indexed
  size_t bytes = 0;           // of the parsed files
  size_t symbols = 0;
  size_t skipped_ignored = 0; // files and directories under .gitignore
  size_t skipped_binary = 0;
  size_t skipped_large = 0;
  size_t skipped_unknown = 0; // no grammar for the extension
  double seconds = 0;
};

class WorkspaceIndex {
 public:
  explicit WorkspaceIndex(IndexOptions options = {});
  ~WorkspaceIndex();
  WorkspaceIndex(const WorkspaceIndex&) = delete;
  WorkspaceIndex& operator=(const WorkspaceIndex&) = delete;

  // Queues a walk of `dir` (background) — or walks it now when options.background is false.
  void add_root(const std::string& dir);
  void remove_root(const std::string& dir);
  // A file changed or appeared on disk (workspace/didChangeWatchedFiles): re-index it in the background.
  void file_changed(const std::string& path);
  void file_deleted(const std::string& path);
  // An open document's symbols, from its live tree (called from the request path; no disk access).
  void update_document(const std::string& path, const LanguageInfo& language, const TSTree* tree,
                       std::string_view text);

  // The same, later on the worker, from a snapshot; a newer snapshot of the same path replaces a queued one.
  void update_document_async(std::shared_ptr<const Snapshot> doc);

  // Walks `dir` on the calling thread; returns what it did.
  IndexStats index_now(const std::string& dir);

  std::vector<Symbol> lookup(std::string_view name) const;
  std::vector<Symbol> symbols_in(const std::string& path) const;
  std::vector<std::string> roots() const;
  // True when `path` (absolute, normalised) is a root or lies under one.
  bool contains(const std::string& path) const;
  // The path relative to the root that holds it (for prompt headers), or the path itself.
  std::string relative_path(const std::string& path) const;
  IndexStats stats() const;
  // Blocks until the worker has nothing queued, or `timeout_ms` passed. True when idle.
  bool wait_idle(int timeout_ms) const;

 private:
  void worker();
  void enqueue(std::function<void()> task);
  void index_file(const std::string& path, IndexStats* stats);
  void put(const std::string& path, std::vector<Symbol> symbols);
  void erase(const std::string& path);

  IndexOptions options_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, std::vector<Symbol>> by_file_;
  std::multimap<std::string, std::string, std::less<>> by_name_;  // name -> path
  std::set<std::string> roots_;
  IndexStats stats_;
  std::deque<std::function<void()>> tasks_;
  std::map<std::string, std::shared_ptr<const Snapshot>> pending_docs_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

// True when `path` is `root` or lies under it (both absolute and normalised; compares whole components).
bool path_is_under(const std::string& path, const std::string& root);

// True when the first `n` bytes look binary (a NUL byte, as git decides).
bool looks_binary(std::string_view head);

}  // namespace latent::lsp
