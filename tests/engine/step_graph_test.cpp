// The model's side of CUDA graphs (engine/device.h begin(graph_key), take_capture_failure), on the CPU through
// the same model file: which steps it offers for capture, and that a step whose capture failed (its ops recorded,
// not run) is run again and gives the logits of a device without graphs. The device here is the CPU device inside
// a double that "captures" a step the way CudaDevice does (the ops return without running) and fails it at
// fetch_out; the CUDA capture itself is tests/cuda/graph_test.cpp (unrun without a GPU).
#include <gtest/gtest.h>

#include "engine/device.h"
#include "engine/moe.h"
#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

using cpu::WeightView;

class FailingCaptureDevice final : public Device {
 public:
  explicit FailingCaptureDevice(std::unique_ptr<Device> cpu) : d_(std::move(cpu)) {}
  std::vector<int> keys;  // every begin()'s graph_key
  int captures = 0;
  int abandoned = 0;  // abandon_step() calls

  std::string name() const override { return d_->name(); }
  bool is_host() const override { return d_->is_host(); }
  Result<float*> allocate(int64_t n) override { return d_->allocate(n); }
  void release(float* p) override { d_->release(p); }
  Result<WeightView> upload(const WeightView& w) override { return d_->upload(w); }
  Result<std::shared_ptr<const void>> prepare_moe(const ModelConfig& c, const MoeWeights& w) override {
    return d_->prepare_moe(c, w);
  }
  Result<KvCache> make_cache(const ModelConfig& c, int64_t n, DType t) override { return d_->make_cache(c, n, t); }
  DType cache_dtype() const override { return d_->cache_dtype(); }
  Result<float*> host_out(std::vector<float>& host, int64_t n) override { return d_->host_out(host, n); }
  Status fetch_out(std::vector<float>& host, const float* written) override {
    if (capturing_) {  // the capture ends here and fails: nothing of the step ran
      capturing_ = false;
      failed_ = true;
      return make_error(ErrorCode::kInternal, "capture failed (test double)");
    }
    return d_->fetch_out(host, written);
  }
  Result<std::vector<float>> to_host(const float* src, int64_t n) override { return d_->to_host(src, n); }
  Status from_host(const float* h, int64_t n, float* dst) override { return d_->from_host(h, n, dst); }
  Status begin(const std::vector<SeqSpan>& seqs, std::span<const int32_t> ids, const KvCache& cache,
               int graph_key) override {
    keys.push_back(graph_key);
    capturing_ = graph_key != 0 && captures++ == 0;  // the first offered step is "captured"
    return d_->begin(seqs, ids, cache, graph_key);
  }
  bool take_capture_failure() override { return std::exchange(failed_, false); }
  void abandon_step() override {
    ++abandoned;
    capturing_ = false;
  }
  Status embed(const WeightView& t, float* x) override { return skip() ? Status::Ok() : d_->embed(t, x); }
  Status rms_norm(const float* x, int64_t ldx, int64_t n, const WeightView& g, float eps, float* y,
                  int64_t ldy) override {
    return skip() ? Status::Ok() : d_->rms_norm(x, ldx, n, g, eps, y, ldy);
  }
  Status linear(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy) override {
    return skip() ? Status::Ok() : d_->linear(x, ldx, n, w, y, ldy);
  }
  Status rope_q(float* q, int64_t row0, int64_t n, int64_t h, int64_t nope, int64_t p) override {
    return skip() ? Status::Ok() : d_->rope_q(q, row0, n, h, nope, p);
  }
  Status write_cache(float* kv, const WeightView& g, float eps, int64_t layer, KvCache& cache) override {
    return skip() ? Status::Ok() : d_->write_cache(kv, g, eps, layer, cache);
  }
  Status mla_absorb_q(const float* q, int64_t n, int64_t qs, const WeightView& kv_b, int64_t h, int64_t nope,
                      int64_t p, int64_t v, float* q_lat) override {
    return skip() ? Status::Ok() : d_->mla_absorb_q(q, n, qs, kv_b, h, nope, p, v, q_lat);
  }
  Status mla_attention(const float* q_lat, const float* q, int64_t qs, const std::vector<SeqSpan>& seqs, int64_t h,
                       int64_t nope, int64_t layer, const KvCache& cache, float scale, float* o_lat) override {
    return skip() ? Status::Ok() : d_->mla_attention(q_lat, q, qs, seqs, h, nope, layer, cache, scale, o_lat);
  }
  Status mla_apply_uv(const float* o_lat, int64_t n, const WeightView& kv_b, int64_t h, int64_t nope, int64_t v,
                      float* out) override {
    return skip() ? Status::Ok() : d_->mla_apply_uv(o_lat, n, kv_b, h, nope, v, out);
  }
  Status mla(const float* q, int64_t n, int64_t qs, const std::vector<SeqSpan>& seqs, const WeightView& kv_b,
             int64_t h, int64_t nope, int64_t p, int64_t v, int64_t layer, const KvCache& cache, float scale,
             float* q_lat, float* o_lat, float* attn) override {
    return skip() ? Status::Ok() : d_->mla(q, n, qs, seqs, kv_b, h, nope, p, v, layer, cache, scale, q_lat, o_lat, attn);
  }
  Status mlp(const MlpWeights& w, const float* x, int64_t n, float* y) override {
    return skip() ? Status::Ok() : d_->mlp(w, x, n, y);
  }
  Status moe(const ModelConfig& c, const MoeWeights& w, const void* p, const float* x, int64_t n, float* y,
             std::vector<int32_t>* idx, std::vector<float>* wt) override {
    return skip() ? Status::Ok() : d_->moe(c, w, p, x, n, y, idx, wt);
  }
  Status add(const float* a, int64_t n, float* y) override { return skip() ? Status::Ok() : d_->add(a, n, y); }
  Status gather_rows(const float* x, int64_t d, std::span<const int64_t> rows, float* y) override {
    return skip() ? Status::Ok() : d_->gather_rows(x, d, rows, y);
  }

