// The upload bookkeeping of a model's weights (engine/weight_upload.h): each distinct tensor copied once (a tied
// head over the embedding, MTP's copies of the embedding and head), progress in bytes up to the total, a load
// that can be stopped. The copy itself is CUDA's (unrun without a GPU); here it is a recording function, and the
// whole model is loaded on the CPU through the same code (DeepseekModel::upload_stats).
#include <gtest/gtest.h>

#include <vector>

#include "engine/weight_upload.h"
#include "engine/weights.h"
#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

using cpu::WeightView;

// An "upload" that records what it copied and returns a view of its own copy (as a device would: new addresses).
struct RecordingDevice {
  std::vector<std::vector<uint8_t>> copies;
  WeightUploader::UploadFn fn() {
    return [this](const WeightView& w) -> Result<WeightView> {
      const auto* p = static_cast<const uint8_t*>(w.data);
      copies.emplace_back(p, p + weight_view_bytes(w));
      WeightView d = w;
      d.data = copies.back().data();
      return d;
    };
  }
};

WeightView view(const std::vector<float>& v, int64_t rows, int64_t cols) {
  return WeightView{v.data(), DType::kF32, rows, cols, nullptr, 128};
}

TEST(WeightUploader, ViewsOfTheSameBytesShareOneUpload) {
  std::vector<float> embed(6 * 4, 0.5f), norm(4, 1.0f);
  RecordingDevice dev;
  std::vector<std::pair<int64_t, int64_t>> progress;
  WeightUploader up(dev.fn(), /*compare_contents=*/true, [&](int64_t done, int64_t total) {
    progress.emplace_back(done, total);
    return true;
  });
  const WeightView e = view(embed, 6, 4), head = view(embed, 6, 4), n = view(norm, 1, 4);  // a tied head
  for (const WeightView& w : {e, n, head}) up.plan(w);
  EXPECT_EQ(up.total(), (6 * 4 + 4) * 4);  // the tied head is not counted twice
  auto de = up.upload(e);
  auto dn = up.upload(n);
  auto dh = up.upload(head);
  ASSERT_TRUE(de.ok() && dn.ok() && dh.ok());
  EXPECT_EQ(dev.copies.size(), 2u);
  EXPECT_EQ(dh->data, de->data) << "the head reads the embedding's device copy";
  EXPECT_NE(de->data, e.data);
  EXPECT_EQ(up.stats().tensors, 2);
  EXPECT_EQ(up.stats().shared_tensors, 1);
  EXPECT_EQ(up.stats().shared_bytes, 6 * 4 * 4);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(up.total(), up.total()));
  for (size_t i = 1; i < progress.size(); ++i) EXPECT_GE(progress[i].first, progress[i - 1].first);
}

TEST(WeightUploader, EqualCopiesShareWhenNamedAndComparedOnly) {
  std::vector<float> embed(8 * 4), mtp_embed, other(8 * 4, 2.0f);
  for (size_t i = 0; i < embed.size(); ++i) embed[i] = 0.25f * static_cast<float>(i);
  mtp_embed = embed;  // MTP's embed_tokens: the checkpoint's own copy, same contents
  const WeightView e = view(embed, 8, 4), m = view(mtp_embed, 8, 4), o = view(other, 8, 4);
  {
    RecordingDevice dev;
    WeightUploader up(dev.fn(), /*compare_contents=*/true);
    for (const WeightView& w : {e, m, o}) up.plan(w);
    ASSERT_TRUE(up.upload(e).ok());
    auto dm = up.upload(m, &e);
    auto dox = up.upload(o, &e);  // named but different: its own copy
    ASSERT_TRUE(dm.ok() && dox.ok());
    EXPECT_EQ(dev.copies.size(), 2u);
    EXPECT_EQ(dm->data, dev.copies[0].data());
    EXPECT_EQ(up.stats().shared_tensors, 1);
    EXPECT_EQ(up.done(), up.total()) << "a shared copy counts as done";
  }
  {
    RecordingDevice dev;  // no comparison (the CPU: its views are the mapping, nothing to save)
    WeightUploader up(dev.fn(), /*compare_contents=*/false);
    ASSERT_TRUE(up.upload(e).ok());
    ASSERT_TRUE(up.upload(m, &e).ok());
    EXPECT_EQ(dev.copies.size(), 2u);
    EXPECT_EQ(up.stats().shared_tensors, 0);
  }
}

