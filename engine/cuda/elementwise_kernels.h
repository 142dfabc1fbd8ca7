// Small memory-bound kernels of the forward pass: embedding lookup, row gathers, SwiGLU, bias add.
// Launchers take device pointers, sizes and a stream and return the launch status.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace nibble::cuda {

// out[t] = table[ids[t]]; an id outside [0, vocab) writes zeros (the op checks ids before launching).
absl::Status LaunchEmbedding(const half* table, const int* ids, int64_t tokens, int64_t vocab, int64_t dim, half* out,
                             cudaStream_t stream);
// out[r] = x[rows[r]] for `count` rows of `width` elements of `element_bytes` bytes each.
absl::Status LaunchGatherRows(const void* x, const int* rows, int64_t count, int64_t width, int element_bytes,
                              void* out, cudaStream_t stream);
// out[t, i] = silu(gate_up[t, i]) * gate_up[t, F + i], computed in fp32. gate_up [T, 2F], out [T, F].
absl::Status LaunchSiluMul(const half* gate_up, int64_t tokens, int64_t f, half* out, cudaStream_t stream);
// y[t, n] += bias[n] for y fp16 or fp32 [T, N].
absl::Status LaunchAddBias(void* y, bool y_is_float, const float* bias, int64_t tokens, int64_t n, cudaStream_t stream);

}  // namespace nibble::cuda
