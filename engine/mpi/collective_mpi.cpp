// Collective body over MPI_COMM_WORLD (OpenMPI from Debian). Built on non-blocking point-to-point calls that
// are polled against a deadline, so that a rank that never answers becomes an error naming it instead of a
// hang, and so that reductions are deterministic by construction: rank 0 gathers every buffer, adds them in
// rank order and sends the one result back (every rank bit-identical; MPI_Allreduce promises no such thing).
// Bandwidth is not the point of this body (CPU ranks, control messages); NCCL carries the GPU traffic.
// The C API only: OpenMPI's deprecated C++ bindings need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "engine/collective.h"

namespace latent {
namespace {

enum Tag : int { kTagReduce = 101, kTagReduceResult, kTagGather, kTagBroadcast, kTagSend, kTagBarrier };

std::string mpi_message(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, buf, &len);
  return std::string(buf, static_cast<size_t>(len));
}

class MpiCollective final : public Collective {
 public:
  MpiCollective() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  Status all_reduce_sum(float* data, int64_t n) override {
    stats_.all_reduce_bytes += n * 4;
    ++stats_.calls;
    if (size_ == 1) return Status::Ok();
    LATENT_RETURN_IF_ERROR(check_count(n * 4, "all_reduce_sum"));
    const int count = static_cast<int>(n);
    if (rank_ != 0) {
      Pending p(this, "all_reduce_sum");
      LATENT_RETURN_IF_ERROR(p.isend(data, count, MPI_FLOAT, 0, kTagReduce));
      LATENT_RETURN_IF_ERROR(p.irecv(data, count, MPI_FLOAT, 0, kTagReduceResult));
      return p.wait();
    }
    tmp_.resize(static_cast<size_t>(n * (size_ - 1)));
    {
      Pending p(this, "all_reduce_sum");
      for (int r = 1; r < size_; ++r) {
        LATENT_RETURN_IF_ERROR(p.irecv(tmp_.data() + (r - 1) * n, count, MPI_FLOAT, r, kTagReduce));
      }
      LATENT_RETURN_IF_ERROR(p.wait());
    }
    for (int r = 1; r < size_; ++r) {  // rank order
      const float* src = tmp_.data() + (r - 1) * n;
      for (int64_t i = 0; i < n; ++i) data[i] += src[i];
    }
    Pending p(this, "all_reduce_sum");
    for (int r = 1; r < size_; ++r) LATENT_RETURN_IF_ERROR(p.isend(data, count, MPI_FLOAT, r, kTagReduceResult));
    return p.wait();
  }

  Status all_gather(const float* send, int64_t n, float* recv) override {
    stats_.all_gather_bytes += n * 4;
    ++stats_.calls;
    LATENT_RETURN_IF_ERROR(check_count(n * 4, "all_gather"));
    const int count = static_cast<int>(n);
    std::memmove(recv + rank_ * n, send, static_cast<size_t>(n) * 4);
    Pending p(this, "all_gather");
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      LATENT_RETURN_IF_ERROR(p.isend(send, count, MPI_FLOAT, r, kTagGather));
      LATENT_RETURN_IF_ERROR(p.irecv(recv + r * n, count, MPI_FLOAT, r, kTagGather));
    }
    return p.wait();
  }

