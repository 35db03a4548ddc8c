// The agent's edit checker (lsp/agent/edit_checker.h) on arbitrary requests and files. Mode 0: the rest of the
// input is a JSON edit request, parsed as the agent's tools parse one; mode 1: a request built from the input
// (`old` cut from the file or free bytes, a symbol name, a version) so that most requests get past the parser.
// Invariants: a refusal has a known code and a message, and its JSON answer serialises; an accepted edit
// replaces exactly its target range [start, end) of the file (every byte before and after it is the
// original's), `old` is that range's text, the result is within the size limit and has no more syntax errors
// than the file had; the checker is pure (the same request on the same text gives the same outcome: checked
// when the mode byte's top bit is set).
#include <cstdlib>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "lsp/agent/edit_checker.h"
#include "lsp/languages.h"
#include "tests/fuzz/fuzz_input.h"

using namespace latent::lsp;
using namespace latent::lsp::agent;

#define FUZZ_CHECK(c) \
  if (!(c)) std::abort()

namespace {

const char* const kLanguages[] = {"python", "cpp", "rust", "typescript", "go", "javascript", "java", ""};
const char* const kSymbols[] = {"f", "g", "A", "A.f", "A.B.c", "main", "~A", "operator==", "x", "Foo.bar", "é"};

void check_outcome(const EditRequest& req, std::string_view text, const EditOutcome& o) {
  static const std::set<std::string> kCodes = {"malformed", "path",   "not_found",     "ambiguous", "stale",
                                               "syntax",    "outside_range", "too_large", "io"};
  (void)outcome_json(o).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // the agent's answer
  if (!o.ok()) {
    FUZZ_CHECK(kCodes.count(o.code) == 1 && !o.message.empty());
    FUZZ_CHECK(o.code != "outside_range");  // the bug guard never fires: the checker builds results correctly
    return;
  }
  FUZZ_CHECK(o.start_byte <= o.end_byte && o.end_byte <= text.size());
  FUZZ_CHECK(o.result.size() <= kMaxEditResultBytes);
  FUZZ_CHECK(o.new_text == req.new_text);
  const std::string expected = std::string(text.substr(0, o.start_byte)) + req.new_text +
                               std::string(text.substr(o.end_byte));
  FUZZ_CHECK(o.result == expected);
  if (req.old_text) FUZZ_CHECK(text.substr(o.start_byte, o.end_byte - o.start_byte) == *req.old_text);
  FUZZ_CHECK(o.errors_after <= o.errors_before);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  latent::fuzz::Input in(data, size);
  const char* lang_id = kLanguages[in.byte() % (sizeof kLanguages / sizeof *kLanguages)];
  const LanguageInfo* language = *lang_id ? language_by_id(lang_id) : nullptr;
  const uint8_t mode = in.byte();
  std::string text = in.bytes(255);
  text += in.bytes(255);
  CurrentVersion current;
  current.hash = "h:" + std::to_string(text.size());
  if (mode & 2) current.number = static_cast<int>(mode >> 4);

  EditRequest req;
  if (mode % 2 == 0) {
    const nlohmann::json j = nlohmann::json::parse(in.rest(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    const EditOutcome parsed = parse_edit_request(j, &req);
    if (!parsed.ok()) {
      FUZZ_CHECK(parsed.code == "malformed" && !parsed.message.empty());
      (void)outcome_json(parsed).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return 0;
    }
    FUZZ_CHECK(!req.path.empty() && req.old_text.has_value() == req.symbol.empty());
  } else {
    req.path = std::string("f.") + (*lang_id ? lang_id : "txt");
    const uint8_t how = in.byte();
    if (how % 3 == 0) {
      req.symbol = kSymbols[in.byte() % (sizeof kSymbols / sizeof *kSymbols)];
    } else if (how % 3 == 1 && !text.empty()) {  // `old` cut from the file: often found, sometimes ambiguous
      const size_t at = in.byte() % text.size();
      req.old_text = text.substr(at, 1 + in.byte() % 24);
    } else {
      req.old_text = in.bytes(32);
      if (req.old_text->empty()) req.old_text = "x";
    }
    if (how & 0x10) req.version_number = in.byte() >> 4;
    if (how & 0x20) req.version_hash = (how & 0x40) ? current.hash : in.bytes(8);
    req.new_text = in.rest();
  }
  const EditOutcome o = check_edit(req, text, language, current);
  check_outcome(req, text, o);
  if (mode & 0x80) {  // purity, on half the inputs (it doubles the parsing, which is most of the run time)
    const EditOutcome again = check_edit(req, text, language, current);
    FUZZ_CHECK(again.code == o.code && again.result == o.result && again.start_byte == o.start_byte);
  }
  return 0;
}
