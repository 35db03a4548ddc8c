#include "lsp/workspace_index.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <tree_sitter/api.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "kernels/base/log.h"
#include "lsp/gitignore.h"

namespace latent::lsp {

namespace fs = std::filesystem;

bool looks_binary(std::string_view head) { return head.find('\0') != std::string_view::npos; }

WorkspaceIndex::WorkspaceIndex(IndexOptions options) : options_(options) {
  if (options_.background) thread_ = std::thread([this] { worker(); });
}

WorkspaceIndex::~WorkspaceIndex() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void WorkspaceIndex::worker() {
  // Indexing yields to the request path and the engine.
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
    if (stop_) return;
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    busy_ = true;
    lock.unlock();
    task();
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

void WorkspaceIndex::enqueue(std::function<void()> task) {
  if (!options_.background) {
    task();
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  tasks_.push_back(std::move(task));
  cv_.notify_all();
}

bool WorkspaceIndex::wait_idle(int timeout_ms) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return tasks_.empty() && !busy_; });
}

void WorkspaceIndex::add_root(const std::string& dir) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!roots_.insert(dir).second) return;
  }
  enqueue([this, dir] {
    IndexStats s = index_now(dir);
    LATENT_LOG_INFO("indexed %s: %zu files, %.1f MB, %zu symbols in %.2f s (skipped: %zu ignored, %zu binary, "
                    "%zu large)",
                    dir.c_str(), s.files, s.bytes / 1e6, s.symbols, s.seconds, s.skipped_ignored,
                    s.skipped_binary, s.skipped_large);
  });
}

void WorkspaceIndex::remove_root(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  roots_.erase(dir);
  std::string prefix = dir.back() == '/' ? dir : dir + "/";
  for (auto it = by_file_.begin(); it != by_file_.end();) {
    if (it->first.compare(0, prefix.size(), prefix) == 0) {
      for (auto n = by_name_.begin(); n != by_name_.end();) n = n->second == it->first ? by_name_.erase(n) : ++n;
      it = by_file_.erase(it);
    } else {
      ++it;
    }
  }
}

void WorkspaceIndex::file_changed(const std::string& path) {
  enqueue([this, path] {
    IndexStats s;
    index_file(path, &s);
  });
}

void WorkspaceIndex::file_deleted(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  erase(path);
}

void WorkspaceIndex::erase(const std::string& path) {
  auto it = by_file_.find(path);
  if (it == by_file_.end()) return;
  for (const auto& s : it->second) {
    auto [b, e] = by_name_.equal_range(s.name);
    for (auto n = b; n != e;) n = n->second == path ? by_name_.erase(n) : std::next(n);
  }
  by_file_.erase(it);
}

void WorkspaceIndex::put(const std::string& path, std::vector<Symbol> symbols) {
  std::lock_guard<std::mutex> lock(mu_);
  erase(path);
  std::set<std::string> names;
  for (const auto& s : symbols) names.insert(s.name);
  for (const auto& n : names) by_name_.emplace(n, path);
  by_file_[path] = std::move(symbols);
}

void WorkspaceIndex::update_document(const std::string& path, const LanguageInfo& language, const TSTree* tree,
                                     std::string_view text) {
  put(path, extract_symbols(language, tree, text, path));
}

void WorkspaceIndex::update_document_async(std::shared_ptr<const Snapshot> doc) {
  if (!doc->language) return;
  std::string path = doc->path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool queued = pending_docs_.count(path) > 0;
    pending_docs_[path] = std::move(doc);
    if (queued && options_.background) return;  // the queued task will take the newest snapshot
  }
  enqueue([this, path] {
    std::shared_ptr<const Snapshot> snap;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pending_docs_.find(path);
      if (it == pending_docs_.end()) return;
      snap = std::move(it->second);
      pending_docs_.erase(it);
    }
    update_document(snap->path, *snap->language, snap->tree, *snap->text);
  });
}

