#include "engine/cuda/norm_kernels.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"

namespace nibble::cuda {
namespace {

// One block per row. 256 threads: a row of 4096 halves is two 16-byte chunks per thread, and a block
// reduction over 8 warps is two shuffle rounds.
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

// kVec halves read or written at once: 8 (one 16-byte access; rows of a dim divisible by 8) or 1.
template <int kVec>
struct alignas(2 * kVec) Halves {
  half value[kVec];
};

// Chunks of kVec halves one thread keeps in registers between the two passes over its row: up to
// kNormThreads * kVec * kMaxChunks elements per row (16384 with 16-byte chunks, 2048 with single halves).
constexpr int kMaxChunks = 8;

// residual (when delta != nullptr) += delta; out (when != nullptr) = RmsNorm(residual) * weight.
// Every load of the row is issued before any store (the chunks live in registers), so a thread pays one
// memory latency per pass rather than one per element: with plain loops the compiler must assume the row
// and delta pointers alias and serializes each load behind the previous store.
template <int kVec>
__global__ void __launch_bounds__(kNormThreads)
    add_rms_norm_kernel(half* residual, const half* delta, const half* weight, float eps, int dim, half* out) {
  using Chunk = Halves<kVec>;
  const int chunks = dim / kVec;
  auto* row = reinterpret_cast<Chunk*>(residual + static_cast<int64_t>(blockIdx.x) * dim);
  const auto* delta_row =
      delta != nullptr ? reinterpret_cast<const Chunk*>(delta + static_cast<int64_t>(blockIdx.x) * dim) : nullptr;
  Chunk values[kMaxChunks];
  Chunk deltas[kMaxChunks];
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int index = threadIdx.x + c * kNormThreads;
    if (index < chunks) {
      values[c] = row[index];
      if (delta_row != nullptr) deltas[c] = delta_row[index];
    }
  }
  float sum_squares = 0.0f;
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int index = threadIdx.x + c * kNormThreads;
    if (index >= chunks) continue;
#pragma unroll
    for (int v = 0; v < kVec; ++v) {
      if (delta_row != nullptr)
        values[c].value[v] = __float2half(__half2float(values[c].value[v]) + __half2float(deltas[c].value[v]));
      const float value = __half2float(values[c].value[v]);
      sum_squares += value * value;
    }
    if (delta_row != nullptr) row[index] = values[c];
  }
  if (out == nullptr) return;
  const float inv_rms = rsqrtf(BlockSum(sum_squares) / static_cast<float>(dim) + eps);
  auto* out_row = reinterpret_cast<Chunk*>(out + static_cast<int64_t>(blockIdx.x) * dim);
  const auto* weights = reinterpret_cast<const Chunk*>(weight);
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int index = threadIdx.x + c * kNormThreads;
    if (index >= chunks) continue;
    const Chunk w = weights[index];
    Chunk result;
#pragma unroll
    for (int v = 0; v < kVec; ++v) {
      result.value[v] = __float2half(__half2float(w.value[v]) * (__half2float(values[c].value[v]) * inv_rms));
    }
    out_row[index] = result;
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
  // 16-byte chunks need 16-byte aligned rows: a dim divisible by 8 and aligned base pointers.
  const bool aligned = dim % 8 == 0 && (reinterpret_cast<uintptr_t>(residual) | reinterpret_cast<uintptr_t>(delta) |
                                        reinterpret_cast<uintptr_t>(weight) | reinterpret_cast<uintptr_t>(out)) %
                                               16 ==
                                           0;
  const int64_t max_dim = int64_t{kNormThreads} * kMaxChunks * (aligned ? 8 : 1);
  if (dim > max_dim) {
    return absl::InvalidArgumentError(absl::StrCat("add_rms_norm_kernel: dim ", dim, " exceeds the ", max_dim,
                                                   " a block holds in registers", aligned ? "" : " (unaligned rows)"));
  }
  const auto kernel = aligned ? add_rms_norm_kernel<8> : add_rms_norm_kernel<1>;
  kernel<<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(residual, delta, weight, eps, static_cast<int>(dim),
                                                                   out);
  return LaunchStatus("add_rms_norm_kernel");
}

}  // namespace nibble::cuda
