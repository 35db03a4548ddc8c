#include "server/eval/metrics.h"

#include <algorithm>
#include <map>

namespace latent::eval {

double chrf(std::string_view hypothesis, std::string_view reference, int max_order, double beta) {
  auto strip = [](std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') out.push_back(c);
    }
    return out;
  };
  const std::string hyp = strip(hypothesis), ref = strip(reference);
  if (hyp.empty() && ref.empty()) return 100.0;
  if (hyp.empty() || ref.empty()) return 0.0;
  double p_sum = 0, r_sum = 0;
  int orders = 0;
  for (int n = 1; n <= max_order; ++n) {
    if (hyp.size() < static_cast<size_t>(n) || ref.size() < static_cast<size_t>(n)) break;
    std::map<std::string_view, int> h, r;
    for (size_t i = 0; i + n <= hyp.size(); ++i) ++h[std::string_view(hyp).substr(i, n)];
    for (size_t i = 0; i + n <= ref.size(); ++i) ++r[std::string_view(ref).substr(i, n)];
    int match = 0;
    for (const auto& [g, c] : h) {
      auto it = r.find(g);
      if (it != r.end()) match += std::min(c, it->second);
    }
    p_sum += static_cast<double>(match) / static_cast<double>(hyp.size() - n + 1);
    r_sum += static_cast<double>(match) / static_cast<double>(ref.size() - n + 1);
    ++orders;
  }
  if (orders == 0) return 0.0;
  const double p = p_sum / orders, r = r_sum / orders, b2 = beta * beta;
  if (p + r == 0) return 0.0;
  return 100.0 * (1 + b2) * p * r / (b2 * p + r);
}

size_t common_prefix(std::string_view a, std::string_view b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

std::string first_line(std::string_view text) {
  std::string s(text.substr(0, text.find('\n')));
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string first_lines(std::string_view text, size_t n) {
  size_t pos = 0;
  for (size_t i = 0; i < n; ++i) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) return std::string(text);
    pos = nl + 1;
  }
  return std::string(text.substr(0, pos == 0 ? 0 : pos - 1));
}

size_t line_count(std::string_view text) {
  if (text.empty()) return 0;
  size_t n = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  return text.back() == '\n' ? n : n + 1;
}

}  // namespace latent::eval
