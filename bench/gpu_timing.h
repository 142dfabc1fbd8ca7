// Timing GPU work for the benchmarks: the work is captured into a CUDA graph (so host launch overhead is not
// measured), replayed, and timed with CUDA events; the median of several replays is reported.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

namespace nibble::bench {

inline void CheckCuda(cudaError_t error, const char* what) {
  if (error != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(error));
    std::exit(1);
  }
}

// Median milliseconds of one call of `enqueue(i)` for i = 0..calls-1 (each call may use its own buffers),
// measured over `replays` replays of a graph holding all the calls.
inline double MedianMillisPerCall(cudaStream_t stream, int calls, int replays,
                                  const std::function<void(int)>& enqueue) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CheckCuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
  for (int i = 0; i < calls; ++i) enqueue(i);
  CheckCuda(cudaStreamEndCapture(stream, &graph), "end capture");
  CheckCuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  CheckCuda(cudaGraphLaunch(exec, stream), "warm-up");
  CheckCuda(cudaStreamSynchronize(stream), "warm-up");
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<double> times;
  for (int r = 0; r < replays; ++r) {
    cudaEventRecord(start, stream);
    cudaGraphLaunch(exec, stream);
    cudaEventRecord(stop, stream);
    CheckCuda(cudaEventSynchronize(stop), "replay");
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(ms / calls);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace nibble::bench
