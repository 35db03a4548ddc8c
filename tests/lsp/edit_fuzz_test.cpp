// The edit checker against a generated corpus: >= 10,000 malformed, ambiguous, stale and hostile edit requests
// (and valid ones between them) on copies of real source files from this repository, through the same
// apply_edit_json that `latent agent-edit` runs, files on disk included. Deterministic (a fixed seed). After
// every request: a refused edit left its file byte-for-byte unchanged; an applied one changed exactly the bytes
// of its target range (checked against an independent search for the target); nothing outside the workspace
// changed. The files live in /dev/shm when it exists, so that fsync costs nothing and the run stays short.
#include <gtest/gtest.h>
#include <tree_sitter/api.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "lsp/agent/edit_checker.h"
#include "lsp/agent/symbol_targets.h"
#include "lsp/agent/workspace_files.h"
#include "tests/test_paths.h"

namespace latent::lsp::agent {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int kRequests = 10500;

struct SourceFile {
  std::string rel;       // inside the workspace
  std::string original;
  std::string current;   // what is on disk now
  std::vector<SymbolTarget> targets;  // of `current` unless `stale_targets`
  bool stale_targets = false;
};

std::string read(const fs::path& p) { return *read_text_file(p.string()); }

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

std::vector<SymbolTarget> targets_of(const std::string& rel, const std::string& text) {
  const LanguageInfo* lang = language_by_path(rel);
  if (!lang) return {};
  TSParser* p = ts_parser_new();
  ts_parser_set_language(p, lang->grammar());
  TSTree* t = ts_parser_parse_string(p, nullptr, text.data(), static_cast<uint32_t>(text.size()));
  auto out = symbol_targets(*lang, t, text);
  ts_tree_delete(t);
  ts_parser_delete(p);
  return out;
}

size_t count(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string_view::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// Real files of this repository in several languages, 1-4 KiB (parsing dominates the run time), sorted so the corpus is the same every run.
std::vector<std::string> pick_sources() {
  const std::string src = LATENT_SOURCE_DIR;
  std::map<std::string, std::vector<std::string>> by_ext;
  for (const char* dir : {"lsp", "engine/chat", "editors/vscode/src", "tools/demo-model", "scripts", "server/cli"}) {
    if (!fs::exists(fs::path(src) / dir)) continue;
    for (auto& e : fs::recursive_directory_iterator(fs::path(src) / dir)) {
      if (!e.is_regular_file() || e.is_symlink()) continue;
      auto size = e.file_size();
      std::string ext = e.path().extension().string();
      if (size < 1024 || size > 4096 || !language_by_path(e.path().string())) continue;
      by_ext[ext].push_back(fs::relative(e.path(), src).string());
    }
  }
  std::vector<std::string> out;
  for (auto& [ext, files] : by_ext) {
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i < files.size() && i < 4; ++i) out.push_back(files[i]);
  }
  return out;
}

class Corpus {
 public:
  Corpus() : rng_(0x16) {
    const char* base = fs::exists("/dev/shm") ? "/dev/shm/latent_edit_fuzz_XXXXXX" : "/tmp/latent_edit_fuzz_XXXXXX";
    std::string tmpl = base;
    dir_ = mkdtemp(tmpl.data());
    root_ = dir_ + "/ws";
    outside_ = dir_ + "/outside";
    fs::create_directories(root_);
    fs::create_directories(outside_);
    write(outside_ + "/secret.py", "SECRET = 1\n");
    fs::create_symlink(outside_ + "/secret.py", root_ + "/link_out.py");
    fs::create_symlink(outside_, root_ + "/dir_out");
    fs::create_symlink(outside_ + "/new.py", root_ + "/dangling.py");
    fs::create_directories(root_ + "/a_dir.py");
    write(root_ + "/binary.py", std::string("x = 1\n\0\0\x01", 9));
    for (const auto& rel : pick_sources()) {
      SourceFile f;
      f.rel = rel;
      f.original = f.current = read(fs::path(LATENT_SOURCE_DIR) / rel);
      f.targets = targets_of(rel, f.current);
      fs::create_directories((fs::path(root_) / rel).parent_path());
      write(fs::path(root_) / rel, f.current);
      files_.push_back(std::move(f));
    }
    outside_snapshot_ = snapshot(outside_);
  }
  ~Corpus() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::map<std::string, std::string> snapshot(const std::string& dir) {
    std::map<std::string, std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file() && !e.is_symlink()) out[e.path().string()] = read(e.path());
    }
    return out;
  }

  size_t n_files() const { return files_.size(); }
  std::map<std::string, int> by_kind, by_code;
  size_t applied = 0, lost_bytes = 0, wrong_range = 0, refused_but_changed = 0;
  std::vector<std::string> failures;

  void run(int n) {
    for (int i = 0; i < n; ++i) {
      one(i);
      if (i % 1000 == 999) check_everything_else();
    }
    check_everything_else();
  }

 private:
  std::mt19937_64 rng_;
  std::string dir_, root_, outside_;
  std::vector<SourceFile> files_;
  std::map<std::string, std::string> outside_snapshot_;

  size_t uniform(size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool coin(int percent) { return static_cast<int>(uniform(100)) < percent; }

  // A unique substring of `text` (or "" after a few tries).
  std::string unique_snippet(const std::string& text) {
    for (int t = 0; t < 20 && !text.empty(); ++t) {
      size_t at = uniform(text.size());
      for (size_t len = 8; at + len <= text.size() && len < 400; len += 8 + len / 2) {
        std::string s = text.substr(at, len);
        if (count(text, s) == 1) return s;
      }
    }
    return "";
  }

  std::string garbage(size_t max_len) {
    static const char* kPieces[] = {"{", "}", "(", ")", "\"", "'", "\n", "    ", "def ", "return ", ";", "/*",
                                    "*/", "#", "\\", "\xe2\x82\xac", "int x = 0;", "pass\n", "`", "${", "\r\n", "\t"};
    std::string s;
    size_t n = uniform(max_len + 1);
    while (s.size() < n) s += kPieces[uniform(sizeof(kPieces) / sizeof(*kPieces))];
    return s;
  }

  // The replacement for `snippet`: itself with a small change (keeps it parsing most of the time) or garbage.
  std::string mutate(const std::string& snippet) {
    if (coin(60)) {
      std::string s = snippet;
      if (!s.empty()) {
        size_t at = uniform(s.size());
        if (coin(50) && std::isalnum(static_cast<unsigned char>(s[at]))) s[at] = static_cast<char>('a' + uniform(26));
        else s.insert(at, coin(50) ? "x" : "1");
      }
      return s;
    }
    return coin(20) ? std::string() : garbage(60);
  }

  Json request_for(SourceFile& f, std::string* kind) {
    int r = static_cast<int>(uniform(100));
    if (r < 18) {  // valid old/new
      *kind = "valid_old";
      std::string s = unique_snippet(f.current);
      if (s.empty()) s = "\x01no such text";
      return {{"path", f.rel}, {"old", s}, {"new", mutate(s)}};
    }
    if (r < 30) {  // a symbol, qualified or not (ambiguous when a bare name is defined twice)
      *kind = "symbol";
      if (f.stale_targets) {
        f.targets = targets_of(f.rel, f.current);
        f.stale_targets = false;
      }
      if (f.targets.empty()) return {{"path", f.rel}, {"symbol", "NoSuchSymbol"}, {"new", "x"}};
      const auto& t = f.targets[uniform(f.targets.size())];
      std::string name = coin(50) ? t.qualified : t.parts.back();
      std::string body = f.current.substr(t.start_byte, t.end_byte - t.start_byte);
      return {{"path", f.rel}, {"symbol", name}, {"new", coin(50) ? mutate(body) : body}};
    }
    if (r < 42) {  // ambiguous: short, common text
      *kind = "ambiguous";
      static const char* kCommon[] = {"\n", " ", "(", ")", "return", "if", "the", ";", "e", "  ", "{", "}"};
      std::string s = kCommon[uniform(sizeof(kCommon) / sizeof(*kCommon))];
      if (coin(30)) {  // or a whole line that occurs more than once
        size_t at = uniform(f.current.size());
        size_t b = f.current.rfind('\n', at);
        size_t e = f.current.find('\n', at);
        if (b != std::string::npos && e != std::string::npos && e > b + 1) s = f.current.substr(b + 1, e - b);
      }
      return {{"path", f.rel}, {"old", s}, {"new", garbage(20)}};
    }
    if (r < 52) {  // text that is not there: a snippet with one byte changed
      *kind = "not_found";
      std::string s = unique_snippet(f.current);
      if (!s.empty()) s[uniform(s.size())] ^= 0x20;
      if (s.empty() || coin(20)) s = garbage(30) + "\x7f";
      return {{"path", f.rel}, {"old", s}, {"new", "x"}};
    }
    if (r < 62) {  // stale: a version that is not the current one
      *kind = "stale";
      std::string s = unique_snippet(f.current);
      Json v = coin(50) ? Json(static_cast<int>(uniform(100))) : Json(content_version(f.current + "x"));
      if (coin(20)) v = content_version(f.original);  // stale only once the file was edited
      return {{"path", f.rel}, {"old", s.empty() ? "x" : s}, {"new", mutate(s)}, {"version", v}};
    }
    if (r < 77) {  // hostile paths
      *kind = "hostile_path";
      std::string name = fs::path(f.rel).filename().string();
      std::string paths[] = {"../outside/secret.py", "../../etc/passwd", "/etc/passwd", outside_ + "/secret.py",
                             "link_out.py", "dir_out/secret.py", "dangling.py", "a_dir.py", "binary.py",
                             std::string(uniform(8) + 1, '.') + "/" + name, "./../" + name, f.rel + "/..",
                             "lsp/../../" + name, std::string("a\0b.py", 6), std::string(5000, 'a'), "", ".", "/",
                             "dir_out", "no/such/dir/file.py", dir_ + "/ws/../outside/secret.py"};
      std::string p = paths[uniform(sizeof(paths) / sizeof(*paths))];
      return {{"path", p}, {"old", coin(50) ? "SECRET" : "x"}, {"new", "PWNED"}};
    }
    if (r < 87) {  // malformed shapes
      *kind = "malformed";
      switch (uniform(10)) {
        case 0: return Json::array({f.rel, "x"});
        case 1: return {{"path", f.rel}, {"old", "x"}, {"symbol", "y"}, {"new", ""}};
        case 2: return {{"path", f.rel}, {"new", "x"}};
        case 3: return {{"path", f.rel}, {"old", ""}, {"new", "x"}};
        case 4: return {{"path", 42}, {"old", "x"}, {"new", "y"}};
        case 5: return {{"path", f.rel}, {"old", Json::object()}, {"new", "y"}};
        case 6: return {{"path", f.rel}, {"old", "x"}, {"new", nullptr}};
        case 7: return {{"path", f.rel}, {"old", "x"}, {"new", "y"}, {"version", Json::array()}};
        case 8: return {{"path", f.rel}, {"symbol", "..::.."}, {"new", "y"}};
        default: return {{"file", f.rel}, {"old", "x"}, {"new", "y"}};
      }
    }
    *kind = "hostile_symbol";  // names that are not identifiers, huge names, injection-like text
    static const char* kNames[] = {"*", "a.b.c.d.e.f", "::", "Outer.", "$(rm -rf /)", "';--", "a\u00e9.b"};
    std::string name = coin(10) ? std::string(100000, 'A') : kNames[uniform(sizeof(kNames) / sizeof(*kNames))];
    return {{"path", f.rel}, {"symbol", name}, {"new", garbage(40)}};
  }

  // Turns a request into text, sometimes broken: truncated, a flipped byte, deep nesting, invalid UTF-8.
  std::string to_text(Json& j, std::string* kind) {
    // Snippets cut inside a UTF-8 sequence cannot travel in JSON: they become U+FFFD, as any client would send.
    std::string text = j.dump(-1, ' ', false, Json::error_handler_t::replace);
    j = Json::parse(text);
    if (coin(8)) {
      *kind = "malformed_json";
      switch (uniform(5)) {
        case 0: return text.substr(0, uniform(text.size()));
        case 1: {
          text[uniform(text.size())] = static_cast<char>(uniform(256));
          return text;
        }
        case 2: return std::string(2000, '[') + std::string(2000, ']');
        case 3: return "{\"path\": \"a.py\", \"old\": \"\xff\xfe\", \"new\": \"x\"}";
        default: return "";
      }
    }
    return text;
  }

  // What an independent search says the applied edit must have replaced: [start, end) in `before`.
  bool expected_range(const Json& j, const std::string& before, const SourceFile& f, size_t* start, size_t* end) {
    if (j.contains("old")) {
      std::string old = j["old"];
      if (count(before, old) != 1) return false;
      *start = before.find(old);
      *end = *start + old.size();
      return true;
    }
    auto matches = match_symbol(f.targets, split_qualified(j["symbol"].get<std::string>()));
    if (matches.size() != 1) return false;
    *start = matches[0]->start_byte;
    *end = matches[0]->end_byte;
    return true;
  }

  void one(int i) {
    SourceFile& f = files_[uniform(files_.size())];
    std::string kind;
    Json j = request_for(f, &kind);
    std::string text = to_text(j, &kind);
    if (kind == "malformed_json") {
      // A flipped byte may leave valid JSON (a different request): judge it as what was sent.
      Json sent = Json::parse(text, nullptr, false);
      if (!sent.is_discarded()) {
        j = std::move(sent);
        kind = "mutated_json";
      }
    }
    ++by_kind[kind];
    fs::path disk = fs::path(root_) / f.rel;
    std::string before = read(disk);
    EditOutcome o = apply_edit_json({root_}, text);
    ++by_code[o.ok() ? "ok" : o.code];
    std::string after = read(disk);
    if (!o.ok()) {
      if (after != before) {
        ++refused_but_changed;
        lost_bytes += before.size();
        failures.push_back("#" + std::to_string(i) + " refused (" + o.code + ") but " + f.rel + " changed");
      }
      return;
    }
    ++applied;
    if (kind == "hostile_path" || kind == "malformed" || kind == "malformed_json" || kind == "hostile_symbol" ||
        (kind == "stale" && j["version"] != Json(content_version(before)))) {
      failures.push_back("#" + std::to_string(i) + " " + kind + " was applied: " + text.substr(0, 200));
    }
    size_t start = 0, end = 0;
    if (!j.is_object() || !j.contains("path") || j["path"] != f.rel || !j.contains("new") || !j["new"].is_string() ||
        !expected_range(j, before, f, &start, &end)) {
      ++wrong_range;
      failures.push_back("#" + std::to_string(i) + " applied without one expected range: " + text.substr(0, 200));
      return;
    }
    std::string expected = before.substr(0, start) + j["new"].get<std::string>() + before.substr(end);
    if (o.start_byte != start || o.end_byte != end || after != expected) {
      ++wrong_range;
      // Bytes outside [start, end) that differ, counted from both ends of the file.
      size_t tail = before.size() - end;
      size_t same_head = 0, same_tail = 0;
      while (same_head < start && same_head < after.size() && after[same_head] == before[same_head]) ++same_head;
      while (same_tail < tail && same_tail < after.size() &&
             after[after.size() - 1 - same_tail] == before[before.size() - 1 - same_tail]) ++same_tail;
      lost_bytes += (start - same_head) + (tail - same_tail);
      failures.push_back("#" + std::to_string(i) + " applied to the wrong range in " + f.rel);
    }
    f.current = after.size() > 2 * f.original.size() ? f.original : after;
    if (f.current != after) write(disk, f.current);
    f.stale_targets = true;  // parsed again when a symbol request needs them
  }

  void check_everything_else() {
    if (snapshot(outside_) != outside_snapshot_) failures.push_back("a file outside the workspace changed");
    if (fs::exists(outside_ + "/new.py")) failures.push_back("the dangling symlink's target was created");
    for (const auto& f : files_) {
      if (read(fs::path(root_) / f.rel) != f.current) failures.push_back(f.rel + " differs from the model");
    }
    for (auto& e : fs::recursive_directory_iterator(root_)) {
      if (e.path().filename().string().find(".latent-") != std::string::npos) {
        failures.push_back("temporary file left: " + e.path().string());
      }
    }
  }
};

