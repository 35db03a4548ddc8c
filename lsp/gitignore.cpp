#include "lsp/gitignore.h"

#include <fnmatch.h>

namespace latent::lsp {

void GitIgnore::add(std::string_view base, std::string_view content) {
  size_t pos = 0;
  while (pos <= content.size()) {
    size_t nl = content.find('\n', pos);
    std::string_view line = content.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? content.size() + 1 : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    Pattern p;
    p.base = std::string(base);
    if (line[0] == '!') {
      p.negate = true;
      line.remove_prefix(1);
    } else if (line[0] == '\\') {
      line.remove_prefix(1);
    }
    if (!line.empty() && line.back() == '/') {
      p.dir_only = true;
      line.remove_suffix(1);
    }
    if (line.find('/') != std::string_view::npos) p.anchored = true;
    if (!line.empty() && line[0] == '/') line.remove_prefix(1);
    if (line.empty()) continue;
    p.glob = std::string(line);
    patterns_.push_back(std::move(p));
  }
}

namespace {

// fnmatch with `**` meaning any number of directories.
bool glob_match(const std::string& glob, const std::string& path) {
  size_t dd = glob.find("**");
  if (dd == std::string::npos) return fnmatch(glob.c_str(), path.c_str(), FNM_PATHNAME) == 0;
  // Try the rest of the pattern against every suffix that starts at a component boundary.
  std::string head = glob.substr(0, dd);
  std::string tail = glob.substr(dd + 2);
  if (!tail.empty() && tail[0] == '/') tail.erase(0, 1);
  for (size_t cut = 0; cut <= path.size(); ++cut) {
    if (cut != 0 && cut != path.size() && path[cut - 1] != '/') continue;
    std::string left = path.substr(0, cut);
    if (!head.empty()) {
      std::string h = head;
      if (!h.empty() && h.back() == '/') h.pop_back();
      std::string l = left;
      if (!l.empty() && l.back() == '/') l.pop_back();
      // head must match a prefix of the path ending at or before `cut`
      bool ok = false;
      for (size_t k = 0; k <= l.size() && !ok; ++k) {
        if (k != l.size() && l[k] != '/') continue;
        if (fnmatch(h.c_str(), l.substr(0, k).c_str(), FNM_PATHNAME) == 0) ok = true;
      }
      if (!ok) continue;
    }
    if (tail.empty() || glob_match(tail, path.substr(cut))) return true;
  }
  return false;
}

}  // namespace

bool GitIgnore::ignored(std::string_view rel_path, bool is_dir) const {
  bool result = false;
  std::string path(rel_path);
  for (const auto& p : patterns_) {
    if (p.dir_only && !is_dir) continue;
    std::string rel;
    if (p.base.empty()) {
      rel = path;
    } else if (path.size() > p.base.size() && path.compare(0, p.base.size(), p.base) == 0 &&
               path[p.base.size()] == '/') {
      rel = path.substr(p.base.size() + 1);
    } else {
      continue;
    }
    bool match;
    if (p.anchored) {
      match = glob_match(p.glob, rel);
    } else {
      size_t slash = rel.rfind('/');
      std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
      match = fnmatch(p.glob.c_str(), name.c_str(), 0) == 0;
    }
    if (match) result = !p.negate;
  }
  return result;
}

}  // namespace latent::lsp
