#pragma once
// A one-line progress bar on stderr when it is a terminal ("[#####.....] 12/40 what"); silent otherwise, so that
// logs and CI output stay clean.
#include <string>

namespace latent::eval {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();  // ends the line
  void update(size_t done, size_t total, const std::string& what);
  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
};

}  // namespace latent::eval
