// Collective body for in-process ranks (threads). Every call is a rendezvous: each rank publishes a pointer to
// its buffer, waits until all ranks have (A), reads the others' buffers, and waits again (B) before anyone may
// reuse a buffer. Sums run over the slots in rank order on every rank, hence bit-identical results.
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

#include "engine/collective.h"

namespace latent {
namespace {

std::string seconds(std::chrono::milliseconds t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(t.count()) / 1000.0);
  return buf;
}

// State shared by the ranks of one group; all fields under mu.
struct ThreadShared {
  explicit ThreadShared(int n)
      : n(n), here(static_cast<size_t>(n), 0), slot(static_cast<size_t>(n), nullptr),
        mail(static_cast<size_t>(n * n)) {}
  const int n;
  std::mutex mu;
  std::condition_variable cv;
  uint64_t generation = 0;  // rendezvous completed so far
  int arrived = 0;
  std::vector<char> here;          // [n] arrived at the current rendezvous
  std::vector<const void*> slot;   // [n] buffers published for the current call
  std::vector<std::deque<std::vector<uint8_t>>> mail;  // [src * n + dst] messages in flight
  std::string aborted;             // set once: every later wait fails with it

  // Publishes `ptr` as rank's slot (unless nullptr: the closing barrier of a call, which must not write a slot
  // that slower ranks may still be reading without the lock - a data race TSan reported) and waits for every
  // rank. On timeout the group is aborted (its rendezvous count no longer holds), so the other ranks fail at
  // once instead of waiting their own timeout.
  Status rendezvous(int rank, const void* ptr, const char* what, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    if (!aborted.empty()) return make_error(ErrorCode::kCancelled, std::string(what) + ": " + aborted);
    if (ptr != nullptr) slot[static_cast<size_t>(rank)] = ptr;
    here[static_cast<size_t>(rank)] = 1;
    if (++arrived == n) {
      arrived = 0;
      std::fill(here.begin(), here.end(), 0);
      ++generation;
      cv.notify_all();
      return Status::Ok();
    }
    const uint64_t gen = generation;
    const auto done = [&] { return generation != gen || !aborted.empty(); };
    if (timeout.count() < 0) {
      cv.wait(lock, done);
    } else if (!cv.wait_for(lock, timeout, done)) {
      int missing = 0;
      while (missing < n && here[static_cast<size_t>(missing)]) ++missing;
      aborted = "rank " + std::to_string(missing) + " did not arrive within " + seconds(timeout) +
                " (seen by rank " + std::to_string(rank) + ")";
      cv.notify_all();
      return make_error(ErrorCode::kResourceExhausted, std::string(what) + ": " + aborted);
    }
    if (generation == gen) return make_error(ErrorCode::kCancelled, std::string(what) + ": " + aborted);
    return Status::Ok();
  }

  void abort(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu);
    if (aborted.empty()) aborted = why;
    cv.notify_all();
  }
};

class ThreadCollective final : public Collective {
 public:
  ThreadCollective(std::shared_ptr<ThreadShared> shared, int rank) : s_(std::move(shared)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return s_->n; }
  std::string name() const override { return "threads"; }

  Status all_reduce_sum(float* data, int64_t n) override {
    stats_.all_reduce_bytes += n * 4;
    ++stats_.calls;
    LATENT_RETURN_IF_ERROR(s_->rendezvous(rank_, data, "all_reduce_sum", timeout_));
    tmp_.assign(static_cast<const float*>(s_->slot[0]), static_cast<const float*>(s_->slot[0]) + n);
    for (int r = 1; r < s_->n; ++r) {  // rank order: the same additions on every rank
      const float* src = static_cast<const float*>(s_->slot[static_cast<size_t>(r)]);
      for (int64_t i = 0; i < n; ++i) tmp_[static_cast<size_t>(i)] += src[i];
    }
    LATENT_RETURN_IF_ERROR(s_->rendezvous(rank_, nullptr, "all_reduce_sum", timeout_));
    std::copy(tmp_.begin(), tmp_.end(), data);
    return Status::Ok();
  }

  Status all_gather(const float* send, int64_t n, float* recv) override {
    stats_.all_gather_bytes += n * 4;
    ++stats_.calls;
    LATENT_RETURN_IF_ERROR(s_->rendezvous(rank_, send, "all_gather", timeout_));
    for (int r = 0; r < s_->n; ++r) {
      const float* src = static_cast<const float*>(s_->slot[static_cast<size_t>(r)]);
      std::copy(src, src + n, recv + r * n);
    }
    return s_->rendezvous(rank_, nullptr, "all_gather", timeout_);
  }

