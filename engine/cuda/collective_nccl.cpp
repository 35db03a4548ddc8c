// Collective body over NCCL: one rank per GPU. The unique id travels from rank 0 over a bootstrap Collective
// (MPI across machines, threads in one process); every call is enqueued on the given CUDA stream (the compute
// stream), so a CUDA graph can capture it. Buffers are device memory.
//
// Determinism: NCCL's ring and tree all-reduce reduce each element once and then copy it to every rank, so all
// ranks hold bit-identical sums (not rank-order sums); with NCCL_ALGO/NCCL_PROTO pinned, runs repeat bit for bit.
// Timeouts: a blocking communicator (the default) polls its stream against the deadline and aborts the
// communicator when a peer never answers; NCCL does not tell which peer, so the error names this rank and the
// call. Non-blocking (set_blocking(false), for graph capture) leaves waiting to the caller's stream.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "engine/collective.h"

namespace latent {
namespace {

Error nccl_error(const std::string& what, ncclResult_t r) {
  return make_error(ErrorCode::kIo, what + ": " + ncclGetErrorString(r));
}
Error cuda_error(const std::string& what, cudaError_t e) {
  return make_error(ErrorCode::kIo, what + ": " + cudaGetErrorString(e));
}

class NcclCollective final : public Collective {
 public:
  NcclCollective(ncclComm_t comm, int rank, int size, int device, cudaStream_t stream)
      : comm_(comm), rank_(rank), size_(size), device_(device), stream_(stream) {}
  ~NcclCollective() override {
    if (scratch_) cudaFree(scratch_);
    if (comm_) ncclCommDestroy(comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "nccl"; }

  Status all_reduce_sum(float* data, int64_t n) override {
    stats_.all_reduce_bytes += n * 4;
    ++stats_.calls;
    return finish("all_reduce_sum", ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat, ncclSum, comm_, stream_));
  }
  Status all_gather(const float* send, int64_t n, float* recv) override {
    stats_.all_gather_bytes += n * 4;
    ++stats_.calls;
    return finish("all_gather", ncclAllGather(send, recv, static_cast<size_t>(n), ncclFloat, comm_, stream_));
  }
  Status broadcast(void* data, int64_t bytes, int root) override {
    if (rank_ == root) stats_.broadcast_bytes += bytes;
    ++stats_.calls;
    return finish("broadcast", ncclBroadcast(data, data, static_cast<size_t>(bytes), ncclUint8, root, comm_, stream_));
  }
  Status send(const void* data, int64_t bytes, int dst) override {
    stats_.send_bytes += bytes;
    ++stats_.calls;
    return finish("send", ncclSend(data, static_cast<size_t>(bytes), ncclUint8, dst, comm_, stream_));
  }
  Status recv(void* data, int64_t bytes, int src) override {
    ++stats_.calls;
    return finish("recv", ncclRecv(data, static_cast<size_t>(bytes), ncclUint8, src, comm_, stream_));
  }
  Status barrier() override {
    if (!scratch_) {
      if (cudaError_t e = cudaMalloc(&scratch_, sizeof(float)); e != cudaSuccess) return cuda_error("barrier", e);
    }
    ++stats_.calls;
    const bool blocking = blocking_;
    blocking_ = true;  // a barrier waits, whatever the mode
    Status st = finish("barrier", ncclAllReduce(scratch_, scratch_, 1, ncclFloat, ncclSum, comm_, stream_));
    blocking_ = blocking;
    return st;
  }
  void abort(const std::string& why) override {
    (void)why;
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  void set_blocking(bool b) { blocking_ = b; }

 private:
  // Checks the enqueue, then (blocking) waits for the stream against the deadline.
  Status finish(const char* what, ncclResult_t r) {
    if (!comm_) return make_error(ErrorCode::kCancelled, std::string(what) + ": the NCCL communicator was aborted");
    if (r != ncclSuccess && r != ncclInProgress) return nccl_error(what, r);
    if (!blocking_) return Status::Ok();
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      cudaError_t q = cudaStreamQuery(stream_);
      if (q == cudaSuccess) return Status::Ok();
      if (q != cudaErrorNotReady) return cuda_error(what, q);
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress) return nccl_error(what, async);
      if (timeout_.count() >= 0 && std::chrono::steady_clock::now() - start > timeout_) {
        abort(what);
        return make_error(ErrorCode::kResourceExhausted,
                          std::string(what) + ": NCCL rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
                              " waited past " + std::to_string(timeout_.count() / 1000) +
                              " s (a peer rank is dead or stuck; NCCL does not say which)");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  ncclComm_t comm_;
  int rank_, size_, device_;
  cudaStream_t stream_;
  bool blocking_ = true;
  float* scratch_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<Collective>> nccl_collective(Collective& bootstrap, int device, void* stream) {
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) return cuda_error("NCCL: cudaSetDevice", e);
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (bootstrap.rank() == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) return nccl_error("ncclGetUniqueId", r);
  }
  LATENT_RETURN_IF_ERROR(bootstrap.broadcast(&id, sizeof id, 0));  // the id travels over MPI or threads
  ncclComm_t comm = nullptr;
  if (ncclResult_t r = ncclCommInitRank(&comm, bootstrap.size(), id, bootstrap.rank()); r != ncclSuccess) {
    return nccl_error("ncclCommInitRank (rank " + std::to_string(bootstrap.rank()) + ")", r);
  }
  return std::unique_ptr<Collective>(new NcclCollective(comm, bootstrap.rank(), bootstrap.size(), device,
                                                        static_cast<cudaStream_t>(stream)));
}

}  // namespace latent
