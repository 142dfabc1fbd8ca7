#include "engine/cuda/elementwise_kernels.h"

#include "engine/cuda/cuda_status.h"

namespace nibble::cuda {
namespace {

constexpr int kBlock = 256;

unsigned Blocks(int64_t items) { return static_cast<unsigned>((items + kBlock - 1) / kBlock); }

__global__ void embedding_kernel(const half* table, const int* ids, int64_t tokens, int64_t vocab, int64_t dim,
                                 half* out) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= tokens * dim) return;
  const int64_t token = index / dim;
  const int id = ids[token];
  out[index] = id >= 0 && id < vocab ? table[static_cast<int64_t>(id) * dim + index % dim] : __float2half(0.0f);
}

__global__ void gather_rows_kernel(const char* x, const int* rows, int64_t count, int64_t row_bytes, char* out) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= count * row_bytes) return;
  const int64_t r = index / row_bytes;
  out[index] = x[static_cast<int64_t>(rows[r]) * row_bytes + index % row_bytes];
}

__global__ void silu_mul_kernel(const half* gate_up, int64_t tokens, int64_t f, half* out) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= tokens * f) return;
  const int64_t t = index / f;
  const int64_t i = index % f;
  const float gate = __half2float(gate_up[t * 2 * f + i]);
  const float up = __half2float(gate_up[t * 2 * f + f + i]);
  out[index] = __float2half(gate / (1.0f + __expf(-gate)) * up);
}

template <typename T>
__global__ void add_bias_kernel(T* y, const float* bias, int64_t tokens, int64_t n) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= tokens * n) return;
  if constexpr (sizeof(T) == 2) {
    y[index] = __float2half(__half2float(y[index]) + bias[index % n]);
  } else {
    y[index] += bias[index % n];
  }
}

}  // namespace

absl::Status LaunchEmbedding(const half* table, const int* ids, int64_t tokens, int64_t vocab, int64_t dim, half* out,
                             cudaStream_t stream) {
  if (tokens == 0) return absl::OkStatus();
  embedding_kernel<<<Blocks(tokens * dim), kBlock, 0, stream>>>(table, ids, tokens, vocab, dim, out);
  return LaunchStatus("embedding_kernel");
}

absl::Status LaunchGatherRows(const void* x, const int* rows, int64_t count, int64_t width, int element_bytes,
                              void* out, cudaStream_t stream) {
  if (count == 0) return absl::OkStatus();
  const int64_t row_bytes = width * element_bytes;
  gather_rows_kernel<<<Blocks(count * row_bytes), kBlock, 0, stream>>>(static_cast<const char*>(x), rows, count,
                                                                       row_bytes, static_cast<char*>(out));
  return LaunchStatus("gather_rows_kernel");
}

absl::Status LaunchSiluMul(const half* gate_up, int64_t tokens, int64_t f, half* out, cudaStream_t stream) {
  if (tokens == 0) return absl::OkStatus();
  silu_mul_kernel<<<Blocks(tokens * f), kBlock, 0, stream>>>(gate_up, tokens, f, out);
  return LaunchStatus("silu_mul_kernel");
}

absl::Status LaunchAddBias(void* y, bool y_is_float, const float* bias, int64_t tokens, int64_t n,
                           cudaStream_t stream) {
  if (tokens == 0) return absl::OkStatus();
  if (y_is_float) {
    add_bias_kernel<float><<<Blocks(tokens * n), kBlock, 0, stream>>>(static_cast<float*>(y), bias, tokens, n);
  } else {
    add_bias_kernel<half><<<Blocks(tokens * n), kBlock, 0, stream>>>(static_cast<half*>(y), bias, tokens, n);
  }
  return LaunchStatus("add_bias_kernel");
}

}  // namespace nibble::cuda