  Status broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= size_) {
      return make_error(ErrorCode::kInvalidArgument, "broadcast: expected a root in [0, " + std::to_string(size_) +
                                                         "), found " + std::to_string(root));
    }
    if (rank_ == root) stats_.broadcast_bytes += bytes;
    ++stats_.calls;
    LATENT_RETURN_IF_ERROR(check_count(bytes, "broadcast"));
    Pending p(this, "broadcast");
    if (rank_ == root) {
      for (int r = 0; r < size_; ++r) {
        if (r != root) LATENT_RETURN_IF_ERROR(p.isend(data, static_cast<int>(bytes), MPI_BYTE, r, kTagBroadcast));
      }
    } else {
      LATENT_RETURN_IF_ERROR(p.irecv(data, static_cast<int>(bytes), MPI_BYTE, root, kTagBroadcast));
    }
    return p.wait();
  }

  Status send(const void* data, int64_t bytes, int dst) override {
    LATENT_RETURN_IF_ERROR(check_peer(dst, "send"));
    LATENT_RETURN_IF_ERROR(check_count(bytes, "send"));
    stats_.send_bytes += bytes;
    ++stats_.calls;
    Pending p(this, "send");
    LATENT_RETURN_IF_ERROR(p.isend(data, static_cast<int>(bytes), MPI_BYTE, dst, kTagSend));
    return p.wait();
  }

  Status recv(void* data, int64_t bytes, int src) override {
    LATENT_RETURN_IF_ERROR(check_peer(src, "recv"));
    LATENT_RETURN_IF_ERROR(check_count(bytes, "recv"));
    ++stats_.calls;
    Pending p(this, "recv");
    LATENT_RETURN_IF_ERROR(p.irecv(data, static_cast<int>(bytes), MPI_BYTE, src, kTagSend));
    return p.wait();
  }

  void abort(const std::string& why) override {
    std::fprintf(stderr, "latent: MPI rank %d of %d: %s; ending the MPI job\n", rank_, size_, why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

 private:
  // The requests of one call, waited for together against the deadline; each remembers its peer so that a
  // timeout names the rank that did not answer.
  class Pending {
   public:
    Pending(MpiCollective* c, const char* what) : c_(c), what_(what) {}
    ~Pending() {
      for (MPI_Request& r : reqs_) {
        if (r != MPI_REQUEST_NULL) {  // abandoned after an error: the group is unusable anyway
          MPI_Cancel(&r);
          MPI_Request_free(&r);
        }
      }
    }
    Status isend(const void* buf, int count, MPI_Datatype type, int peer, int tag) {
      return add(MPI_Isend(buf, count, type, peer, tag, MPI_COMM_WORLD, &next()), peer);
    }
    Status irecv(void* buf, int count, MPI_Datatype type, int peer, int tag) {
      return add(MPI_Irecv(buf, count, type, peer, tag, MPI_COMM_WORLD, &next()), peer);
    }
    Status wait() {
      const auto timeout = c_->timeout();
      const auto start = std::chrono::steady_clock::now();
      int spins = 0;
      for (;;) {
        bool all = true;
        for (size_t i = 0; i < reqs_.size(); ++i) {
          if (reqs_[i] == MPI_REQUEST_NULL) continue;
          int done = 0;
          const int rc = MPI_Test(&reqs_[i], &done, MPI_STATUS_IGNORE);
          if (rc != MPI_SUCCESS) {
            return make_error(ErrorCode::kIo, std::string(what_) + ": with rank " + std::to_string(peers_[i]) +
                                                  ": " + mpi_message(rc));
          }
          all = all && done;
        }
        if (all) return Status::Ok();
        if (timeout.count() >= 0 && std::chrono::steady_clock::now() - start > timeout) {
          size_t i = 0;
          while (reqs_[i] == MPI_REQUEST_NULL) ++i;
          return make_error(ErrorCode::kResourceExhausted,
                            std::string(what_) + ": rank " + std::to_string(peers_[i]) + " did not answer within " +
                                std::to_string(timeout.count() / 1000.0).substr(0, 6) + " s (seen by rank " +
                                std::to_string(c_->rank_) + ")");
        }
        // Spin briefly (decode exchanges are microseconds apart), then yield the core: the machine is shared.
        if (++spins > 2000) std::this_thread::sleep_for(std::chrono::microseconds(spins > 20000 ? 200 : 20));
      }
    }

   private:
    MPI_Request& next() {
      reqs_.push_back(MPI_REQUEST_NULL);
      return reqs_.back();
    }
    Status add(int rc, int peer) {
      peers_.push_back(peer);
      if (rc == MPI_SUCCESS) return Status::Ok();
      return make_error(ErrorCode::kIo, std::string(what_) + ": with rank " + std::to_string(peer) + ": " + mpi_message(rc));
    }
    MpiCollective* c_;
    const char* what_;
    std::vector<MPI_Request> reqs_;
    std::vector<int> peers_;
  };

  Status check_peer(int peer, const char* what) const {
    if (peer < 0 || peer >= size_ || peer == rank_) {
      return make_error(ErrorCode::kInvalidArgument, std::string(what) + ": expected another rank in [0, " +
                                                         std::to_string(size_) + "), found " + std::to_string(peer));
    }
    return Status::Ok();
  }
  static Status check_count(int64_t bytes, const char* what) {
    if (bytes < 0 || bytes > (int64_t{1} << 31) - 1) {
      return make_error(ErrorCode::kInvalidArgument, std::string(what) + ": expected at most 2^31 - 1 bytes per call, found " +
                                                         std::to_string(bytes));
    }
    return Status::Ok();
  }

  int rank_ = 0, size_ = 1;
  std::vector<float> tmp_;
};

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace

Result<std::unique_ptr<Collective>> mpi_collective() {
  static std::once_flag once;
  static int init_rc = MPI_SUCCESS;
  std::call_once(once, [] {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    init_rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    if (init_rc == MPI_SUCCESS) {
      MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
      std::atexit(finalize_at_exit);
    }
  });
  if (init_rc != MPI_SUCCESS) return make_error(ErrorCode::kIo, "MPI_Init_thread: " + mpi_message(init_rc));
  return std::unique_ptr<Collective>(new MpiCollective());
}

bool launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    if (const char* v = std::getenv(var)) {
      if (std::atoi(v) > 1) return true;
    }
  }
  return false;
}

}  // namespace latent
