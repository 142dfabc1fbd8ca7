// Parity of every CUDA op with the CPU backend's fp32 reference (or, for the W4A16 matmul, with a
// dequantize-to-fp32 reference multiplied by cuBLAS in fp32), through the Backend interface, on fresh random
// inputs, Llama-2-7B shapes and the tiny models' odd shapes. Outputs are poisoned with NaN first so an
// unwritten element fails. Skips without a GPU.
#include "engine/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "engine/cpu/cpu_backend.h"
#include "tests/support/random_weights.h"

namespace nibble {
namespace {

using testing::RandomAwqLinear;
using testing::RandomFloats;

// ||got - want|| / ||want||; infinity when anything is not finite (NaN poison left in place).
double RelativeError(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0.0;
  double norm = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

class CudaParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA GPU visible: skipping GPU parity tests";
    auto cuda = MakeCudaBackend(0);
    ASSERT_TRUE(cuda.ok()) << cuda.status();
    cuda_ = std::move(*cuda);
  }

  // A tensor in `backend`'s memory holding `values` in its activation dtype (or `dtype`).
  DeviceTensor Upload(Backend& backend, const std::vector<float>& values, Shape shape,
                      std::optional<DType> dtype = std::nullopt) {
    auto tensor =
        backend.UploadTensor(HostTensor::FromFloats(values, shape), dtype.value_or(backend.activation_dtype()));
    EXPECT_TRUE(tensor.ok()) << tensor.status();
    return std::move(*tensor);
  }
  DeviceTensor UploadInts(Backend& backend, const std::vector<int32_t>& values) {
    DeviceTensor result;
    result.buffer = *backend.Allocate(values.size() * sizeof(int32_t));
    result.tensor = result.buffer.View(DType::kI32, Shape{static_cast<int64_t>(values.size())});
    EXPECT_TRUE(backend.CopyToDevice(values.data(), result.tensor).ok());
    return result;
  }
  // An output tensor filled with NaN.
  DeviceTensor Poisoned(Backend& backend, Shape shape, std::optional<DType> dtype = std::nullopt) {
    return Upload(backend, std::vector<float>(static_cast<size_t>(shape.numel()), NAN), shape, dtype);
  }
  std::vector<float> Download(Backend& backend, const Tensor& tensor) {
    std::vector<std::byte> raw(tensor.bytes());
    EXPECT_TRUE(backend.CopyToHost(tensor, raw.data()).ok());
    std::vector<float> values(static_cast<size_t>(tensor.numel()));
    ConvertToFloat(tensor.dtype, raw.data(), values);
    return values;
  }