 private:
  bool skip() const { return capturing_; }
  std::unique_ptr<Device> d_;
  bool capturing_ = false, failed_ = false;
};

// The model in `dir` on the CPU device wrapped in a FailingCaptureDevice; *dev is the wrapper.
Result<std::unique_ptr<DeepseekModel>> load_wrapped(const std::string& dir, FailingCaptureDevice** dev) {
  ModelOptions o;
  o.wrap_device = [dev](std::unique_ptr<Device> d) -> std::unique_ptr<Device> {
    auto w = std::make_unique<FailingCaptureDevice>(std::move(d));
    *dev = w.get();
    return w;
  };
  return DeepseekModel::load(dir, o);
}

TEST(StepGraph, AStepWhoseCaptureFailedRunsAgainAndGivesTheSameLogits) {
  const std::string dir = test::golden_dir("v3-tiny");
  FailingCaptureDevice* dev = nullptr;
  auto wrapped = load_wrapped(dir, &dev);
  auto plain = DeepseekModel::load(dir);
  ASSERT_TRUE(wrapped.ok()) << wrapped.error().to_string();
  ASSERT_TRUE(plain.ok());
  ASSERT_NE(dev, nullptr);
  const std::vector<int32_t> prompt = {1, 5, 9, 2, 7, 3};
  std::vector<float> logits[2];
  std::vector<float> hidden;
  DeepseekModel* models[2] = {plain->get(), wrapped->get()};
  for (int k = 0; k < 2; ++k) {
    auto cache = models[k]->make_cache(4);
    ASSERT_TRUE(cache.ok());
    test::SequenceRunner run(*models[k], *cache, 16);
    run.feed(prompt, /*all_logits=*/false);  // captured (and failed) on the wrapped model, then run again
    const ForwardResult r = run.feed({4}, /*all_logits=*/false, nullptr, /*hidden=*/true);
    logits[k] = r.logits;
    if (k == 1) hidden = r.hidden;
  }
  EXPECT_EQ(logits[1], logits[0]) << "the rerun step and the next one give the plain device's logits";
  EXPECT_EQ(hidden.size(), static_cast<size_t>((*plain)->config().hidden_size));
  EXPECT_FALSE(dev->take_capture_failure()) << "taken by the model";
  // The failed step was offered (key 1: logits), then rerun with key 0; a step that wants hidden states is
  // another kind of graph (key 2).
  ASSERT_EQ(dev->keys.size(), 3u);
  EXPECT_EQ(dev->keys[0], 1);
  EXPECT_EQ(dev->keys[1], 0);
  EXPECT_EQ(dev->keys[2], 2);
  // A traced step is never offered.
  auto cache = (*wrapped)->make_cache(4);
  ASSERT_TRUE(cache.ok());
  test::SequenceRunner run(**wrapped, *cache, 8);
  ForwardTrace trace;
  run.feed({1, 2}, true, &trace);
  EXPECT_EQ(dev->keys.back(), 0);
  EXPECT_EQ(dev->abandoned, 0) << "no step failed";
}

