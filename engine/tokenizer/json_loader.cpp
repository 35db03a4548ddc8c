#include "engine/tokenizer/json_loader.h"

#include <algorithm>

#include "engine/tokenizer/bpe.h"

namespace latent::tok {
namespace {

using json = nlohmann::json;

class Sax : public nlohmann::json_sax<json> {
 public:
  explicit Sax(TokenizerJson& out) : out_(out) {}
  std::string error;

  bool null() override { return value(json()); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override { return vocab_id(v) || value(v); }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == Mode::kVocab && v > static_cast<number_unsigned_t>(INT64_MAX)) {  // would wrap negative
      return fail("BPE model: token '" + key_ + "': expected an id in [0, " + std::to_string(kMaxTokenIds) +
                  "), found " + std::to_string(v));
    }
    return vocab_id(static_cast<int64_t>(v)) || value(v);
  }
  bool number_float(number_float_t v, const string_t&) override { return value(v); }
  bool string(string_t& s) override {
    if (mode_ == Mode::kMerges) {
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        return fail("model.merges[" + std::to_string(out_.merges.size()) + "] '" + s +
                    "': expected two tokens separated by one space");
      out_.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      if (pair_n_ == 0) pair_a_ = std::move(s);
      else if (pair_n_ == 1) out_.merges.emplace_back(std::move(pair_a_), std::move(s));
      ++pair_n_;
      return true;
    }
    return value(std::move(s));
  }
  bool binary(binary_t&) override { return fail("binary values are not JSON"); }
  bool start_object(std::size_t) override {
    if (mode_ != Mode::kDom) return fail("model.vocab/merges: unexpected object");
    if (in_model() && key_ == "vocab") {
      mode_ = Mode::kVocab;
      out_.has_vocab = true;
      return true;
    }
    return open(json::object());
  }
  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
      return true;
    }
    return close();
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_n_ = 0;
      return true;
    }
    if (mode_ != Mode::kDom) return fail("model.vocab/merges: unexpected array");
    if (in_model() && key_ == "merges") {
      mode_ = Mode::kMerges;
      out_.has_merges = true;
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (mode_ == Mode::kMergePair) {
      if (pair_n_ != 2)
        return fail("model.merges[" + std::to_string(out_.merges.size()) + "]: expected a pair [\"a\", \"b\"]");
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
      return true;
    }
    return close();
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) override {
    return fail("not valid JSON at byte " + std::to_string(pos) + ": " + e.what());
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };

  bool fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }
  // The open container is the top-level "model" object.
  bool in_model() const { return stack_.size() == 2 && keys_[1] == "model"; }
  bool vocab_id(int64_t id) {
    if (mode_ != Mode::kVocab) return false;
    out_.vocab.emplace_back(std::move(key_), id);
    return true;
  }
  json* put(json&& v) {
    if (stack_.empty()) {
      out_.rest = std::move(v);
      return &out_.rest;
    }
    json& top = *stack_.back();
    if (top.is_object()) return &(top[key_] = std::move(v));
    top.push_back(std::move(v));
    return &top.back();
  }
  bool value(json&& v) {
    if (mode_ != Mode::kDom) return fail("model.vocab/merges: unexpected value " + v.dump());
    put(std::move(v));
    return true;
  }
  bool open(json&& container) {
    std::string k = !stack_.empty() && stack_.back()->is_object() ? key_ : std::string();
    stack_.push_back(put(std::move(container)));
    keys_.push_back(std::move(k));
    return true;
  }
  bool close() {
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  TokenizerJson& out_;
  Mode mode_ = Mode::kDom;
  std::vector<json*> stack_;       // open containers (pointers stay valid: only the innermost grows)
  std::vector<std::string> keys_;  // the key each open container sits under
  std::string key_;
  std::string pair_a_;
  int pair_n_ = 0;
};

}  // namespace

Result<TokenizerJson> parse_tokenizer_json(std::string_view text) {
  TokenizerJson out;
  // Room for a real vocabulary (~128k entries and merges) without reallocating, but no more than the text can
  // hold (an entry takes at least 6 bytes of JSON): a small tokenizer.json does not allocate 13 MB.
  const size_t room = std::min<size_t>(size_t{1} << 17, text.size() / 6 + 1);
  out.vocab.reserve(room);
  out.merges.reserve(room);
  Sax sax(out);
  bool ok = json::sax_parse(text.begin(), text.end(), &sax);
  if (!ok) return make_error(ErrorCode::kInvalidArgument, sax.error.empty() ? "not valid JSON" : sax.error);
  if (!out.rest.is_object())
    return make_error(ErrorCode::kInvalidArgument, "expected a tokenizer.json object, found " +
                                                       std::string(out.rest.type_name()));
  return out;
}

}  // namespace latent::tok
