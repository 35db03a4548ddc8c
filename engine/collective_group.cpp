// Collective body for a subset of a parent's ranks (sub_group in collective.h), on the parent's send/recv only,
// so that it works over every transport. Member 0 of the group is its hub: an all-reduce sends every buffer to
// it, it adds them in group order (r0 + r1 + ...) and sends the sum back (bit-identical on every member, the
// same additions as the threads body); an all-gather collects at the hub and sends the whole back; a broadcast
// goes from the root to each member. Sends before receives never cross (no two members wait on each other), so
// a transport whose send completes only at the matching receive (MPI's rendezvous protocol) cannot deadlock.
#include <algorithm>

#include "engine/collective.h"

namespace latent {
namespace {

class GroupCollective final : public Collective {
 public:
  GroupCollective(Collective& parent, std::vector<int> members, int rank)
      : parent_(parent), members_(std::move(members)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(members_.size()); }
  std::string name() const override { return parent_.name() + " group"; }

  Status all_reduce_sum(float* data, int64_t n) override {
    stats_.all_reduce_bytes += n * 4;
    ++stats_.calls;
    if (size() == 1) return Status::Ok();
    if (rank_ != 0) {
      LATENT_RETURN_IF_ERROR(parent_.send(data, n * 4, members_[0]));
      return parent_.recv(data, n * 4, members_[0]);
    }
    tmp_.resize(static_cast<size_t>(n));
    for (int r = 1; r < size(); ++r) {  // group order
      LATENT_RETURN_IF_ERROR(parent_.recv(tmp_.data(), n * 4, members_[static_cast<size_t>(r)]));
      for (int64_t i = 0; i < n; ++i) data[i] += tmp_[static_cast<size_t>(i)];
    }
    for (int r = 1; r < size(); ++r) LATENT_RETURN_IF_ERROR(parent_.send(data, n * 4, members_[static_cast<size_t>(r)]));
    return Status::Ok();
  }

  Status all_gather(const float* send, int64_t n, float* recv) override {
    stats_.all_gather_bytes += n * 4;
    ++stats_.calls;
    std::copy(send, send + n, recv + rank_ * n);
    if (size() == 1) return Status::Ok();
    const int64_t all = n * size() * 4;
    if (rank_ != 0) {
      LATENT_RETURN_IF_ERROR(parent_.send(send, n * 4, members_[0]));
      return parent_.recv(recv, all, members_[0]);
    }
    for (int r = 1; r < size(); ++r) LATENT_RETURN_IF_ERROR(parent_.recv(recv + r * n, n * 4, members_[static_cast<size_t>(r)]));
    for (int r = 1; r < size(); ++r) LATENT_RETURN_IF_ERROR(parent_.send(recv, all, members_[static_cast<size_t>(r)]));
    return Status::Ok();
  }

  Status broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= size()) {
      return make_error(ErrorCode::kInvalidArgument, "broadcast: expected a root in [0, " + std::to_string(size()) +
                                                         "), found " + std::to_string(root));
    }
    if (rank_ == root) stats_.broadcast_bytes += bytes;
    ++stats_.calls;
    if (rank_ != root) return parent_.recv(data, bytes, members_[static_cast<size_t>(root)]);
    for (int r = 0; r < size(); ++r) {
      if (r != root) LATENT_RETURN_IF_ERROR(parent_.send(data, bytes, members_[static_cast<size_t>(r)]));
    }
    return Status::Ok();
  }

  Status send(const void* data, int64_t bytes, int dst) override {
    LATENT_RETURN_IF_ERROR(check_peer(dst, "send"));
    stats_.send_bytes += bytes;
    ++stats_.calls;
    return parent_.send(data, bytes, members_[static_cast<size_t>(dst)]);
  }

  Status recv(void* data, int64_t bytes, int src) override {
    LATENT_RETURN_IF_ERROR(check_peer(src, "recv"));
    ++stats_.calls;
    return parent_.recv(data, bytes, members_[static_cast<size_t>(src)]);
  }

  void abort(const std::string& why) override { parent_.abort(why); }

 private:
  Status check_peer(int peer, const char* what) const {
    if (peer < 0 || peer >= size() || peer == rank_) {
      return make_error(ErrorCode::kInvalidArgument, std::string(what) + ": expected another group member in [0, " +
                                                         std::to_string(size()) + "), found " + std::to_string(peer));
    }
    return Status::Ok();
  }

  Collective& parent_;
  std::vector<int> members_;  // parent ranks, in group rank order
  int rank_;
  std::vector<float> tmp_;
};

}  // namespace

Result<std::unique_ptr<Collective>> sub_group(Collective& parent, const std::vector<int>& members) {
  const auto me = std::find(members.begin(), members.end(), parent.rank());
  if (me == members.end()) {
    return make_error(ErrorCode::kInvalidArgument, "sub_group: expected rank " + std::to_string(parent.rank()) +
                                                       " among the members, found it missing");
  }
  for (int m : members) {
    if (m < 0 || m >= parent.size() || std::count(members.begin(), members.end(), m) != 1) {
      return make_error(ErrorCode::kInvalidArgument, "sub_group: expected distinct ranks in [0, " +
                                                         std::to_string(parent.size()) + "), found " + std::to_string(m));
    }
  }
  return std::unique_ptr<Collective>(new GroupCollective(parent, members, static_cast<int>(me - members.begin())));
}

}  // namespace latent
