#include "engine/cuda/cuda_backend.h"

#include <cuda_runtime.h>

namespace nibble {

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

}  // namespace nibble
