// W4A16 matmul against cuBLAS fp16 on Llama-2-7B's Linear shapes (q/k/v fused, o, gate/up fused, down and
// the unfused MLP width), M = 1..32 tokens. Prints, per shape and M: microseconds per call; GB/s of the
// compulsory bytes (4-bit weights, scales, zeros, x, y, each once); that as a percent of the copy bandwidth
// measured in the same run; cuBLAS fp16's microseconds; and the speedup over it.
// Weight copies are rotated so that every call reads from HBM, not from the 50 MB L2.
//
//   build/bench/w4a16_bench [--groups 128] [--reps 200] [--only SHAPE-NAME-PREFIX] [--ms 1,2,4,8,16,32]
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/copy_bandwidth.h"
#include "bench/gpu_timing.h"
#include "engine/cuda/w4a16_kernels.h"
#include "engine/cuda/w4a16_layout.h"

namespace nibble::bench {
namespace {

// Fast deterministic fill: splitmix64 words.
void FillRandom(std::vector<uint32_t>& words, uint64_t seed) {
  for (auto& word : words) {
    seed += 0x9E3779B97F4A7C15ull;
    uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    word = static_cast<uint32_t>(z ^ (z >> 31));
  }
}

template <typename T>
T* DeviceCopyOf(const std::vector<T>& host) {
  T* device = nullptr;
  CheckCuda(cudaMalloc(&device, host.size() * sizeof(T)), "cudaMalloc");
  CheckCuda(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  return device;
}

struct Shape {
  const char* name;
  int64_t k;  // in
  int64_t n;  // out
};

int Main(int argc, char** argv) {
  int group = 128;
  int reps = 200;
  std::string only;
  std::vector<int64_t> ms = {1, 2, 4, 8, 16, 32};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--groups") == 0) group = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
    if (std::strcmp(argv[i], "--ms") == 0) {
      ms.clear();
      for (const char* p = argv[i + 1]; *p != '\0';) {
        ms.push_back(std::strtol(p, const_cast<char**>(&p), 10));
        if (*p == ',') ++p;
      }
    }
  }
  cudaDeviceProp properties{};
  CheckCuda(cudaGetDeviceProperties(&properties, 0), "device");
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  cublasHandle_t cublas;
  cublasCreate(&cublas);
  cublasSetStream(cublas, stream);
  void* cublas_workspace = nullptr;
  CheckCuda(cudaMalloc(&cublas_workspace, 32 << 20), "cuBLAS workspace");
  cublasSetWorkspace(cublas, cublas_workspace, 32 << 20);

  const CopyBandwidth copy = MeasureCopyBandwidth(stream);
  const double copy_gbs = copy.best_gbs;
  std::printf(
      "device: %s, %d SMs, L2 %d MB; copy bandwidth (read + write) %.0f GB/s (cudaMemcpy %.0f, copy kernel "
      "%.0f); group size %d\n\n",
      properties.name, properties.multiProcessorCount, properties.l2CacheSize >> 20, copy_gbs, copy.memcpy_gbs,
      copy.kernel_gbs, group);
  std::printf("| shape (K -> N) | M | W4A16 us | GB/s | %% of copy BW | cuBLAS fp16 us | speedup |\n");
  std::printf("|---|---|---|---|---|---|---|\n");

  const Shape shapes[] = {{"qkv 4096->12288", 4096, 12288},
                          {"o 4096->4096", 4096, 4096},
                          {"up 4096->11008", 4096, 11008},
                          {"gate_up 4096->22016", 4096, 22016},
                          {"down 11008->4096", 11008, 4096}};
  for (const Shape& shape : shapes) {
    if (!only.empty() && std::string(shape.name).rfind(only, 0) != 0) continue;
    // Enough weight copies to spread the timed calls over > 256 MB (5x the L2).
    const int64_t groups = shape.k / group;
    const size_t w4_bytes = shape.n * shape.k / 2 + groups * shape.n * 2 + groups * shape.n / 2;
    const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / w4_bytes + 1));
    std::vector<cuda::W4DeviceWeights> weights(copies);
    std::vector<void*> allocations;
    for (int c = 0; c < copies; ++c) {
      std::vector<uint32_t> codes(shape.n * shape.k / 8), zeros(groups * shape.n / 8);
      FillRandom(codes, 1 + c);
      FillRandom(zeros, 100 + c);
      std::vector<uint16_t> scales(groups * shape.n);
      for (size_t i = 0; i < scales.size(); ++i)
        scales[i] = static_cast<uint16_t>(0x1C00 + (i * 2654435761u >> 22) % 0x400);
      weights[c] = {DeviceCopyOf(codes),
                    reinterpret_cast<const half*>(DeviceCopyOf(scales)),
                    DeviceCopyOf(zeros),
                    shape.n,
                    shape.k,
                    group,
                    true};
      allocations.insert(allocations.end(),
                         {const_cast<uint32_t*>(weights[c].codes), const_cast<half*>(weights[c].scales),
                          const_cast<uint32_t*>(weights[c].zeros)});
    }
    const int dense_copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / (shape.n * shape.k * 2) + 1));
    std::vector<half*> dense(dense_copies);
    for (int c = 0; c < dense_copies; ++c) {
      std::vector<uint16_t> values(shape.n * shape.k);
      for (size_t i = 0; i < values.size(); ++i)
        values[i] = static_cast<uint16_t>(0x2000 + (i * 2654435761u >> 20) % 0x800);
      dense[c] = reinterpret_cast<half*>(DeviceCopyOf(values));
    }
    std::vector<uint16_t> x_host(32 * shape.k);
    for (size_t i = 0; i < x_host.size(); ++i) x_host[i] = static_cast<uint16_t>(0x3000 + i % 0x400);
    half* x = reinterpret_cast<half*>(DeviceCopyOf(x_host));
    half* y = nullptr;
    float* workspace = nullptr;
    int* counters = nullptr;
    CheckCuda(cudaMalloc(&y, 32 * shape.n * sizeof(half)), "y");
    CheckCuda(cudaMalloc(&workspace, 32 * shape.n * sizeof(float)), "workspace");
    CheckCuda(cudaMalloc(&counters, shape.n * sizeof(int)), "counters");
    cudaMemset(workspace, 0, 32 * shape.n * sizeof(float));
    cudaMemset(counters, 0, shape.n * sizeof(int));

    for (int64_t m : ms) {
      const cuda::W4MmaPlan plan = cuda::PlanW4Mma(m, shape.n, shape.k, properties.multiProcessorCount);
      const double ours = MedianMillisPerCall(stream, reps, 15, [&](int i) {
        const auto status = cuda::LaunchW4Mma(weights[i % copies], x, m, nullptr, y, plan, workspace, counters, stream);
        if (!status.ok()) {
          std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
          std::exit(1);
        }
      });
      const float alpha = 1.0f, beta = 0.0f;
      const double theirs = MedianMillisPerCall(stream, reps, 15, [&](int i) {
        cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, shape.n, m, shape.k, &alpha, dense[i % dense_copies], CUDA_R_16F,
                     shape.k, x, CUDA_R_16F, shape.k, &beta, y, CUDA_R_16F, shape.n, CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT);
      });
      const double bytes = static_cast<double>(w4_bytes) + 2.0 * m * (shape.k + shape.n);
      const double gbs = bytes / (ours * 1e6);
      std::printf("| %s | %ld | %.2f | %.0f | %.0f%% | %.2f | %.2fx |\n", shape.name, static_cast<long>(m), ours * 1e3,
                  gbs, 100.0 * gbs / copy_gbs, theirs * 1e3, theirs / ours);
    }
    for (void* p : allocations) cudaFree(p);
    for (half* p : dense) cudaFree(p);
    cudaFree(x);
    cudaFree(y);
    cudaFree(workspace);
    cudaFree(counters);
  }
  cublasDestroy(cublas);
  cudaFree(cublas_workspace);
  return 0;
}

}  // namespace
}  // namespace nibble::bench

int main(int argc, char** argv) { return nibble::bench::Main(argc, argv); }