// An MTP-module step is offered for capture too (key 5: its hidden states are in device memory before begin()); one
// whose capture failed runs again and gives the MTP logits of a device without graphs.
TEST(StepGraph, AnMtpStepWhoseCaptureFailedRunsAgainAndGivesTheSameLogits) {
  const std::string dir = test::golden_dir("v3-tiny");
  FailingCaptureDevice* dev = nullptr;
  auto wrapped = load_wrapped(dir, &dev);
  auto plain = DeepseekModel::load(dir);
  ASSERT_TRUE(wrapped.ok()) << wrapped.error().to_string();
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE((*plain)->has_mtp()) << "v3-tiny has an MTP module";
  const std::vector<int32_t> prompt = {1, 5, 9, 2, 7, 3};
  std::vector<float> mtp_logits[2];
  DeepseekModel* models[2] = {plain->get(), wrapped->get()};
  for (int k = 0; k < 2; ++k) {
    auto cache = models[k]->make_cache(4);
    ASSERT_TRUE(cache.ok());
    test::SequenceRunner run(*models[k], *cache, 16);
    ForwardTrace trace;  // traced: never offered, so the MTP step is the wrapped device's first offered step
    const ForwardResult main = run.feed(prompt, /*all_logits=*/true, &trace, /*hidden=*/true);
    const int64_t d = models[k]->config().hidden_size;
    ASSERT_EQ(main.hidden.size(), prompt.size() * static_cast<size_t>(d));
    const std::vector<int32_t> next(prompt.begin() + 1, prompt.end());  // t[i+1] for slots 0..4
    mtp_logits[k] = run.feed_mtp(next, main.hidden.data()).logits;
    ASSERT_FALSE(mtp_logits[k].empty());
  }
  EXPECT_EQ(mtp_logits[1], mtp_logits[0]);
  ASSERT_EQ(dev->keys.size(), 3u);
  EXPECT_EQ(dev->keys[0], 0) << "the traced main step";
  EXPECT_EQ(dev->keys[1], 5) << "the MTP step, logits";
  EXPECT_EQ(dev->keys[2], 0) << "its eager rerun";
  EXPECT_FALSE(dev->take_capture_failure()) << "taken by the model";
}

// A step that fails after begin() on an error of the model's own (here: token selections that do not match the
// logit rows), not of an op, is abandoned on the device: a CUDA capture left open would record the next work on
// the stream (a cache block copy) instead of running it. The model stays usable.
TEST(StepGraph, AStepThatFailsAfterBeginIsAbandonedOnTheDevice) {
  FailingCaptureDevice* dev = nullptr;
  auto model = load_wrapped(test::golden_dir("v3-tiny"), &dev);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  auto cache = (*model)->make_cache(4);
  ASSERT_TRUE(cache.ok());
  auto blocks = cache->allocate(1);
  ASSERT_TRUE(blocks.ok());
  const std::vector<int32_t> tokens = {1, 5, 9};
  SequenceInput in;
  in.tokens = tokens;
  in.block_table = *blocks;
  SamplingParams greedy;
  const std::vector<TokenSelect> two = {{&greedy, {}}, {&greedy, {}}};  // one logit row wants one selection
  ForwardOptions fo;
  fo.select = two;
  auto r = (*model)->forward({&in, 1}, *cache, fo);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("one token selection per logit row"), std::string::npos) << r.error().message;
  EXPECT_EQ(dev->abandoned, 1);
  fo.select = std::span<const TokenSelect>(two).first(1);
  r = (*model)->forward({&in, 1}, *cache, fo);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->ids.size(), 1u);
  EXPECT_GE(r->ids[0], 0);
  EXPECT_EQ(dev->abandoned, 1);
}

}  // namespace
}  // namespace latent
