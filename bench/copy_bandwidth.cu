#include "bench/copy_bandwidth.h"

#include <algorithm>

#include "bench/gpu_timing.h"

namespace nibble::bench {
namespace {

// Grid-stride copy with 16-byte loads and stores.
__global__ void copy_kernel(const uint4* __restrict__ from, uint4* __restrict__ to, size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    to[i] = from[i];
  }
}

}  // namespace

CopyBandwidth MeasureCopyBandwidth(cudaStream_t stream) {
  const size_t bytes = size_t{1} << 30;
  void* a = nullptr;
  void* b = nullptr;
  CheckCuda(cudaMalloc(&a, bytes), "copy buffer");
  CheckCuda(cudaMalloc(&b, bytes), "copy buffer");
  CheckCuda(cudaMemset(a, 1, bytes), "copy buffer");
  CheckCuda(cudaMemset(b, 2, bytes), "copy buffer");
  cudaDeviceProp properties{};
  cudaGetDeviceProperties(&properties, 0);
  const unsigned blocks = static_cast<unsigned>(properties.multiProcessorCount * 8);
  CopyBandwidth result;
  const double memcpy_ms = MedianMillisPerCall(stream, 4, 9, [&](int i) {
    cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice, stream);
  });
  const double kernel_ms = MedianMillisPerCall(stream, 4, 9, [&](int i) {
    copy_kernel<<<blocks, 512, 0, stream>>>(static_cast<const uint4*>(i % 2 ? b : a),
                                            static_cast<uint4*>(i % 2 ? a : b), bytes / sizeof(uint4));
  });
  result.memcpy_gbs = 2.0 * bytes / (memcpy_ms * 1e6);
  result.kernel_gbs = 2.0 * bytes / (kernel_ms * 1e6);
  result.best_gbs = std::max(result.memcpy_gbs, result.kernel_gbs);
  cudaFree(a);
  cudaFree(b);
  return result;
}

}  // namespace nibble::bench
