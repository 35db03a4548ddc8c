#pragma once
// A .gitignore matcher for the workspace walk: patterns from each directory's .gitignore apply below it;
// supports `!` negation, trailing `/` (directories only), leading or inner `/` (anchored), `*`, `?`, `[...]`
// and `**`. Not supported: $GIT_DIR/info/exclude and global excludes (the walk also skips .git itself).
#include <string>
#include <string_view>
#include <vector>

namespace latent::lsp {

class GitIgnore {
 public:
  // Adds the patterns of `content`, a .gitignore in directory `base` (relative to the root, "" for the root).
  void add(std::string_view base, std::string_view content);
  // `rel_path` is relative to the root, '/'-separated.
  bool ignored(std::string_view rel_path, bool is_dir) const;

 private:
  struct Pattern {
    std::string base;     // directory of the .gitignore, "" or "a/b"
    std::string glob;     // without the leading '!' / '/' and the trailing '/'
    bool negate = false;
    bool dir_only = false;
    bool anchored = false;  // contains '/': matched against the path relative to base
  };
  std::vector<Pattern> patterns_;
};

}  // namespace latent::lsp
