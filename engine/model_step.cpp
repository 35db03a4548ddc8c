#include "engine/model_step.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace latent {
namespace {

class Writer {
 public:
  template <typename T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    buf_.insert(buf_.end(), p, p + sizeof(T));
  }
  template <typename T>
  void put_vec(const std::vector<T>& v) {
    put<int64_t>(static_cast<int64_t>(v.size()));
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    buf_.insert(buf_.end(), p, p + v.size() * sizeof(T));
  }
  std::vector<uint8_t>& bytes() { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& b) : b_(b) {}
  template <typename T>
  bool get(T& v) {
    if (pos_ + sizeof(T) > b_.size()) return false;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  template <typename T>
  bool get_vec(std::vector<T>& v) {
    int64_t n = 0;
    if (!get(n) || n < 0 || static_cast<size_t>(n) * sizeof(T) > b_.size() - pos_) return false;
    v.resize(static_cast<size_t>(n));
    std::memcpy(v.data(), b_.data() + pos_, static_cast<size_t>(n) * sizeof(T));
    pos_ += static_cast<size_t>(n) * sizeof(T);
    return true;
  }
  bool done() const { return pos_ == b_.size(); }

 private:
  const std::vector<uint8_t>& b_;
  size_t pos_ = 0;
};

}  // namespace

Status send_step(Collective& comm, const ModelStep& step) {
  Writer w;
  w.put(static_cast<int64_t>(step.kind));
  w.put(step.cache_blocks);
  w.put<int64_t>(step.return_hidden ? 1 : 0);
  w.put_vec(step.copies);
  w.put<int64_t>(static_cast<int64_t>(step.seqs.size()));
  for (const ModelStep::Seq& s : step.seqs) {
    w.put_vec(s.tokens);
    w.put(s.n_cached);
    w.put_vec(s.blocks);
    w.put<int64_t>(s.all_logits ? 1 : 0);
    w.put_vec(s.hidden);
  }
  int64_t size = static_cast<int64_t>(w.bytes().size());
  LATENT_RETURN_IF_ERROR(comm.broadcast(&size, sizeof size, 0));
  return comm.broadcast(w.bytes().data(), size, 0);
}

Result<ModelStep> receive_step(Collective& comm) {
  int64_t size = 0;
  const auto timeout = comm.timeout();
  comm.set_timeout(std::chrono::milliseconds(-1));
  Status got = comm.broadcast(&size, sizeof size, 0);
  comm.set_timeout(timeout);
  LATENT_RETURN_IF_ERROR(got);
  if (size <= 0 || size > (int64_t{1} << 31)) {
    return make_error(ErrorCode::kCorrupt, "model step from rank 0: expected a size in (0, 2^31], found " + std::to_string(size));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  LATENT_RETURN_IF_ERROR(comm.broadcast(bytes.data(), size, 0));
  Reader r(bytes);
  ModelStep step;
  int64_t kind = 0, hidden = 0, n_seq = 0;
  bool ok = r.get(kind) && r.get(step.cache_blocks) && r.get(hidden) && r.get_vec(step.copies) && r.get(n_seq) &&
            kind >= 0 && kind <= 2 && n_seq >= 0 && n_seq < (int64_t{1} << 24);
  for (int64_t i = 0; ok && i < n_seq; ++i) {
    ModelStep::Seq s;
    int64_t all = 0;
    ok = r.get_vec(s.tokens) && r.get(s.n_cached) && r.get_vec(s.blocks) && r.get(all) && r.get_vec(s.hidden);
    s.all_logits = all != 0;
    step.seqs.push_back(std::move(s));
  }
  if (!ok || !r.done()) {
    return make_error(ErrorCode::kCorrupt, "model step from rank 0: expected " + std::to_string(size) +
                                               " bytes of a well-formed step, found a malformed one");
  }
  step.kind = static_cast<ModelStep::Kind>(kind);
  step.return_hidden = hidden != 0;
  return step;
}

Status test_rank_failure(int rank, int64_t step) {
  static const std::pair<long, long> hook = [] {
    long r = -1, s = -1;
    const char* env = std::getenv("LATENT_TEST_RANK_FAIL");
    if (env && std::sscanf(env, "%ld:%ld", &r, &s) != 2) r = s = -1;
    return std::pair<long, long>{r, s};
  }();
  if (rank != hook.first || step != hook.second) return Status::Ok();
  return make_error(ErrorCode::kInternal, "LATENT_TEST_RANK_FAIL: rank " + std::to_string(rank) +
                                              " fails at step " + std::to_string(step) + " (a test hook)");
}

}  // namespace latent
