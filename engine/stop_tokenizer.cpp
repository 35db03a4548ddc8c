#include "engine/stop_tokenizer.h"

#include "engine/tokenizer/stream_decoder.h"

namespace latent {
namespace {

class StreamTextDecoder final : public TextDecoder {
 public:
  StreamTextDecoder(std::shared_ptr<const Tokenizer> tok, bool skip)
      : tok_(std::move(tok)), decoder_(*tok_, skip) {}
  std::string push(int32_t id) override { return decoder_.push(id); }
  std::string finish() override { return decoder_.flush(); }

 private:
  std::shared_ptr<const Tokenizer> tok_;
  StreamDecoder decoder_;
};

class TokenizerSource final : public TokenTextSource {
 public:
  TokenizerSource(std::shared_ptr<const Tokenizer> tok, bool skip) : tok_(std::move(tok)), skip_(skip) {}
  std::unique_ptr<TextDecoder> new_decoder() const override {
    return std::make_unique<StreamTextDecoder>(tok_, skip_);
  }

 private:
  std::shared_ptr<const Tokenizer> tok_;
  bool skip_;
};

}  // namespace

std::shared_ptr<const TokenTextSource> token_text_source(std::shared_ptr<const Tokenizer> tokenizer,
                                                         bool skip_special_tokens) {
  return std::make_shared<TokenizerSource>(std::move(tokenizer), skip_special_tokens);
}

}  // namespace latent
