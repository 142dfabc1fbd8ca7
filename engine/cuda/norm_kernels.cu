#include "engine/cuda/norm_kernels.h"

#include "engine/cuda/cuda_status.h"

namespace nibble::cuda {
namespace {

// One block per row. 256 threads: a row of 4096 halves is 16 per thread, enough to hide latency, and a
// block reduction over 8 warps is two shuffle rounds.
constexpr int kNormThreads = 256;

__device__ float BlockSum(float value) {
  __shared__ float warp_sums[kNormThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  value = lane < kNormThreads / 32 ? warp_sums[lane] : 0.0f;
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;  // every thread holds the block's sum
}

// residual (when delta != nullptr) += delta; out (when != nullptr) = RmsNorm(residual) * weight.
// The row is read twice (sum of squares, then scale); at decode sizes it sits in L1/L2 between the reads.
__global__ void __launch_bounds__(kNormThreads) add_rms_norm_kernel(half* residual, const half* delta,
                                                                     const half* weight, float eps, int dim,
                                                                     half* out) {
  half* row = residual + static_cast<int64_t>(blockIdx.x) * dim;
  const half* delta_row = delta != nullptr ? delta + static_cast<int64_t>(blockIdx.x) * dim : nullptr;
  float sum_squares = 0.0f;
  for (int i = threadIdx.x; i < dim; i += kNormThreads) {
    float value = __half2float(row[i]);
    if (delta_row != nullptr) {
      const half updated = __float2half(value + __half2float(delta_row[i]));
      row[i] = updated;
      value = __half2float(updated);
    }
    sum_squares += value * value;
  }
  if (out == nullptr) return;
  const float inv_rms = rsqrtf(BlockSum(sum_squares) / static_cast<float>(dim) + eps);
  half* out_row = out + static_cast<int64_t>(blockIdx.x) * dim;
  for (int i = threadIdx.x; i < dim; i += kNormThreads) {
    out_row[i] = __float2half(__half2float(weight[i]) * (__half2float(row[i]) * inv_rms));
  }
}

}  // namespace

absl::Status LaunchRmsNorm(const half* x, const half* weight, float eps, int64_t rows, int64_t dim, half* out,
                           cudaStream_t stream) {
  // x is read-only here: the kernel writes the residual only when a delta is given.
  return LaunchAddRmsNorm(const_cast<half*>(x), nullptr, weight, eps, rows, dim, out, stream);
}

absl::Status LaunchAddRmsNorm(half* residual, const half* delta, const half* weight, float eps, int64_t rows,
                              int64_t dim, half* out, cudaStream_t stream) {
  if (rows == 0) return absl::OkStatus();
  add_rms_norm_kernel<<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(residual, delta, weight, eps,
                                                                                static_cast<int>(dim), out);
  return LaunchStatus("add_rms_norm_kernel");
}

}  // namespace nibble::cuda
