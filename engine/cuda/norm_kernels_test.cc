// Parity of the CUDA RMSNorm kernels with the CPU backend's fp32 reference. Skips without a GPU.
#include "engine/cuda/norm_kernels.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"

namespace nibble::cuda {
namespace {

class NormKernelsTest : public ::testing::TestWithParam<std::pair<int64_t, int64_t>> {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA GPU visible: skipping GPU parity test";
  }
};

// Random fp16 values (as floats already rounded to fp16, so the CPU sees exactly what the GPU sees).
std::vector<float> RandomHalves(size_t count, float scale, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(count);
  for (float& value : values) value = __half2float(__float2half(normal(rng)));
  return values;
}

template <typename T>
T* DeviceCopy(const std::vector<float>& values) {
  std::vector<half> halves(values.size());
  for (size_t i = 0; i < values.size(); ++i) halves[i] = __float2half(values[i]);
  T* device = nullptr;
  EXPECT_EQ(cudaMalloc(&device, halves.size() * sizeof(half)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(device, halves.data(), halves.size() * sizeof(half), cudaMemcpyHostToDevice), cudaSuccess);
  return device;
}

std::vector<float> HostCopy(const half* device, size_t count) {
  std::vector<half> halves(count);
  EXPECT_EQ(cudaMemcpy(halves.data(), device, count * sizeof(half), cudaMemcpyDeviceToHost), cudaSuccess);
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i) values[i] = __half2float(halves[i]);
  return values;
}

double RelativeError(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;  // also catches the NaN poison of unwritten outputs
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return std::sqrt(diff / norm);
}

TEST_P(NormKernelsTest, AddRmsNormMatchesCpu) {
  const auto [rows, dim] = GetParam();
  std::mt19937 rng(static_cast<unsigned>(rows * 7919 + dim));
  const std::vector<float> x = RandomHalves(rows * dim, 1.0f, rng);
  const std::vector<float> delta = RandomHalves(rows * dim, 0.5f, rng);
  const std::vector<float> weight = RandomHalves(dim, 1.0f, rng);
  const float eps = 1e-5f;

  // CPU reference: residual += delta (rounded to fp16 as the GPU stores it), then the fp32 norm.
  std::vector<float> residual(x.size());
  for (size_t i = 0; i < x.size(); ++i) residual[i] = __half2float(__float2half(x[i] + delta[i]));
  auto cpu = MakeCpuBackend();
  std::vector<float> want(x.size());
  std::vector<float> weight_copy = weight;
  ASSERT_TRUE(cpu->RmsNorm(Tensor{residual.data(), DType::kF32, Shape{rows, dim}},
                           Tensor{weight_copy.data(), DType::kF32, Shape{dim}}, eps,
                           Tensor{want.data(), DType::kF32, Shape{rows, dim}})
                  .ok());

  half* d_residual = DeviceCopy<half>(x);
  const half* d_delta = DeviceCopy<half>(delta);
  const half* d_weight = DeviceCopy<half>(weight);
  half* d_out = DeviceCopy<half>(std::vector<float>(x.size(), NAN));  // poison: every element must be written
  ASSERT_TRUE(LaunchAddRmsNorm(d_residual, d_delta, d_weight, eps, rows, dim, d_out, nullptr).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  EXPECT_LT(RelativeError(HostCopy(d_residual, x.size()), residual), 1e-3);
  EXPECT_LT(RelativeError(HostCopy(d_out, x.size()), want), 1e-2);
  for (const void* p : {static_cast<const void*>(d_residual), static_cast<const void*>(d_delta),
                        static_cast<const void*>(d_weight), static_cast<const void*>(d_out)}) {
    cudaFree(const_cast<void*>(p));
  }
}

// Llama-2-7B's hidden size, the tiny models' 64 and an odd 172, a single row and a prefill-sized batch.
INSTANTIATE_TEST_SUITE_P(Shapes, NormKernelsTest,
                         ::testing::Values(std::pair<int64_t, int64_t>{1, 4096}, std::pair<int64_t, int64_t>{7, 64},
                                           std::pair<int64_t, int64_t>{3, 172},
                                           std::pair<int64_t, int64_t>{512, 4096}));

}  // namespace
}  // namespace nibble::cuda