  std::unique_ptr<Backend> cpu_ = MakeCpuBackend();
  std::unique_ptr<Backend> cuda_;
};

TEST_F(CudaParityTest, EmbeddingGatherAndSiluMul) {
  for (const auto& [vocab, dim, tokens] :
       std::vector<std::tuple<int64_t, int64_t, int64_t>>{{32000, 4096, 7}, {512, 64, 33}}) {
    const std::vector<float> table = RandomFloats(vocab * dim, 1);
    std::vector<int32_t> ids(tokens);
    for (int64_t t = 0; t < tokens; ++t) ids[t] = static_cast<int32_t>((t * 7919 + 13) % vocab);
    std::vector<float> want(tokens * dim);
    for (int64_t t = 0; t < tokens; ++t) std::copy_n(table.begin() + ids[t] * dim, dim, want.begin() + t * dim);
    DeviceTensor d_table = Upload(*cuda_, table, {vocab, dim});
    DeviceTensor d_ids = UploadInts(*cuda_, ids);
    DeviceTensor out = Poisoned(*cuda_, {tokens, dim});
    ASSERT_TRUE(cuda_->Embedding(d_table.tensor, d_ids.tensor, out.tensor).ok());
    EXPECT_EQ(Download(*cuda_, out.tensor), want);

    DeviceTensor rows = UploadInts(*cuda_, {static_cast<int32_t>(tokens - 1), 0});
    DeviceTensor gathered = Poisoned(*cuda_, {2, dim});
    ASSERT_TRUE(cuda_->GatherRows(out.tensor, rows.tensor, gathered.tensor).ok());
    const std::vector<float> got = Download(*cuda_, gathered.tensor);
    EXPECT_TRUE(std::equal(got.begin(), got.begin() + dim, want.begin() + (tokens - 1) * dim));
    EXPECT_TRUE(std::equal(got.begin() + dim, got.end(), want.begin()));
  }
  for (const auto& [tokens, f] : std::vector<std::pair<int64_t, int64_t>>{{5, 11008}, {9, 172}}) {
    const std::vector<float> gate_up = RandomFloats(tokens * 2 * f, 2, 2.0f);
    DeviceTensor c_in = Upload(*cpu_, gate_up, {tokens, 2 * f}), c_out = Poisoned(*cpu_, {tokens, f});
    DeviceTensor g_in = Upload(*cuda_, gate_up, {tokens, 2 * f}), g_out = Poisoned(*cuda_, {tokens, f});
    ASSERT_TRUE(cpu_->SiluMul(c_in.tensor, c_out.tensor).ok());
    ASSERT_TRUE(cuda_->SiluMul(g_in.tensor, g_out.tensor).ok());
    EXPECT_LT(RelativeError(Download(*cuda_, g_out.tensor), Download(*cpu_, c_out.tensor)), 1e-3);
  }
}

TEST_F(CudaParityTest, NormsMatchCpu) {
  for (const auto& [tokens, dim] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 4096}, {512, 4096}, {3, 64}, {5, 172}}) {
    const std::vector<float> x = RandomFloats(tokens * dim, 3), delta = RandomFloats(tokens * dim, 4, 0.5f);
    const std::vector<float> weight = RandomFloats(dim, 5);
    for (bool add : {false, true}) {
      DeviceTensor c_x = Upload(*cpu_, x, {tokens, dim}), g_x = Upload(*cuda_, x, {tokens, dim});
      DeviceTensor c_d = Upload(*cpu_, delta, {tokens, dim}), g_d = Upload(*cuda_, delta, {tokens, dim});
      DeviceTensor c_w = Upload(*cpu_, weight, {dim}), g_w = Upload(*cuda_, weight, {dim});
      DeviceTensor c_out = Poisoned(*cpu_, {tokens, dim}), g_out = Poisoned(*cuda_, {tokens, dim});
      if (add) {
        ASSERT_TRUE(cpu_->AddRmsNorm(c_x.tensor, c_d.tensor, c_w.tensor, 1e-5f, c_out.tensor).ok());
        ASSERT_TRUE(cuda_->AddRmsNorm(g_x.tensor, g_d.tensor, g_w.tensor, 1e-5f, g_out.tensor).ok());
        EXPECT_LT(RelativeError(Download(*cuda_, g_x.tensor), Download(*cpu_, c_x.tensor)), 1e-3);
      } else {
        ASSERT_TRUE(cpu_->RmsNorm(c_x.tensor, c_w.tensor, 1e-5f, c_out.tensor).ok());
        ASSERT_TRUE(cuda_->RmsNorm(g_x.tensor, g_w.tensor, 1e-5f, g_out.tensor).ok());
      }
      EXPECT_LT(RelativeError(Download(*cuda_, g_out.tensor), Download(*cpu_, c_out.tensor)), 1e-2)
          << tokens << "x" << dim << (add ? " add" : "");
    }
  }
}

