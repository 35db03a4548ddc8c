#include "engine/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "kernels/base/log.h"

namespace latent::tok {
namespace {

// Oniguruma's \s with a Unicode encoding: the White_Space property.
constexpr const char* kOnigSpace =
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// One JIT stack and one match block per thread, shared by every pattern (PCRE2 allows that).
struct ThreadScratch {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* mc = pcre2_match_context_create(nullptr);
  ThreadScratch() { pcre2_jit_stack_assign(mc, nullptr, stack); }
  ~ThreadScratch() {
    pcre2_match_context_free(mc);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(md);
  }
};

ThreadScratch& scratch() {
  thread_local ThreadScratch s;
  return s;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

Result<std::string> translate_onig_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) return make_error(ErrorCode::kInvalidArgument, "regex ends with a lone backslash");
      char n = p[++i];
      if (n == 's') {
        out += in_class ? std::string(kOnigSpace) : "[" + std::string(kOnigSpace) + "]";
      } else if (n == 'S' && !in_class) {
        out += "[^" + std::string(kOnigSpace) + "]";
      } else if (n == 'h') {
        out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
      } else if (n == 'H' && !in_class) {
        out += "[^0-9a-fA-F]";
      } else if (n == 'u' && i + 4 < p.size()) {
        out += "\\x{" + std::string(p.substr(i + 1, 4)) + "}";
        i += 4;
      } else {
        out += '\\';
        out += n;
      }
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      if (c == '[') {
        // A nested class (Oniguruma set operations): not in PCRE2.
        if (i + 1 < p.size() && p[i + 1] == ':') {
          size_t close = p.find(":]", i);
          if (close == std::string_view::npos) return make_error(ErrorCode::kUnsupported, "unterminated [: in regex");
          out.append(p.substr(i, close + 2 - i));
          i = close + 1;
          continue;
        }
        return make_error(ErrorCode::kUnsupported,
                          "regex: nested character classes (Oniguruma set syntax) are not supported: " +
                              std::string(p));
      }
      if (c == '&' && i + 1 < p.size() && p[i + 1] == '&')
        return make_error(ErrorCode::kUnsupported, "regex: class intersection && is not supported: " + std::string(p));
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    out += c;
  }
  return out;
}

std::string regex_escape(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

Result<Regex> Regex::compile(std::string_view pattern, bool literal) {
  std::string pcre;
  if (literal) {
    pcre = regex_escape(pattern);
  } else {
    LATENT_ASSIGN_OR_RETURN(pcre, translate_onig_pattern(pattern));
  }
  pcre2_compile_context* cc = pcre2_compile_context_create(nullptr);
  pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre.data()), pcre.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | PCRE2_NO_UTF_CHECK, &err, &err_off,
                                   cc);
  pcre2_compile_context_free(cc);
  if (!code) {
    return make_error(ErrorCode::kInvalidArgument, "regex '" + std::string(pattern) + "': " + pcre2_message(err) +
                                                       " at offset " + std::to_string(err_off));
  }
  auto c = std::make_shared<Code>();
  c->code = code;
  c->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  Regex r;
  r.code_ = std::move(c);
  r.pattern_ = std::string(pattern);
  return r;
}

bool Regex::find(std::string_view subject, size_t start, size_t* begin, size_t* end) const {
  ThreadScratch& s = scratch();
  auto subj = reinterpret_cast<PCRE2_SPTR>(subject.data());
  int rc = code_->jit ? pcre2_jit_match(code_->code, subj, subject.size(), start, 0, s.md, s.mc)
                      : pcre2_match(code_->code, subj, subject.size(), start, PCRE2_NO_UTF_CHECK, s.md, s.mc);
  if (rc <= 0) {
    if (rc != PCRE2_ERROR_NOMATCH)
      LATENT_LOG_WARN("tokenizer regex '%s': %s; treated as no match", pattern_.c_str(), pcre2_message(rc).c_str());
    return false;
  }
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.md);
  *begin = ov[0];
  *end = ov[1];
  return true;
}

}  // namespace latent::tok
