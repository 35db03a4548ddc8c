#include "engine/tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "engine/tokenizer/byte_level.h"

namespace latent::tok {
namespace {

// GPT-2's pre-tokenizer regex, used by ByteLevel when use_regex is true (the tokenizers crate's constant).
constexpr const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

using Span = PreTokenizer::Span;

// Every [begin, end) of text, flagged match or not, like the tokenizers crate's Pattern::find_matches.
void find_matches(const Regex& re, std::string_view text, std::vector<Span>& out) {
  size_t prev = 0, pos = 0, b = 0, e = 0;
  while (pos <= text.size() && re.find(text, pos, &b, &e)) {
    if (b > prev) out.push_back({prev, b, false});
    out.push_back({b, e, true});
    prev = e;
    if (e == b) {  // an empty match: step over one character
      if (e >= text.size()) break;
      pos = e + utf8_len(static_cast<uint8_t>(text[e]));
    } else {
      pos = e;
    }
  }
  if (prev < text.size()) out.push_back({prev, text.size(), false});
}

}  // namespace

Result<SplitBehavior> parse_split_behavior(const std::string& name) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return make_error(ErrorCode::kUnsupported, "pre_tokenizer Split behavior: expected Removed, Isolated, "
                                             "MergedWithPrevious, MergedWithNext or Contiguous, found '" +
                                                 name + "'");
}

void split_spans(const Regex& re, SplitBehavior behavior, bool invert, std::string_view text,
                 std::vector<Span>& out) {
  out.clear();
  if (text.empty()) return;
  if (behavior == SplitBehavior::kIsolated) {  // the common case: no merging, no removal
    find_matches(re, text, out);
    return;
  }
  std::vector<Span> m;
  find_matches(re, text, m);
  if (invert)
    for (auto& s : m) s.match = !s.match;
  // Below, `match` on an output span means "remove it".
  switch (behavior) {
    case SplitBehavior::kIsolated:
      break;
    case SplitBehavior::kRemoved:
      for (const auto& s : m)
        if (!s.match) out.push_back({s.begin, s.end, false});
      break;
    case SplitBehavior::kContiguous: {
      bool prev_match = false;
      for (const auto& s : m) {
        if (!out.empty() && s.match == prev_match) out.back().end = s.end;
        else out.push_back({s.begin, s.end, false});
        prev_match = s.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool prev_match = false;
      for (const auto& s : m) {
        if (s.match && !prev_match && !out.empty()) out.back().end = s.end;
        else out.push_back({s.begin, s.end, false});
        prev_match = s.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool prev_match = false;  // walking backwards: "previous" is the span to the right
      for (size_t i = m.size(); i-- > 0;) {
        const auto& s = m[i];
        if (s.match && !prev_match && !out.empty()) out.back().begin = s.begin;
        else out.push_back({s.begin, s.end, false});
        prev_match = s.match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
}

Status PreTokenizer::add(const nlohmann::json& c) {
  if (!c.is_object() || !c.contains("type"))
    return make_error(ErrorCode::kInvalidArgument, "pre_tokenizer: expected an object with a \"type\", found " +
                                                       c.dump().substr(0, 200));
  std::string type = c["type"].get<std::string>();
  if (byte_level_ && type != "ByteLevel")
    return make_error(ErrorCode::kUnsupported,
                      "pre_tokenizer: a " + type + " step after ByteLevel is not supported (it would see the "
                      "byte alphabet)");
  if (type == "Sequence") {
    for (const auto& p : c.at("pretokenizers")) LATENT_RETURN_IF_ERROR(add(p));
    return Status::Ok();
  }
  Step step;
  if (type == "Split") {
    const auto& pat = c.at("pattern");
    bool literal = pat.contains("String");
    std::string text = literal ? pat["String"].get<std::string>() : pat.at("Regex").get<std::string>();
    LATENT_ASSIGN_OR_RETURN(step.regex, Regex::compile(text, literal));
    LATENT_ASSIGN_OR_RETURN(step.behavior, parse_split_behavior(c.at("behavior").get<std::string>()));
    step.invert = c.value("invert", false);
  } else if (type == "ByteLevel") {
    if (byte_level_) return make_error(ErrorCode::kUnsupported, "pre_tokenizer: two ByteLevel steps");
    byte_level_ = true;
    if (c.value("add_prefix_space", true)) {
      Step prefix;
      prefix.kind = Step::Kind::kPrefixSpace;
      steps_.push_back(std::move(prefix));
    }
    if (!c.value("use_regex", true)) return Status::Ok();
    LATENT_ASSIGN_OR_RETURN(step.regex, Regex::compile(kGpt2Regex));
  } else if (type == "Digits") {
    LATENT_ASSIGN_OR_RETURN(step.regex, Regex::compile(R"(\p{N})"));
    step.behavior = c.value("individual_digits", false) ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
  } else if (type == "Whitespace") {
    LATENT_ASSIGN_OR_RETURN(step.regex, Regex::compile(R"(\w+|[^\w\s]+)"));
    step.behavior = SplitBehavior::kRemoved;
    step.invert = true;
  } else if (type == "WhitespaceSplit") {
    LATENT_ASSIGN_OR_RETURN(step.regex, Regex::compile(R"(\s+)"));
    step.behavior = SplitBehavior::kRemoved;
  } else if (type == "Punctuation") {
    // Rust's char::is_ascii_punctuation() || general category P.
    LATENT_ASSIGN_OR_RETURN(step.regex, Regex::compile(R"([\p{P}!-/:-@\[-`{-~])"));
    LATENT_ASSIGN_OR_RETURN(step.behavior, parse_split_behavior(c.value("behavior", std::string("Isolated"))));
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "pre_tokenizer type '" + type + "': expected one of Sequence, Split, ByteLevel, Digits, "
                      "Whitespace, WhitespaceSplit, Punctuation");
  }
  steps_.push_back(std::move(step));
  return Status::Ok();
}

Result<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& config) {
  PreTokenizer p;
  if (config.is_null()) return p;
  try {
    LATENT_RETURN_IF_ERROR(p.add(config));
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("pre_tokenizer: ") + e.what());
  }
  return p;
}

void PreTokenizer::run_from(size_t step, std::string_view piece, std::vector<std::vector<Span>>& scratch,
                            PieceSink sink) const {
  if (piece.empty()) return;
  if (step == steps_.size()) {
    sink(piece);
    return;
  }
  const Step& s = steps_[step];
  if (s.kind == Step::Kind::kPrefixSpace) {
    if (piece[0] == ' ') {
      run_from(step + 1, piece, scratch, sink);
    } else {
      std::string spaced = " " + std::string(piece);
      run_from(step + 1, spaced, scratch, sink);
    }
    return;
  }
  auto& spans = scratch[step];
  split_spans(s.regex, s.behavior, s.invert, piece, spans);
  for (size_t i = 0; i < spans.size(); ++i) {
    Span sp = spans[i];  // copy: deeper levels use their own vectors, but keep this one stable anyway
    run_from(step + 1, piece.substr(sp.begin, sp.end - sp.begin), scratch, sink);
  }
}

void PreTokenizer::run(std::string_view text, PieceSink sink) const {
  std::vector<std::vector<Span>> scratch(steps_.size());
  run_from(0, text, scratch, sink);
}

std::vector<std::string> PreTokenizer::split_for_test(const Regex& re, SplitBehavior behavior, bool invert,
                                                      std::string_view text) {
  std::vector<Span> spans;
  split_spans(re, behavior, invert, text, spans);
  std::vector<std::string> out;
  for (const auto& s : spans)
    if (s.end > s.begin) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

}  // namespace latent::tok
