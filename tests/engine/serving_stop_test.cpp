// StopChecker: token stops, max_tokens, stop strings with hold-back, block end, suffix; with a one-char-per-id
// test source and with the real DeepSeek-V3 tokenizer.
#include <gtest/gtest.h>

#include "engine/stop.h"
#include "engine/stop_tokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/test_paths.h"

namespace latent {
namespace {

// id -> the character `id` (ASCII), so that tests can write text as ids.
class CharSource : public TokenTextSource {
 public:
  class Dec : public TextDecoder {
   public:
    std::string push(int32_t id) override { return std::string(1, static_cast<char>(id)); }
    std::string finish() override { return {}; }
  };
  std::unique_ptr<TextDecoder> new_decoder() const override { return std::make_unique<Dec>(); }
};

struct Run {
  std::string text;
  int emitted = 0;
  std::optional<FinishReason> finish;
};

Run run(const StopParams& p, const TokenTextSource* src, const std::string& ids, std::vector<std::string>* deltas = nullptr) {
  StopChecker c(p, src);
  Run r;
  for (char ch : ids) {
    auto o = c.push(static_cast<int32_t>(ch));
    r.emitted += o.emit_token;
    r.text += o.text;
    if (deltas) deltas->push_back(o.text);
    if (o.finish) {
      r.finish = o.finish;
      return r;
    }
  }
  r.text += c.flush();
  return r;
}

TEST(ServingStop, StopTokenIsNotEmittedAndMaxTokensCounts) {
  StopParams p;
  p.max_tokens = 100;
  p.stop_token_ids = {'#'};
  auto r = run(p, nullptr, "abc#def");
  EXPECT_EQ(r.finish, FinishReason::kStopToken);
  EXPECT_EQ(r.emitted, 3);
  EXPECT_EQ(r.text, "");  // no text source: ids only
  p.max_tokens = 2;
  r = run(p, nullptr, "abcdef");
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.emitted, 2);
}

TEST(ServingStop, StopStringIsCutAndPartialMatchesAreHeldBack) {
  CharSource src;
  StopParams p;
  p.stop_strings = {"END"};
  std::vector<std::string> deltas;
  auto r = run(p, &src, "abENxEN", &deltas);
  EXPECT_FALSE(r.finish);
  EXPECT_EQ(r.text, "abENxEN");  // "EN" was held back, then released by flush
  EXPECT_EQ(deltas[2], "");       // 'E' might start "END"
  EXPECT_EQ(deltas[4], "ENx");
  r = run(p, &src, "abcENDxyz");
  EXPECT_EQ(r.finish, FinishReason::kStopString);
  EXPECT_EQ(r.text, "abc");
}

TEST(ServingStop, EndOfTheEnclosingBlockAndReachingTheSuffix) {
  CharSource src;
  StopParams p;
  p.stop_at_block_end = true;
  auto r = run(p, &src, "x = f(a[1]) + {b}\n}\nnext");
  EXPECT_EQ(r.finish, FinishReason::kBlockEnd);
  EXPECT_EQ(r.text, "x = f(a[1]) + {b}\n");
  StopParams s;
  s.suffix_text = "\n    return total\n}\n";
  r = run(s, &src, "total += x\n    return total\n");
  EXPECT_EQ(r.finish, FinishReason::kSuffix);
  EXPECT_EQ(r.text, "total += x\n    ");
}

TEST(ServingStop, RealTokenizerStreamsTextAndStopsOnAString) {
  auto tok = Tokenizer::load(std::string(LATENT_TEST_DATA) + "/tokenizer/deepseek-v3");
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  auto shared = std::make_shared<const Tokenizer>(std::move(*tok));
  auto src = token_text_source(shared);
  const std::string text = "def add(a, b):\n    return a + b  # sum ü\n\n\nprint(add(1, 2))\n";
  auto ids = shared->encode(text);
  StopParams p;
  p.max_tokens = 1000;
  StopChecker all(p, src.get());
  std::string got;
  for (int32_t id : ids) got += all.push(id).text;
  got += all.flush();
  EXPECT_EQ(got, text);

  p.stop_strings = {"\n\n\n"};
  StopChecker c(p, src.get());
  std::string shown;
  std::optional<FinishReason> fin;
  for (int32_t id : ids) {
    auto o = c.push(id);
    shown += o.text;
    if (o.finish) {
      fin = o.finish;
      break;
    }
  }
  EXPECT_EQ(fin, FinishReason::kStopString);
  EXPECT_EQ(shown, "def add(a, b):\n    return a + b  # sum ü");
}

}  // namespace
}  // namespace latent