  Status broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= s_->n) {
      return make_error(ErrorCode::kInvalidArgument, "broadcast: expected a root in [0, " + std::to_string(s_->n) +
                                                         "), found " + std::to_string(root));
    }
    if (rank_ == root) stats_.broadcast_bytes += bytes;
    ++stats_.calls;
    LATENT_RETURN_IF_ERROR(s_->rendezvous(rank_, data, "broadcast", timeout_));
    if (rank_ != root && bytes > 0) std::memcpy(data, s_->slot[static_cast<size_t>(root)], static_cast<size_t>(bytes));
    return s_->rendezvous(rank_, nullptr, "broadcast", timeout_);
  }

  Status send(const void* data, int64_t bytes, int dst) override {
    LATENT_RETURN_IF_ERROR(check_peer(dst, "send"));
    stats_.send_bytes += bytes;
    ++stats_.calls;
    std::lock_guard<std::mutex> lock(s_->mu);
    if (!s_->aborted.empty()) return make_error(ErrorCode::kCancelled, "send: " + s_->aborted);
    const uint8_t* p = static_cast<const uint8_t*>(data);
    s_->mail[static_cast<size_t>(rank_ * s_->n + dst)].emplace_back(p, p + bytes);
    s_->cv.notify_all();
    return Status::Ok();
  }

  Status recv(void* data, int64_t bytes, int src) override {
    LATENT_RETURN_IF_ERROR(check_peer(src, "recv"));
    ++stats_.calls;
    std::unique_lock<std::mutex> lock(s_->mu);
    auto& box = s_->mail[static_cast<size_t>(src * s_->n + rank_)];
    const auto ready = [&] { return !box.empty() || !s_->aborted.empty(); };
    if (timeout_.count() < 0) {
      s_->cv.wait(lock, ready);
    } else if (!s_->cv.wait_for(lock, timeout_, ready)) {
      return make_error(ErrorCode::kResourceExhausted, "recv: rank " + std::to_string(src) + " sent nothing within " +
                                                           seconds(timeout_) + " (seen by rank " +
                                                           std::to_string(rank_) + ")");
    }
    if (box.empty()) return make_error(ErrorCode::kCancelled, "recv: " + s_->aborted);
    std::vector<uint8_t> msg = std::move(box.front());
    box.pop_front();
    if (static_cast<int64_t>(msg.size()) != bytes) {
      return make_error(ErrorCode::kInvalidArgument, "recv from rank " + std::to_string(src) + ": expected " +
                                                         std::to_string(bytes) + " bytes, found " +
                                                         std::to_string(msg.size()));
    }
    std::memcpy(data, msg.data(), msg.size());
    return Status::Ok();
  }

  Status barrier() override {
    ++stats_.calls;
    return s_->rendezvous(rank_, nullptr, "barrier", timeout_);
  }

  void abort(const std::string& why) override { s_->abort("rank " + std::to_string(rank_) + " stopped: " + why); }

 private:
  Status check_peer(int peer, const char* what) const {
    if (peer < 0 || peer >= s_->n || peer == rank_) {
      return make_error(ErrorCode::kInvalidArgument, std::string(what) + ": expected another rank in [0, " +
                                                         std::to_string(s_->n) + "), found " + std::to_string(peer));
    }
    return Status::Ok();
  }

  std::shared_ptr<ThreadShared> s_;
  int rank_;
  std::vector<float> tmp_;
};

}  // namespace

std::chrono::milliseconds Collective::default_timeout() {
  if (const char* env = std::getenv("LATENT_COLLECTIVE_TIMEOUT_S")) {
    char* end = nullptr;
    const double s = std::strtod(env, &end);
    if (end != env && s > 0) return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  }
  return std::chrono::seconds(300);
}

std::vector<std::unique_ptr<Collective>> thread_group(int n) {
  auto shared = std::make_shared<ThreadShared>(n);
  std::vector<std::unique_ptr<Collective>> out;
  for (int r = 0; r < n; ++r) out.push_back(std::make_unique<ThreadCollective>(shared, r));
  return out;
}

}  // namespace latent
