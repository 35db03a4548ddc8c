#pragma once
// Collective: the ranks that share one model (a process group passed down, as PyTorch's ProcessGroup), with one
// body per transport:
//   thread_group(n)   n in-process ranks (threads): tests, several CPU sockets;
//   mpi_collective()  one rank per process of an MPI world (mpirun launches and bootstraps the ranks);
//   nccl_collective() one rank per GPU (engine/cuda/collective_nccl.cpp; the unique id travels over another
//                     Collective, e.g. the MPI one), on a CUDA stream so that graphs can capture the calls.
//
// Contracts every body keeps:
//   - Deterministic reductions: all_reduce_sum adds the ranks' buffers in rank order (r0 + r1 + ...), so every
//     rank holds bit-identical results.
//   - No wait lasts forever: a call that waits longer than timeout() returns kResourceExhausted naming the
//     rank it waited for ("all_reduce_sum: rank 1 did not arrive within 30 s"). A negative timeout waits
//     without limit (a follower waiting for rank 0's next step).
//   - Every rank calls the same collectives in the same order with the same sizes.
//
// Thread-safety: one Collective object belongs to one rank and is used by one thread at a time.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/base/result.h"

namespace latent {

// Payload bytes that passed through this rank's calls (what the model asked for, before the transport's
// algorithm: a ring all-reduce moves 2 (n-1)/n of the payload per rank). For bench/ and the docs.
struct CollectiveStats {
  int64_t all_reduce_bytes = 0;
  int64_t all_gather_bytes = 0;  // this rank's contribution
  int64_t broadcast_bytes = 0;
  int64_t send_bytes = 0;
  int64_t calls = 0;
  int64_t total() const { return all_reduce_bytes + all_gather_bytes + broadcast_bytes + send_bytes; }
};

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "threads", "mpi", "nccl"

  // data[n] <- sum over ranks of data[n], added in rank order.
  virtual Status all_reduce_sum(float* data, int64_t n) = 0;
  // recv[size, n] <- every rank's send[n], in rank order (recv row r = rank r's send).
  virtual Status all_gather(const float* send, int64_t n, float* recv) = 0;
  // data[bytes] on every rank <- root's data.
  virtual Status broadcast(void* data, int64_t bytes, int root) = 0;
  virtual Status send(const void* data, int64_t bytes, int dst) = 0;
  virtual Status recv(void* data, int64_t bytes, int src) = 0;
  // Returns once every rank has called it. Default: an all-reduce of one value that counts as a call, not as
  // all-reduce bytes (bodies whose all-reduce takes device pointers, or that have a cheaper wait, override it).
  virtual Status barrier() {
    const int64_t before = stats_.all_reduce_bytes;
    float token = 0;
    Status st = all_reduce_sum(&token, 1);
    stats_.all_reduce_bytes = before;
    ++stats_.calls;
    return st;
  }
  // Ends the group after a failure that leaves the ranks out of step (a rank cannot load its shard, a
  // collective failed mid-forward), so that no rank waits for the others forever or for its timeout:
  //   threads: every wait, now or later, returns an error carrying `why` (rank 0 learns at once);
  //   MPI: prints `why` on stderr and ends the whole job (MPI_Abort): the processes cannot be rejoined, and
  //   a rank stuck waiting for a dead one would otherwise hold the job up (MPI_Finalize waits for all).
  virtual void abort(const std::string& why) = 0;

  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  const CollectiveStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  std::chrono::milliseconds timeout_{default_timeout()};
  CollectiveStats stats_;

 public:
  // LATENT_COLLECTIVE_TIMEOUT_S (seconds) if set, else 300 s: long enough for a slow first forward of a large
  // model on a loaded machine, short enough that a dead rank ends the service instead of hanging it.
  static std::chrono::milliseconds default_timeout();
};

// n in-process ranks sharing memory; collective i of the result is rank i, to be used by its own thread.
std::vector<std::unique_ptr<Collective>> thread_group(int n);

// A group of some of `parent`'s ranks (the tensor-parallel ranks of one pipeline stage): group rank i is parent
// rank members[i]; this rank must be a member. Built on the parent's send/recv (engine/collective_group.cpp),
// deterministic like every body; abort() ends the parent. Borrows `parent`, used by the same thread.
Result<std::unique_ptr<Collective>> sub_group(Collective& parent, const std::vector<int>& members);

// This process's rank in MPI_COMM_WORLD (initializes MPI once; finalized at exit). kUnsupported when Latent
// was built without MPI (engine/mpi/ needs libopenmpi-dev).
Result<std::unique_ptr<Collective>> mpi_collective();
// One rank per GPU over NCCL (engine/cuda/collective_nccl.cpp): `bootstrap` carries rank 0's unique id and
// gives rank and size; calls are enqueued on `stream` (a cudaStream_t; null = the default stream) and take
// device pointers. kUnsupported in a build without CUDA.
Result<std::unique_ptr<Collective>> nccl_collective(Collective& bootstrap, int device, void* stream);

// True when this process was started by mpirun with more than one rank (OMPI_COMM_WORLD_SIZE / PMI_SIZE).
bool launched_by_mpirun();

}  // namespace latent
