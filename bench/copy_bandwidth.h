// The copy bandwidth of the GPU, measured in the run that reports percentages of it: 1 GiB device-to-device
// copies by cudaMemcpy and by a 16-byte-vector copy kernel, counting bytes read plus bytes written.
#pragma once

#include <cuda_runtime.h>

namespace nibble::bench {

struct CopyBandwidth {
  double memcpy_gbs = 0.0;
  double kernel_gbs = 0.0;
  double best_gbs = 0.0;  // the reference the benchmarks divide by
};

CopyBandwidth MeasureCopyBandwidth(cudaStream_t stream);

}  // namespace nibble::bench
