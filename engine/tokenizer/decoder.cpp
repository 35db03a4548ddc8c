#include "engine/tokenizer/decoder.h"

#include "engine/tokenizer/byte_level.h"

namespace latent::tok {

Status Decoder::add(const nlohmann::json& c) {
  std::string type = c.at("type").get<std::string>();
  if (type == "Sequence") {
    for (const auto& d : c.at("decoders")) LATENT_RETURN_IF_ERROR(add(d));
    return Status::Ok();
  }
  Step s{};
  if (type == "ByteLevel") {
    s.kind = Step::Kind::kByteLevel;
  } else if (type == "Replace") {
    s.kind = Step::Kind::kReplace;
    const auto& pat = c.at("pattern");
    bool literal = pat.contains("String");
    LATENT_ASSIGN_OR_RETURN(s.regex, Regex::compile(literal ? pat["String"].get<std::string>()
                                                            : pat.at("Regex").get<std::string>(),
                                                    literal));
    s.content = c.at("content").get<std::string>();
  } else if (type == "Fuse") {
    s.kind = Step::Kind::kFuse;
  } else if (type == "Strip") {
    s.kind = Step::Kind::kStrip;
    s.content = c.at("content").get<std::string>();
    s.start = c.value("start", 0);
    s.stop = c.value("stop", 0);
  } else if (type == "ByteFallback") {
    s.kind = Step::Kind::kByteFallback;
  } else if (type == "Metaspace") {
    s.kind = Step::Kind::kMetaspace;
    s.content = c.value("replacement", std::string("\xE2\x96\x81"));
    if (c.contains("prepend_scheme")) s.prepend = c["prepend_scheme"].get<std::string>() != "never";
    else s.prepend = c.value("add_prefix_space", true);
  } else {
    return make_error(ErrorCode::kUnsupported, "decoder type '" + type +
                                                   "': expected one of ByteLevel, Sequence, Replace, Fuse, "
                                                   "Strip, ByteFallback, Metaspace");
  }
  steps_.push_back(std::move(s));
  return Status::Ok();
}

Result<Decoder> Decoder::from_json(const nlohmann::json& config) {
  Decoder d;
  if (config.is_null()) return d;
  try {
    LATENT_RETURN_IF_ERROR(d.add(config));
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("decoder: ") + e.what());
  }
  return d;
}

namespace {

// "<0xAB>" -> 0xAB, or -1.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (steps_.empty()) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const auto& s : steps_) {
    switch (s.kind) {
      case Step::Kind::kByteLevel: {
        // Each token's characters map back to bytes; a token with a character outside the alphabet (an added
        // token) keeps its UTF-8. Invalid UTF-8 becomes U+FFFD.
        std::string bytes;
        for (const auto& t : tokens)
          if (!byte_level_decode(t, bytes)) bytes += t;
        tokens.assign(1, utf8_lossy(bytes));
        break;
      }
      case Step::Kind::kReplace:
        for (auto& t : tokens) {
          std::string out;
          size_t pos = 0, b = 0, e = 0;
          while (pos < t.size() && s.regex.find(t, pos, &b, &e) && e > b) {
            out.append(t, pos, b - pos);
            out += s.content;
            pos = e;
          }
          out.append(t, pos, std::string::npos);
          t = std::move(out);
        }
        break;
      case Step::Kind::kFuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        break;
      }
      case Step::Kind::kStrip:
        for (auto& t : tokens) {
          size_t b = 0, e = t.size();
          for (int k = 0; k < s.start && t.compare(b, s.content.size(), s.content) == 0; ++k) b += s.content.size();
          for (int k = 0; k < s.stop && e >= b + s.content.size() &&
                          t.compare(e - s.content.size(), s.content.size(), s.content) == 0;
               ++k)
            e -= s.content.size();
          t = t.substr(b, e - b);
        }
        break;
      case Step::Kind::kByteFallback: {
        std::vector<std::string> out;
        std::string pending;  // consecutive <0xAB> bytes
        size_t n_pending = 0;
        auto flush = [&] {
          if (!n_pending) return;
          if (valid_utf8_prefix(pending) == pending.size()) out.push_back(pending);
          else
            for (size_t k = 0; k < n_pending; ++k) out.push_back("\xEF\xBF\xBD");
          pending.clear();
          n_pending = 0;
        };
        for (auto& t : tokens) {
          int b = byte_token(t);
          if (b >= 0) {
            pending.push_back(static_cast<char>(b));
            ++n_pending;
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        tokens = std::move(out);
        break;
      }
      case Step::Kind::kMetaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          std::string out;
          const std::string& t = tokens[i];
          for (size_t p = 0; p < t.size();) {
            if (!s.content.empty() && t.compare(p, s.content.size(), s.content) == 0) {
              if (!(i == 0 && p == 0 && s.prepend)) out += ' ';
              p += s.content.size();
            } else {
              out += t[p++];
            }
          }
          tokens[i] = std::move(out);
        }
        break;
    }
  }
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace latent::tok