TEST_F(CudaParityTest, DenseLinearMatchesCpu) {
  for (const auto& [m, in, out] :
       std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 4096, 4096}, {64, 4096, 512}, {7, 64, 512}}) {
    HostLinear linear;
    linear.in_features = in;
    linear.out_features = out;
    linear.weight = HostTensor::FromFloats(RandomFloats(in * out, 6, 0.02f), Shape{out, in});
    linear.bias = HostTensor::FromFloats(RandomFloats(out, 7, 0.1f), Shape{out});
    const std::vector<float> x = RandomFloats(m * in, 8);
    auto c_w = cpu_->UploadLinear(linear);
    auto g_w = cuda_->UploadLinear(linear);
    ASSERT_TRUE(c_w.ok() && g_w.ok());
    DeviceTensor c_x = Upload(*cpu_, x, {m, in}), g_x = Upload(*cuda_, x, {m, in});
    DeviceTensor c_y = Poisoned(*cpu_, {m, out});
    ASSERT_TRUE(cpu_->Linear(**c_w, c_x.tensor, c_y.tensor).ok());
    const std::vector<float> want = Download(*cpu_, c_y.tensor);
    for (DType dtype : {DType::kF16, DType::kF32}) {
      DeviceTensor g_y = Poisoned(*cuda_, {m, out}, dtype);
      ASSERT_TRUE(cuda_->Linear(**g_w, g_x.tensor, g_y.tensor).ok());
      EXPECT_LT(RelativeError(Download(*cuda_, g_y.tensor), want), 1e-2) << m << "x" << in << "->" << out;
    }
  }
}

// The W4A16 Linear against x · dequantize(W)^T computed in fp32 by cuBLAS (the dequantization done on the
// host by DequantizeAwq from AutoAWQ's packing, independent of the kernels' repacking).
class W4LinearParityTest : public CudaParityTest {
 protected:
  std::vector<float> Reference(const std::vector<float>& w_fp32, int64_t in, int64_t out, const std::vector<float>& x,
                               int64_t m, const std::vector<float>& bias) {
    float *d_w = nullptr, *d_x = nullptr, *d_y = nullptr;
    EXPECT_EQ(cudaMalloc(&d_w, w_fp32.size() * 4), cudaSuccess);
    EXPECT_EQ(cudaMalloc(&d_x, x.size() * 4), cudaSuccess);
    EXPECT_EQ(cudaMalloc(&d_y, m * out * 4), cudaSuccess);
    cudaMemcpy(d_w, w_fp32.data(), w_fp32.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(d_x, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
    cublasHandle_t handle;
    cublasCreate(&handle);
    cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH);  // true fp32, no TF32
    const float alpha = 1.0f, beta = 0.0f;
    EXPECT_EQ(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, m, in, &alpha, d_w, in, d_x, in, &beta, d_y, out),
              CUBLAS_STATUS_SUCCESS);
    std::vector<float> y(m * out);
    cudaMemcpy(y.data(), d_y, y.size() * 4, cudaMemcpyDeviceToHost);
    cublasDestroy(handle);
    cudaFree(d_w);
    cudaFree(d_x);
    cudaFree(d_y);
    for (int64_t t = 0; t < m; ++t) {
      for (int64_t n = 0; n < out && !bias.empty(); ++n) y[t * out + n] += bias[n];
    }
    return y;
  }

  void CheckShape(int64_t in, int64_t out, int group, const std::vector<int64_t>& token_counts, bool with_bias) {
    const HostLinear linear = RandomAwqLinear(in, out, group, static_cast<uint32_t>(in + out + group), with_bias);
    const std::vector<float> w = LinearWeightToFloats(linear);
    const std::vector<float> bias = with_bias ? linear.bias->ToFloats() : std::vector<float>{};
    auto weights = cuda_->UploadLinear(linear);
    ASSERT_TRUE(weights.ok()) << weights.status();
    for (int64_t m : token_counts) {
      const std::vector<float> x = RandomFloats(m * in, static_cast<uint32_t>(m * 977 + in));
      DeviceTensor g_x = Upload(*cuda_, x, {m, in});
      DeviceTensor g_y = Poisoned(*cuda_, {m, out});
      ASSERT_TRUE(cuda_->Linear(**weights, g_x.tensor, g_y.tensor).ok());
      const std::vector<float> got = Download(*cuda_, g_y.tensor);
      const auto bad = std::find_if(got.begin(), got.end(), [](float v) { return !std::isfinite(v); });
      EXPECT_EQ(bad, got.end()) << in << "->" << out << " g" << group << " M=" << m << ": "
                                << std::count_if(got.begin(), got.end(), [](float v) { return !std::isfinite(v); })
                                << " outputs not finite, the first at token " << (bad - got.begin()) / out
                                << ", output " << (bad - got.begin()) % out;
      EXPECT_LT(RelativeError(got, Reference(w, in, out, x, m, bias)), 1e-2)
          << in << "->" << out << " g" << group << " M=" << m;
    }
  }
};

