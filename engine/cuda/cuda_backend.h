// The CUDA backend: fp16 activations and KV cache, fp32 accumulation, W4A16 tensor-core kernels for
// decode, dequantize + cuBLAS for prefill, tensor-core prefill attention, split-sequence decode attention,
// sampling on the GPU.
//
// Contract: as Backend (backend.h). One CUDA stream per backend; ops are queued on it in call order.
// Weights are repacked into the kernels' layouts once, at upload (w4a16_layout.h). The backend owns
// scratch buffers (split-K workspace, dequantized weights for prefill, attention partials, sampling
// buffers) that grow at upload time or on the first step of a new size; steps of sizes already seen never
// allocate (so they can be captured into CUDA graphs).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "engine/runtime/backend.h"

namespace nibble {

// GPUs the CUDA runtime sees (0 when there is no driver or no device).
int CudaDeviceCount();

// A CUDA backend on GPU `device`.
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device);

}  // namespace nibble
