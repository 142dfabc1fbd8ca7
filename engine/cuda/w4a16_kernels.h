// W4A16 matrix multiply on the GPU: y [M, N] = x [M, K] W^T with W the 4-bit weights of w4a16_layout.h,
// fp16 activations, fp32 accumulation, fp16 output, optional fp32 bias.
//
// Three launchers, one per regime; the CUDA backend's Linear op picks among them by shape:
// - LaunchW4Mma: decode (M = 1..32) on the tiled layout with tensor cores (mma.m16n8k16), split-K across
//   warps when the tiles alone would not fill the GPU. Needs a zeroed fp32 workspace of M * N floats and
//   N / 16 zeroed int counters when split_k > 1; leaves both zeroed again.
// - LaunchW4Dequantize: writes W as fp16 [N, K] (tiled or generic layout) for the prefill path, which then
//   multiplies with cuBLAS.
// - LaunchW4Generic: any shape and M on the generic layout (the tiny models' odd shapes).
// Launchers take device pointers, sizes and a stream, queue the kernel and return the launch status; they
// never allocate or synchronize. A size or group outside the compiled instances is InvalidArgument.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace nibble::cuda {

struct W4DeviceWeights {
  const uint32_t* codes = nullptr;  // tiled words or generic bytes (w4a16_layout.h)
  const half* scales = nullptr;     // [groups, N]
  const uint32_t* zeros = nullptr;  // [groups, ceil(N / 8)]
  int64_t n = 0;
  int64_t k = 0;
  int group_size = 0;
  bool tiled = false;
};

struct W4MmaPlan {
  int n_tiles_per_block = 1;  // 16-row tiles one warp covers
  int split_k = 1;            // warps along K per group of tiles (reduced through the fp32 workspace)
};

// The plan the backend uses for an M x N x K problem on a GPU with `sm_count` multiprocessors.
W4MmaPlan PlanW4Mma(int64_t m, int64_t n, int64_t k, int sm_count);

absl::Status LaunchW4Mma(const W4DeviceWeights& w, const half* x, int64_t m, const float* bias, half* y,
                         const W4MmaPlan& plan, float* workspace, int* counters, cudaStream_t stream);

absl::Status LaunchW4Dequantize(const W4DeviceWeights& w, half* out, cudaStream_t stream);

absl::Status LaunchW4Generic(const W4DeviceWeights& w, const half* x, int64_t m, const float* bias, half* y,
                             cudaStream_t stream);

}  // namespace nibble::cuda