std::vector<int64_t> DecodeAndPrefillSizes() {
  std::vector<int64_t> sizes(32);
  std::iota(sizes.begin(), sizes.end(), 1);             // every M in 1..32 (the MMA kernel)
  for (int64_t m : {33, 128, 512}) sizes.push_back(m);  // prefill (dequantize + cuBLAS)
  return sizes;
}

TEST_F(W4LinearParityTest, Llama7bShapesGroup128) {
  for (const auto& [in, out] : std::vector<std::pair<int64_t, int64_t>>{
           {4096, 4096}, {4096, 12288}, {4096, 11008}, {4096, 22016}, {11008, 4096}}) {
    CheckShape(in, out, 128, DecodeAndPrefillSizes(), /*with_bias=*/false);
  }
}

TEST_F(W4LinearParityTest, Groups32And64WithBias) {
  CheckShape(4096, 4096, 32, DecodeAndPrefillSizes(), /*with_bias=*/true);
  CheckShape(4096, 1024, 64, DecodeAndPrefillSizes(), /*with_bias=*/true);
}

TEST_F(W4LinearParityTest, TinyOddShapes) {
  const std::vector<int64_t> sizes = {1, 2, 5, 8, 17, 32, 40, 512};
  CheckShape(64, 344, 32, sizes, false);   // stories260K gate/up fused: 344 outputs (generic layout)
  CheckShape(172, 64, 32, sizes, false);   // down: in 172, a shorter last group of 12
  CheckShape(172, 64, 128, sizes, false);  // down with g128: groups of 128 and 44
  CheckShape(64, 128, 64, sizes, true);    // q/k/v fused (tiled layout), with a bias
}

// Attention: the same random q/k/v on both backends over three steps (a prefill chunk, a second chunk that
// attends to the first, a decode step), sequences of different lengths in scattered KV blocks; with a sliding
// window, the CPU's (checked against a masked softmax in cpu_backend_test) is the reference.
struct AttentionCase {
  int heads, kv_heads, head_dim;
  std::vector<std::vector<int32_t>> chunk_lengths;  // per step, tokens each sequence brings
  int32_t sliding_window = 0;                       // 0: none
};

// Names the case in test lists (ctest's names): heads, KV heads, head size, the steps' chunks, the window.
void PrintTo(const AttentionCase& c, std::ostream* os) {
  *os << "h" << c.heads << "_kv" << c.kv_heads << "_d" << c.head_dim << "_steps";
  for (size_t step = 0; step < c.chunk_lengths.size(); ++step) {
    for (size_t s = 0; s < c.chunk_lengths[step].size(); ++s)
      *os << (s == 0 ? (step == 0 ? "" : "-") : ".") << c.chunk_lengths[step][s];
  }
  *os << "_window" << c.sliding_window;
}

class AttentionParityTest : public CudaParityTest, public ::testing::WithParamInterface<AttentionCase> {};

