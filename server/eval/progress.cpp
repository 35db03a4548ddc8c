#include "server/eval/progress.h"

#include <unistd.h>

#include <cstdio>

namespace latent::eval {

ProgressBar::ProgressBar(std::string label) : label_(std::move(label)), enabled_(isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar() {
  if (enabled_ && drawn_) std::fprintf(stderr, "\n");
}

void ProgressBar::update(size_t done, size_t total, const std::string& what) {
  if (!enabled_) return;
  constexpr int kWidth = 30;
  const int filled = total ? static_cast<int>(kWidth * done / total) : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  std::string tail = what.size() > 40 ? "..." + what.substr(what.size() - 37) : what;
  std::fprintf(stderr, "\r\033[K%s [%s] %zu/%zu %s", label_.c_str(), bar.c_str(), done, total, tail.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace latent::eval
