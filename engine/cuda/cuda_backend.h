// The CUDA backend: fp16 activations, W4A16 kernels, paged attention, GPU sampling.
#pragma once

namespace nibble {

// GPUs the CUDA runtime sees (0 when there is no driver or no device).
int CudaDeviceCount();

}  // namespace nibble
