#pragma once
// A temporary directory tree for tests: files written on construction, removed on destruction.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace latent::lsp::testing {

class TempTree {
 public:
  TempTree() {
    char tmpl[] = "/tmp/latent_lsp_test_XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~TempTree() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  std::string write(const std::string& rel, const std::string& content) {
    std::filesystem::path p = std::filesystem::path(root_) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace latent::lsp::testing