TEST_P(AttentionParityTest, MatchesCpu) {
  const AttentionCase& c = GetParam();
  const AttentionShape shape{c.heads, c.kv_heads, c.head_dim, c.sliding_window};
  ModelConfig config;
  config.num_kv_heads = c.kv_heads;
  config.head_dim = c.head_dim;
  config.num_heads = c.heads;
  config.rope_theta = 10000.0;
  const int32_t block_size = 16;
  const int32_t blocks = 512;
  auto c_cache = KvCache::Create(*cpu_, cpu_->activation_dtype(), config, 1, blocks, block_size);
  auto g_cache = KvCache::Create(*cuda_, cuda_->activation_dtype(), config, 1, blocks, block_size);
  ASSERT_TRUE(c_cache.ok() && g_cache.ok());
  const size_t seqs = c.chunk_lengths.front().size();
  // Scattered block tables: sequence s takes blocks s, s + seqs, s + 2 seqs, ... in reverse order.
  std::vector<std::vector<int32_t>> tables(seqs);
  for (size_t s = 0; s < seqs; ++s) {
    for (int32_t b = blocks / static_cast<int32_t>(seqs) - 1; b >= 0; --b)
      tables[s].push_back(b * static_cast<int32_t>(seqs) + static_cast<int32_t>(s));
  }
  std::vector<float> inv_freq(c.head_dim / 2);
  for (int i = 0; i < c.head_dim / 2; ++i) inv_freq[i] = 1.0f / std::pow(10000.0f, 2.0f * i / c.head_dim);
  DeviceTensor c_freq = Upload(*cpu_, inv_freq, {c.head_dim / 2}, DType::kF32);
  DeviceTensor g_freq = Upload(*cuda_, inv_freq, {c.head_dim / 2}, DType::kF32);
  auto c_uploader = BatchUploader::Create(*cpu_, BatchLimits{4096, 8, blocks, block_size});
  auto g_uploader = BatchUploader::Create(*cuda_, BatchLimits{4096, 8, blocks, block_size});
  ASSERT_TRUE(c_uploader.ok() && g_uploader.ok());
  std::vector<int32_t> lengths(seqs, 0);
  const int64_t width = int64_t{c.heads + 2 * c.kv_heads} * c.head_dim;
  uint32_t seed = 100;
  for (const auto& chunk : c.chunk_lengths) {
    StepBatch step;
    std::vector<std::vector<int32_t>> tokens(seqs);
    for (size_t s = 0; s < seqs; ++s) {
      tokens[s].assign(chunk[s], 0);
      step.AddSequence(tokens[s], lengths[s], tables[s], StepBatch::Logits::kNone);
      lengths[s] += chunk[s];
    }
    auto c_batch = c_uploader->Upload(step);
    auto g_batch = g_uploader->Upload(step);
    ASSERT_TRUE(c_batch.ok() && g_batch.ok());
    const int64_t t = step.num_tokens();
    const std::vector<float> qkv = RandomFloats(t * width, seed++);
    DeviceTensor c_qkv = Upload(*cpu_, qkv, {t, width}), g_qkv = Upload(*cuda_, qkv, {t, width});
    DeviceTensor c_out = Poisoned(*cpu_, {t, int64_t{c.heads} * c.head_dim});
    DeviceTensor g_out = Poisoned(*cuda_, {t, int64_t{c.heads} * c.head_dim});
    ASSERT_TRUE(cpu_->Attention(c_qkv.tensor, c_freq.tensor, c_cache->layer(0), *c_batch, shape, c_out.tensor).ok());
    ASSERT_TRUE(cuda_->Attention(g_qkv.tensor, g_freq.tensor, g_cache->layer(0), *g_batch, shape, g_out.tensor).ok());
    EXPECT_LT(RelativeError(Download(*cuda_, g_qkv.tensor), Download(*cpu_, c_qkv.tensor)), 2e-3) << "rotated qkv";
    EXPECT_LT(RelativeError(Download(*cuda_, g_out.tensor), Download(*cpu_, c_out.tensor)), 1e-2)
        << "step with max context " << *std::max_element(lengths.begin(), lengths.end()) << ", sliding window "
        << c.sliding_window;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionParityTest,
    ::testing::Values(
        // Llama-2-7B heads (head_dim 128, no GQA): prefill 300 / 37 / 1, second chunk, decode, long decode.
        AttentionCase{4, 4, 128, {{300, 37, 1}, {200, 1, 5}, {1, 1, 1}}}, AttentionCase{4, 4, 128, {{1000, 3}, {1, 1}}},
        // GQA (4 query heads per KV head), head_dim 64.
        AttentionCase{8, 2, 64, {{130, 64}, {1, 70}, {1, 1}}},
        // stories260K: 8 heads, 4 KV heads, head_dim 8 (decode kernel for everything).
        AttentionCase{8, 4, 8, {{40, 512}, {1, 1}}},
        // A head size without a prefill kernel and past a power of two (96: lanes idle).
        AttentionCase{4, 2, 96, {{77}, {1}}},
        // Sliding windows: inside one prefill key tile and decode partition (8), across tiles and partitions
        // without lining up with them (100, 70), exactly one partition (64) and one key more (65), a single
        // key (1), and longer than every context (2000: as without one).
        AttentionCase{8, 2, 64, {{130, 64}, {1, 70}, {1, 1}}, 8},
        AttentionCase{4, 4, 128, {{300, 37, 1}, {200, 1, 5}, {1, 1, 1}}, 100},
        AttentionCase{4, 4, 128, {{1000, 3}, {1, 1}}, 64}, AttentionCase{4, 4, 128, {{1000, 3}, {1, 1}}, 65},
        AttentionCase{8, 4, 8, {{40, 512}, {1, 1}}, 70}, AttentionCase{4, 2, 96, {{77}, {1}}, 5},
        AttentionCase{8, 2, 64, {{130, 64}, {1, 70}, {1, 1}}, 1},
        AttentionCase{4, 4, 128, {{300, 37, 1}, {1, 1, 1}}, 2000}));

TEST_F(CudaParityTest, SamplingMatchesCpuAndRepeats) {
  const int64_t vocab = 32000;
  const int rows = 24;
  std::vector<SamplingParams> params(rows);
  for (int r = 0; r < rows; ++r) {
    params[r].temperature = r % 6 == 0 ? 0.0f : 0.5f + 0.1f * (r % 5);
    params[r].top_k = r % 3 == 0 ? 40 : 0;
    params[r].top_p = r % 4 == 1 ? 0.9f : 1.0f;
    params[r].min_p = r % 5 == 2 ? 0.05f : 0.0f;
    params[r].repetition_penalty = r % 7 == 3 ? 1.3f : 1.0f;
    params[r].frequency_penalty = r % 8 == 5 ? 0.5f : 0.0f;
    params[r].seed = 1000 + r;
    params[r].num_logprobs = r % 2 == 0 ? 5 : 0;
  }
  const std::vector<int32_t> prompt = {1, 17, 256, 31999};
  const std::vector<int32_t> output = {17, 17, 42};
  int agree = 0;
  int total = 0;
  for (uint64_t step = 0; step < 8; ++step) {
    const std::vector<float> logits = RandomFloats(rows * vocab, static_cast<uint32_t>(step + 11), 3.0f, false);
    std::vector<SamplingRequest> requests(rows);
    for (int r = 0; r < rows; ++r) requests[r] = SamplingRequest{&params[r], step, prompt, output};
    std::vector<SampledToken> c_tokens(rows), g_tokens(rows), g_again(rows);
    DeviceTensor c_logits = Upload(*cpu_, logits, {rows, vocab}, DType::kF32);
    ASSERT_TRUE(cpu_->Sample(c_logits.tensor, requests, c_tokens).ok());
    for (auto* out : {&g_tokens, &g_again}) {
      DeviceTensor g_logits = Upload(*cuda_, logits, {rows, vocab}, DType::kF32);
      ASSERT_TRUE(cuda_->Sample(g_logits.tensor, requests, *out).ok());
    }
    for (int r = 0; r < rows; ++r) {
      EXPECT_EQ(g_tokens[r].token, g_again[r].token) << "GPU sampling must repeat (row " << r << ")";
      if (params[r].temperature == 0.0f) {
        EXPECT_EQ(g_tokens[r].token, c_tokens[r].token) << "greedy row " << r;
      }
      ++total;
      if (g_tokens[r].token == c_tokens[r].token) {
        ++agree;
        EXPECT_NEAR(g_tokens[r].logprob, c_tokens[r].logprob, 1e-3) << "row " << r;
      }
      ASSERT_EQ(g_tokens[r].top_logprobs.size(), c_tokens[r].top_logprobs.size());
      for (size_t i = 0; i < c_tokens[r].top_logprobs.size(); ++i) {
        EXPECT_EQ(g_tokens[r].top_logprobs[i].first, c_tokens[r].top_logprobs[i].first);
        EXPECT_NEAR(g_tokens[r].top_logprobs[i].second, c_tokens[r].top_logprobs[i].second, 1e-3);
      }
    }
  }
  // Same algorithm, same random numbers: only float rounding at a cutoff or a CDF step may differ.
  EXPECT_GE(agree, total * 97 / 100) << agree << " of " << total << " tokens agree";
}

}  // namespace
}  // namespace nibble
