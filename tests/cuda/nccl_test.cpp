// The NCCL body of Collective on one GPU (a 1-rank communicator bootstrapped over a thread group): the calls
// run on the given stream over device buffers. Skips cleanly without a GPU.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include "engine/collective.h"
#include "tests/cuda/cuda_test_util.h"

namespace latent {
namespace {

TEST(NcclCollective, OneRankAllReduceGatherBroadcastBarrier) {
  LATENT_REQUIRE_GPU();
  auto boot = thread_group(1);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  auto comm = nccl_collective(*boot[0], 0, stream);
  ASSERT_TRUE(comm.ok()) << comm.error().to_string();
  EXPECT_EQ((*comm)->size(), 1);
  EXPECT_EQ((*comm)->name(), "nccl");
  const std::vector<float> host = {1.5f, -2.f, 3.25f, 0.f};
  float *d = nullptr, *g = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 16), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&g, 16), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(d, host.data(), 16, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_TRUE((*comm)->all_reduce_sum(d, 4).ok());
  ASSERT_TRUE((*comm)->all_gather(d, 4, g).ok());
  ASSERT_TRUE((*comm)->broadcast(g, 16, 0).ok());
  ASSERT_TRUE((*comm)->barrier().ok());
  std::vector<float> back(4);
  ASSERT_EQ(cudaMemcpy(back.data(), g, 16, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(back, host);  // one rank: the sum and the gather are the input
  EXPECT_EQ((*comm)->stats().all_reduce_bytes, 16);
  cudaFree(d);
  cudaFree(g);
  comm->reset();
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace latent