TEST(EditFuzz, TenThousandRequestsLoseNoByte) {
  Corpus corpus;
  ASSERT_GE(corpus.n_files(), 8u) << "expected real source files under " << LATENT_SOURCE_DIR;
  corpus.run(kRequests);
  std::string summary;
  for (auto& [k, n] : corpus.by_kind) summary += " " + k + "=" + std::to_string(n);
  summary += " |";
  for (auto& [k, n] : corpus.by_code) summary += " " + k + "=" + std::to_string(n);
  std::printf("edit fuzz: %d requests on %zu files:%s | applied=%zu lost_bytes=%zu\n", kRequests, corpus.n_files(),
              summary.c_str(), corpus.applied, corpus.lost_bytes);
  EXPECT_EQ(corpus.lost_bytes, 0u);
  EXPECT_EQ(corpus.wrong_range, 0u);
  EXPECT_EQ(corpus.refused_but_changed, 0u);
  for (size_t i = 0; i < corpus.failures.size() && i < 20; ++i) ADD_FAILURE() << corpus.failures[i];
  // The corpus exercises every check, and applies a fair share of edits between the refusals.
  for (const char* code : {"malformed", "path", "not_found", "ambiguous", "stale", "syntax"}) {
    EXPECT_GE(corpus.by_code[code], 100) << code;
  }
  EXPECT_GE(corpus.applied, 1000u);
}

}  // namespace
}  // namespace latent::lsp::agent
