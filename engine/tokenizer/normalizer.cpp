#include "engine/tokenizer/normalizer.h"

#include "engine/tokenizer/byte_level.h"

namespace latent::tok {

bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

Status Normalizer::add(const nlohmann::json& c) {
  std::string type = c.at("type").get<std::string>();
  if (type == "Sequence") {
    for (const auto& n : c.at("normalizers")) LATENT_RETURN_IF_ERROR(add(n));
    return Status::Ok();
  }
  Step s{};
  if (type == "Prepend") {
    s.kind = Step::Kind::kPrepend;
    s.text = c.at("prepend").get<std::string>();
  } else if (type == "Replace") {
    s.kind = Step::Kind::kReplace;
    const auto& pat = c.at("pattern");
    bool literal = pat.contains("String");
    LATENT_ASSIGN_OR_RETURN(s.regex, Regex::compile(literal ? pat["String"].get<std::string>()
                                                            : pat.at("Regex").get<std::string>(),
                                                    literal));
    s.text = c.at("content").get<std::string>();
  } else if (type == "Strip") {
    s.kind = Step::Kind::kStrip;
    s.left = c.value("strip_left", true);
    s.right = c.value("strip_right", true);
  } else {
    return make_error(ErrorCode::kUnsupported, "normalizer type '" + type +
                                                   "': expected one of Sequence, Prepend, Replace, Strip "
                                                   "(DeepSeek files use an empty Sequence)");
  }
  steps_.push_back(std::move(s));
  return Status::Ok();
}

Result<Normalizer> Normalizer::from_json(const nlohmann::json& config) {
  Normalizer n;
  if (config.is_null()) return n;
  try {
    LATENT_RETURN_IF_ERROR(n.add(config));
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("normalizer: ") + e.what());
  }
  return n;
}

std::string Normalizer::normalize(std::string_view text) const {
  std::string cur(text);
  for (const auto& s : steps_) {
    switch (s.kind) {
      case Step::Kind::kPrepend:
        if (!cur.empty()) cur = s.text + cur;
        break;
      case Step::Kind::kReplace: {
        std::string out;
        size_t pos = 0, b = 0, e = 0;
        while (pos <= cur.size() && s.regex.find(cur, pos, &b, &e)) {
          out.append(cur, pos, b - pos);
          out += s.text;
          if (e == b) {
            if (b >= cur.size()) { pos = cur.size() + 1; break; }
            size_t n = utf8_len(static_cast<uint8_t>(cur[b]));
            out.append(cur, b, n);
            pos = b + n;
          } else {
            pos = e;
          }
        }
        if (pos < cur.size()) out.append(cur, pos, std::string::npos);
        cur = std::move(out);
        break;
      }
      case Step::Kind::kStrip: {
        size_t b = 0, e = cur.size();
        if (s.left) {
          while (b < e) {
            size_t i = b;
            if (!is_white_space(next_codepoint(cur, i))) break;
            b = i;
          }
        }
        if (s.right) {
          while (e > b) {
            size_t start = e - 1;
            while (start > b && (static_cast<uint8_t>(cur[start]) & 0xC0) == 0x80) --start;
            size_t i = start;
            if (!is_white_space(next_codepoint(cur, i))) break;
            e = start;
          }
        }
        cur = cur.substr(b, e - b);
        break;
      }
    }
  }
  return cur;
}

}  // namespace latent::tok
