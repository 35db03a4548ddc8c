#pragma once
// Scores of one suggestion against what the author wrote (latent eval replay).
#include <string>
#include <string_view>

namespace latent::eval {

// chrF (Popović 2015) as sacreBLEU computes it by default: character n-grams of orders 1..6 with whitespace
// removed, precision and recall averaged over the orders both sides have, F-beta with beta = 2; 0..100.
// Two empty texts score 100, one empty text 0.
double chrf(std::string_view hypothesis, std::string_view reference, int max_order = 6, double beta = 2.0);

// Bytes of the longest common prefix: what the user would have accepted by typing along (or Tab on the part
// that is right), the accepted-characters measure.
size_t common_prefix(std::string_view a, std::string_view b);

// The first line of `text` (without its newline), trailing blanks removed.
std::string first_line(std::string_view text);
// The first `n` lines of `text` (n >= 1), newlines between them kept, no trailing newline.
std::string first_lines(std::string_view text, size_t n);
size_t line_count(std::string_view text);  // lines with content ("a\nb" and "a\nb\n" are 2; "" is 0)

}  // namespace latent::eval