// Random weights (Weights::placeholder, made on the device at upload): every tensor is uploaded, as the real
// model's would be. Their data used to be one shared marker address, so every same-shaped tensor (each layer's
// projections) became one device copy and a decode benchmark read a fraction of the model's bytes.
TEST(WeightUploader, EachPlaceholderTensorIsUploaded) {
  Weights w = Weights::placeholder();
  auto q0 = w.matrix("model.layers.0.self_attn.q_proj.weight", 96, 64);
  auto q1 = w.matrix("model.layers.1.self_attn.q_proj.weight", 96, 64);
  auto embed = w.matrix("model.embed_tokens.weight", 200, 64);
  auto mtp_embed = w.matrix("model.layers.2.embed_tokens.weight", 200, 64);
  ASSERT_TRUE(q0.ok() && q1.ok() && embed.ok() && mtp_embed.ok());
  EXPECT_NE(q0->data, q1->data);
  EXPECT_EQ(w.matrix("model.layers.0.self_attn.q_proj.weight", 96, 64)->data, q0->data) << "one marker per name";
  int64_t made = 0;  // a device that generates weights never reads the view's data (neither does the uploader)
  WeightUploader up([&](const WeightView& v) -> Result<WeightView> { return ++made, v; }, /*compare_contents=*/false);
  for (const WeightView* v : {&*q0, &*q1, &*embed, &*mtp_embed}) up.plan(*v);
  EXPECT_EQ(up.total(), 2 * (96 * 64 * 2) + 2 * (200 * 64 * 2));
  for (const WeightView* v : {&*q0, &*q1, &*embed}) ASSERT_TRUE(up.upload(*v).ok());
  ASSERT_TRUE(up.upload(*mtp_embed, &*embed).ok());  // named as a copy, not compared: uploaded too
  EXPECT_EQ(made, 4);
  EXPECT_EQ(up.stats().tensors, 4);
  EXPECT_EQ(up.stats().shared_tensors, 0);
}

TEST(WeightUploader, ProgressReturningFalseStopsTheLoad) {
  std::vector<float> a(16, 1.0f), b(16, 2.0f);
  RecordingDevice dev;
  WeightUploader up(dev.fn(), true, [](int64_t done, int64_t) { return done == 0; });
  up.plan(view(a, 4, 4));
  up.plan(view(b, 4, 4));
  ASSERT_TRUE(up.advance(0).ok());
  auto r = up.upload(view(a, 4, 4));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
  EXPECT_NE(r.error().message.find("stopped after"), std::string::npos) << r.error().message;
}

// A tied checkpoint on the CPU, through the model file: the head shares the embedding's upload, and its logits are
// those of the same checkpoint with lm_head.weight stored as a copy of the embedding.
TEST(WeightUploader, TiedHeadSharesTheEmbeddingAndGivesTheSameLogits) {
  test::Checkpoint c = test::Checkpoint::read(test::golden_dir("v3-tiny"));
  ASSERT_TRUE(c.tensors.count("model.embed_tokens.weight"));
  c.tensors["lm_head.weight"] = c.tensors["model.embed_tokens.weight"];
  test::TempDir copy("upload_copy"), tied("upload_tied");
  c.write(copy.path());
  c.tensors.erase("lm_head.weight");
  c.config["tie_word_embeddings"] = true;
  c.write(tied.path());
  ModelOptions o;
  o.load_mtp = false;
  int calls = 0;
  o.on_upload = [&](int64_t, int64_t) { return ++calls > 0; };
  auto untied_model = DeepseekModel::load(copy.path(), o);
  auto tied_model = DeepseekModel::load(tied.path(), o);
  ASSERT_TRUE(untied_model.ok()) << untied_model.error().to_string();
  ASSERT_TRUE(tied_model.ok()) << tied_model.error().to_string();
  EXPECT_EQ(calls, 0) << "the CPU copies nothing: no upload progress";
  const UploadStats& s = (*tied_model)->upload_stats();
  const int64_t V = c.config["vocab_size"], d = c.config["hidden_size"];
  EXPECT_EQ(s.shared_tensors, 1);
  EXPECT_EQ(s.shared_bytes, V * d * static_cast<int64_t>(dtype_size(c.tensors["model.embed_tokens.weight"].dtype)));
  EXPECT_EQ((*untied_model)->upload_stats().shared_tensors, 0);
  EXPECT_EQ((*untied_model)->upload_stats().tensors, s.tensors + 1);

  const std::vector<int32_t> ids = {1, 5, 9, 2, 7};
  std::vector<float> logits[2];
  DeepseekModel* models[2] = {untied_model->get(), tied_model->get()};
  for (int k = 0; k < 2; ++k) {
    auto cache = models[k]->make_cache(4);
    ASSERT_TRUE(cache.ok());
    test::SequenceRunner run(*models[k], *cache, static_cast<int64_t>(ids.size()));
    logits[k] = run.feed(ids).logits;
  }
  ASSERT_EQ(logits[0].size(), ids.size() * static_cast<size_t>(V));
  EXPECT_EQ(logits[0], logits[1]);
}

}  // namespace
}  // namespace latent