void WorkspaceIndex::index_file(const std::string& path, IndexStats* stats) {
  const LanguageInfo* lang = language_by_path(path);
  if (!lang) {
    ++stats->skipped_unknown;
    return;
  }
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) {
    std::lock_guard<std::mutex> lock(mu_);
    erase(path);
    return;
  }
  if (size > options_.max_file_bytes) {
    ++stats->skipped_large;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (looks_binary(std::string_view(text).substr(0, 8000))) {
    ++stats->skipped_binary;
    return;
  }
  // One parser per language per thread, kept for reuse and deleted when the thread ends.
  using ParserPtr = std::unique_ptr<TSParser, void (*)(TSParser*)>;
  thread_local std::map<std::string, ParserPtr> parsers;
  auto it = parsers.find(lang->id);
  if (it == parsers.end()) {
    it = parsers.emplace(lang->id, ParserPtr(ts_parser_new(), ts_parser_delete)).first;
    ts_parser_set_language(it->second.get(), lang->grammar());
  }
  TSParser* parser = it->second.get();
  TSTree* tree = ts_parser_parse_string(parser, nullptr, text.data(), static_cast<uint32_t>(text.size()));
  auto symbols = extract_symbols(*lang, tree, text, path);
  ts_tree_delete(tree);
  ++stats->files;
  stats->bytes += text.size();
  stats->symbols += symbols.size();
  put(path, std::move(symbols));
}

IndexStats WorkspaceIndex::index_now(const std::string& dir) {
  auto t0 = std::chrono::steady_clock::now();
  IndexStats stats;
  GitIgnore ignore;
  std::error_code ec;
  fs::path root = fs::path(dir);
  auto read_ignore = [&](const fs::path& d, const std::string& rel) {
    std::ifstream in(d / ".gitignore");
    if (!in) return;
    std::stringstream ss;
    ss << in.rdbuf();
    ignore.add(rel, ss.str());
  };
  read_ignore(root, "");
  std::vector<std::pair<fs::path, std::string>> stack = {{root, ""}};
  size_t files_seen = 0;
  while (!stack.empty()) {
    auto [d, rel] = stack.back();
    stack.pop_back();
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(d, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
         it.increment(ec)) {
      entries.push_back(*it);
    }
    for (const auto& e : entries) {
      std::string name = e.path().filename().string();
      if (name == ".git") continue;
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      bool is_dir = e.is_directory(ec) && !e.is_symlink(ec);
      if (ignore.ignored(child_rel, is_dir)) {
        ++stats.skipped_ignored;
        continue;
      }
      if (is_dir) {
        read_ignore(e.path(), child_rel);
        stack.push_back({e.path(), child_rel});
      } else if (e.is_regular_file(ec)) {
        // A symlink may point anywhere: index its target only when that lies under this root too.
        if (e.is_symlink(ec)) {
          const fs::path target = fs::canonical(e.path(), ec);
          const fs::path real_root = fs::canonical(root, ec);
          if (ec || !path_is_under(target.string(), real_root.string())) {
            LATENT_LOG_DEBUG("index %s: skipped %s: a symlink to %s, outside the folder", dir.c_str(),
                             e.path().c_str(), target.c_str());
            ++stats.skipped_ignored;
            continue;
          }
        }
        if (++files_seen > options_.max_files) {
          LATENT_LOG_WARN("index %s: stopped at %zu files (the limit)", dir.c_str(), options_.max_files);
          stack.clear();
          break;
        }
        index_file(e.path().string(), &stats);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.files += stats.files;
  stats_.bytes += stats.bytes;
  stats_.symbols += stats.symbols;
  stats_.skipped_ignored += stats.skipped_ignored;
  stats_.skipped_binary += stats.skipped_binary;
  stats_.skipped_large += stats.skipped_large;
  stats_.skipped_unknown += stats.skipped_unknown;
  stats_.seconds += stats.seconds;
  return stats;
}

std::vector<Symbol> WorkspaceIndex::lookup(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Symbol> out;
  auto [b, e] = by_name_.equal_range(name);
  for (auto it = b; it != e; ++it) {
    auto f = by_file_.find(it->second);
    if (f == by_file_.end()) continue;
    for (const auto& s : f->second) {
      if (s.name == name) out.push_back(s);
    }
  }
  return out;
}

std::vector<Symbol> WorkspaceIndex::symbols_in(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_file_.find(path);
  return it == by_file_.end() ? std::vector<Symbol>() : it->second;
}

std::vector<std::string> WorkspaceIndex::roots() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {roots_.begin(), roots_.end()};
}

bool path_is_under(const std::string& path, const std::string& root) {
  if (root.empty() || path.compare(0, root.size(), root) != 0) return false;
  return path.size() == root.size() || root.back() == '/' || path[root.size()] == '/';
}

bool WorkspaceIndex::contains(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : roots_) {
    if (path_is_under(path, r)) return true;
  }
  return false;
}

std::string WorkspaceIndex::relative_path(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : roots_) {
    std::string prefix = !r.empty() && r.back() == '/' ? r : r + "/";
    if (path.compare(0, prefix.size(), prefix) == 0) return path.substr(prefix.size());
  }
  return path;
}

IndexStats WorkspaceIndex::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace latent::lsp
