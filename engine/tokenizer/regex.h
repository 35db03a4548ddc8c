#pragma once
// The regular expressions of tokenizer.json (written for the Rust `onig` crate, Ruby syntax) run with PCRE2
// (UTF + UCP, JIT-compiled). translate_onig_pattern() rewrites the constructs whose meaning differs:
//   \s, \S  -> Oniguruma's Unicode White_Space set (PCRE2's \s also has U+180E; JavaScript's has U+FEFF
//              and lacks U+0085)
//   \h, \H  -> hexadecimal digits (PCRE2's \h is horizontal space)
//   \uHHHH  -> \x{HHHH}
//   ^ and $ -> line anchors on LF (Ruby semantics), via PCRE2_MULTILINE
// Thread-safety: a compiled Regex is immutable; find() may be called from any number of threads.
#include <memory>
#include <string>
#include <string_view>

#include "kernels/base/result.h"

namespace latent::tok {

Result<std::string> translate_onig_pattern(std::string_view pattern);

class Regex {
 public:
  // `pattern` in tokenizer.json's (Oniguruma) syntax; `literal` escapes it first (a Split "String" pattern).
  static Result<Regex> compile(std::string_view pattern, bool literal = false);

  // The first match in subject[start..) (subject must be valid UTF-8 and start a character boundary):
  // true and [*begin, *end) on a match. A match is searched for in `subject` alone: lookarounds and anchors
  // see its ends.
  bool find(std::string_view subject, size_t start, size_t* begin, size_t* end) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

// Escapes PCRE2 metacharacters.
std::string regex_escape(std::string_view literal);

}  // namespace latent::tok
