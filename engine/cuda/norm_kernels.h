// RMSNorm on the GPU, fp16 in and out, fp32 accumulation; optionally fused with the residual add.
//
// Launchers take device pointers, sizes and a stream, queue the kernel and return the launch status;
// they never allocate or synchronize.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace nibble::cuda {

// out[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * weight. x, out [rows, dim]; weight [dim].
absl::Status LaunchRmsNorm(const half* x, const half* weight, float eps, int64_t rows, int64_t dim, half* out,
                           cudaStream_t stream);

// residual += delta (rounded to fp16), then, when out != nullptr, out = RmsNorm(residual) * weight.
// Both launchers take dim up to 16384 when dim % 8 == 0 and the pointers are 16-byte aligned (else up to 2048);
// a larger dim is InvalidArgument.
absl::Status LaunchAddRmsNorm(half* residual, const half* delta, const half* weight, float eps, int64_t rows,
                              int64_t dim, half* out, cudaStream_t stream);

}  // namespace nibble::cuda
