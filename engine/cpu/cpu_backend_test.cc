// The CPU backend's ops against naive double-precision computations written here from their definitions.
#include "engine/cpu/cpu_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace nibble {
namespace {

std::vector<float> Random(size_t count, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(count);
  for (float& v : values) v = normal(rng);
  return values;
}

Tensor View(std::vector<float>& values, Shape shape) { return Tensor{values.data(), DType::kF32, shape}; }

void ExpectNear(const std::vector<float>& got, const std::vector<double>& want, double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], tolerance * (1 + std::abs(want[i]))) << i;
}

class CpuBackendTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> backend_ = MakeCpuBackend();
  std::mt19937 rng_{42};
};

TEST_F(CpuBackendTest, LinearWithBiasMatchesDefinition) {
  const int64_t t = 3, in = 37, out = 11;
  std::vector<float> x = Random(t * in, rng_), w = Random(out * in, rng_), b = Random(out, rng_);
  HostLinear linear;
  linear.in_features = in;
  linear.out_features = out;
  linear.weight = HostTensor::FromFloats(w, Shape{out, in});
  linear.bias = HostTensor::FromFloats(b, Shape{out});
  auto weights = backend_->UploadLinear(linear);
  ASSERT_TRUE(weights.ok());
  std::vector<float> y(t * out, NAN);
  ASSERT_TRUE(backend_->Linear(**weights, View(x, {t, in}), View(y, {t, out})).ok());
  std::vector<double> want(t * out);
  for (int64_t i = 0; i < t; ++i) {
    for (int64_t n = 0; n < out; ++n) {
      double sum = b[n];
      for (int64_t k = 0; k < in; ++k) sum += double(x[i * in + k]) * w[n * in + k];
      want[i * out + n] = sum;
    }
  }
  ExpectNear(y, want, 1e-5);
}

TEST_F(CpuBackendTest, AwqLinearDequantizesOnTheFly) {
  const int64_t in = 80, out = 12, t = 2;
  const int group = 32;  // groups of 32, 32, 16
  const int64_t groups = 3;
  std::uniform_int_distribution<int> code(0, 15);
  std::vector<int> q(in * out), z(groups * out);
  for (int& v : q) v = code(rng_);
  for (int& v : z) v = code(rng_);
  std::vector<float> s(groups * out);
  for (float& v : s) v = HalfToFloat(FloatToHalf(0.01f + 0.001f * code(rng_)));
  // Pack by the documented order: nibble i of word j holds column 8j + {0,2,4,6,1,3,5,7}[i].
  auto pack = [](const std::vector<int>& codes, int64_t rows, int64_t cols) {
    const int64_t words = (cols + 7) / 8;
    std::vector<std::byte> bytes(rows * words * 4);
    auto* out = reinterpret_cast<uint32_t*>(bytes.data());
    const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < words; ++j) {
        for (int i = 0; i < 8; ++i) {
          if (8 * j + order[i] < cols) out[r * words + j] |= uint32_t(codes[r * cols + 8 * j + order[i]]) << (4 * i);
        }
      }
    }
    return HostTensor::FromBytes(std::move(bytes), DType::kI32, Shape{rows, words});
  };
  AwqWeight awq;
  awq.group_size = group;
  awq.qweight = pack(q, in, out);
  awq.qzeros = pack(z, groups, out);
  std::vector<std::byte> scale_bytes(s.size() * 2);
  ConvertFromFloat(s, DType::kF16, scale_bytes.data());
  awq.scales = HostTensor::FromBytes(std::move(scale_bytes), DType::kF16, Shape{groups, out});
  HostLinear linear;
  linear.in_features = in;
  linear.out_features = out;
  linear.weight = awq;
  auto weights = backend_->UploadLinear(linear);
  ASSERT_TRUE(weights.ok());
  std::vector<float> x = Random(t * in, rng_);
  std::vector<float> y(t * out, NAN);
  ASSERT_TRUE(backend_->Linear(**weights, View(x, {t, in}), View(y, {t, out})).ok());
  std::vector<double> want(t * out, 0.0);
  for (int64_t i = 0; i < t; ++i)
    for (int64_t n = 0; n < out; ++n)
      for (int64_t k = 0; k < in; ++k)
        want[i * out + n] +=
            double(x[i * in + k]) * (q[k * out + n] - z[(k / group) * out + n]) * s[(k / group) * out + n];
  ExpectNear(y, want, 1e-5);
}

TEST_F(CpuBackendTest, AddRmsNormAddsThenNormalises) {
  const int64_t t = 2, d = 10;
  std::vector<float> residual = Random(t * d, rng_), delta = Random(t * d, rng_), weight = Random(d, rng_);
  std::vector<float> out(t * d, NAN);
  const std::vector<float> original = residual;
  ASSERT_TRUE(
      backend_->AddRmsNorm(View(residual, {t, d}), View(delta, {t, d}), View(weight, {d}), 1e-5f, View(out, {t, d}))
          .ok());
  std::vector<double> want(t * d);
  for (int64_t i = 0; i < t; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) {
      const double v = double(original[i * d + j]) + delta[i * d + j];
      EXPECT_NEAR(residual[i * d + j], v, 1e-6);
      ss += v * v;
    }
    const double inv = 1.0 / std::sqrt(ss / d + 1e-5);
    for (int64_t j = 0; j < d; ++j)
      want[i * d + j] = (double(original[i * d + j]) + delta[i * d + j]) * inv * weight[j];
  }
  ExpectNear(out, want, 1e-5);
}

TEST_F(CpuBackendTest, AttentionRotatesQAndKPairsHalfApart) {
  // One sequence of two tokens at positions 0 and 1, 2 q heads and 1 kv head of size 8. After the op,
  // qkv holds the rotated q and k (v untouched) and the cache holds the rotated k.
  const AttentionShape shape{2, 1, 8};
  const int64_t t = 2, width = 32;
  std::vector<float> qkv = Random(t * width, rng_);
  const std::vector<float> original = qkv;
  std::vector<float> inv_freq = {1.0f, 0.1f, 0.01f, 0.001f};
  ModelConfig config;
  config.num_kv_heads = 1;
  config.head_dim = 8;
  auto cache = KvCache::Create(*backend_, backend_->activation_dtype(), config, 1, 1, 4);
  ASSERT_TRUE(cache.ok());
  StepBatch step;
  const std::vector<int32_t> tokens = {0, 0}, blocks = {0};
  step.AddSequence(tokens, 0, blocks, StepBatch::Logits::kNone);
  auto uploader = BatchUploader::Create(*backend_, BatchLimits{4, 1, 1, 4});
  ASSERT_TRUE(uploader.ok());
  auto batch = uploader->Upload(step);
  ASSERT_TRUE(batch.ok());
  std::vector<float> out(t * 16, NAN);
  ASSERT_TRUE(
      backend_
          ->Attention(View(qkv, {t, width}), View(inv_freq, {4}), cache->layer(0), *batch, shape, View(out, {t, 16}))
          .ok());
  for (int64_t i = 0; i < t; ++i) {
    for (int h = 0; h < 4; ++h) {  // 2 q heads and 1 k head are rotated; v (head 3) is untouched
      for (int j = 0; j < 4; ++j) {
        const size_t a = i * width + h * 8 + j, b = a + 4;
        if (h == 3) {
          EXPECT_EQ(qkv[a], original[a]);
          continue;
        }
        const double angle = static_cast<double>(i) * inv_freq[j];
        EXPECT_NEAR(qkv[a], original[a] * std::cos(angle) - original[b] * std::sin(angle), 1e-5);
        EXPECT_NEAR(qkv[b], original[b] * std::cos(angle) + original[a] * std::sin(angle), 1e-5);
        if (h == 2) {
          EXPECT_EQ(cache->layer(0).k.as<float>()[i * 8 + j], qkv[a]);  // the cache holds the rotated k
        }
      }
    }
  }
}

// Two sequences with grouped-query attention (4 q heads share 2 kv heads) in scattered blocks of 4 tokens, over
// two steps (prefill chunks of 11 and 3 tokens, then 1 and 5 more that attend to the cached ones), against a
// dense masked softmax written here: the query at position i sees key j when j <= i and, with a sliding window
// W > 0, i - j < W (transformers' sliding_window_overlay).
void CheckPagedAttention(Backend& backend, std::mt19937& rng, int32_t window) {
  const AttentionShape shape{4, 2, 8, window};
  const int64_t width = (4 + 2 * 2) * 8;
  ModelConfig config;
  config.num_kv_heads = 2;
  config.head_dim = 8;
  auto cache = KvCache::Create(backend, backend.activation_dtype(), config, 1, 8, 4);
  ASSERT_TRUE(cache.ok());
  const std::vector<std::vector<int32_t>> chunks = {{11, 3}, {1, 5}};
  const std::vector<std::vector<int32_t>> blocks = {{5, 1, 7}, {6, 0}};
  auto uploader = BatchUploader::Create(backend, BatchLimits{16, 4, 4, 4});
  ASSERT_TRUE(uploader.ok());
  std::vector<std::vector<std::vector<float>>> keys(2), values(2);  // per sequence, per position: the kv row
  std::vector<float> no_rotation(4, 0.0f);                          // inverse frequencies of zero: RoPE is the identity
  for (const std::vector<int32_t>& chunk : chunks) {
    StepBatch step;
    std::vector<std::vector<int32_t>> tokens(2);
    for (int b = 0; b < 2; ++b) {
      tokens[b].assign(chunk[b], 0);
      step.AddSequence(tokens[b], static_cast<int32_t>(keys[b].size()), blocks[b], StepBatch::Logits::kNone);
    }
    auto batch = uploader->Upload(step);
    ASSERT_TRUE(batch.ok()) << batch.status();
    const int64_t t = step.num_tokens();
    std::vector<float> qkv = Random(t * width, rng);
    const std::vector<float> original = qkv;
    std::vector<float> out(t * 32, NAN);
    ASSERT_TRUE(backend
                    .Attention(View(qkv, {t, width}), View(no_rotation, {4}), cache->layer(0), *batch, shape,
                               View(out, {t, 32}))
                    .ok());

    std::vector<double> want(t * 32, 0.0);
    for (int b = 0, row = 0; b < 2; ++b) {
      for (int n = 0; n < chunk[b]; ++n, ++row) {
        const float* r = original.data() + row * width;
        keys[b].emplace_back(r + 32, r + 48);
        values[b].emplace_back(r + 48, r + 64);
      }
    }
    for (int b = 0, row = 0; b < 2; ++b) {
      const int first_new = static_cast<int>(keys[b].size()) - chunk[b];
      for (int n = 0; n < chunk[b]; ++n, ++row) {
        const int i = first_new + n;
        for (int h = 0; h < 4; ++h) {
          const int kv = h / 2;
          std::vector<double> weights(i + 1, 0.0);
          double max = -INFINITY, sum = 0;
          for (int j = 0; j <= i; ++j) {
            if (window > 0 && i - j >= window) continue;
            double dot = 0;
            for (int d = 0; d < 8; ++d) dot += double(original[row * width + h * 8 + d]) * keys[b][j][kv * 8 + d];
            weights[j] = dot / std::sqrt(8.0);
            max = std::max(max, weights[j]);
          }
          for (int j = 0; j <= i; ++j) {
            const bool visible = window == 0 || i - j < window;
            sum += (weights[j] = visible ? std::exp(weights[j] - max) : 0.0);
          }
          for (int j = 0; j <= i; ++j)
            for (int d = 0; d < 8; ++d) want[row * 32 + h * 8 + d] += weights[j] / sum * values[b][j][kv * 8 + d];
        }
      }
    }
    ExpectNear(out, want, 1e-5);
  }
}

TEST_F(CpuBackendTest, PagedAttentionMatchesDenseCausalAttention) { CheckPagedAttention(*backend_, rng_, 0); }

TEST_F(CpuBackendTest, PagedAttentionWithASlidingWindowMatchesMaskedAttention) {
  // Windows of one key (itself), shorter than both sequences, between them, and longer than either (all keys).
  for (int32_t window : {1, 4, 7, 100}) {
    SCOPED_TRACE(::testing::Message() << "sliding window " << window);
    CheckPagedAttention(*backend_, rng_, window);
  }
}

TEST_F(CpuBackendTest, SiluMulAndGatherRows) {
  std::vector<float> gate_up = {1.0f, -2.0f, 3.0f, 0.5f};  // one row: gate (1, -2), up (3, 0.5)
  std::vector<float> act(2, NAN);
  ASSERT_TRUE(backend_->SiluMul(View(gate_up, {1, 4}), View(act, {1, 2})).ok());
  EXPECT_NEAR(act[0], 1.0 / (1 + std::exp(-1.0)) * 3.0, 1e-6);
  EXPECT_NEAR(act[1], -2.0 / (1 + std::exp(2.0)) * 0.5, 1e-6);
  std::vector<float> x = {1, 2, 3, 4, 5, 6};
  std::vector<int32_t> rows = {2, 0};
  std::vector<float> out(4, NAN);
  ASSERT_TRUE(
      backend_->GatherRows(View(x, {3, 2}), Tensor{rows.data(), DType::kI32, Shape{2}}, View(out, {2, 2})).ok());
  EXPECT_EQ(out, (std::vector<float>{5, 6, 1, 2}));
}

TEST_F(CpuBackendTest, BadShapesAreErrorsNotCrashes) {
  std::vector<float> x(6), y(6);
  HostLinear linear;
  linear.in_features = 4;
  linear.out_features = 2;
  linear.weight = HostTensor::FromFloats(std::vector<float>(8), Shape{2, 4});
  auto weights = backend_->UploadLinear(linear);
  ASSERT_TRUE(weights.ok());
  const auto status = backend_->Linear(**weights, View(x, {2, 3}), View(y, {2, 2}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("Linear"), absl::string_view::npos);
  std::vector<int32_t> ids = {9};
  std::vector<float> table(8), out(2);
  EXPECT_EQ(
      backend_->Embedding(View(table, {4, 2}), Tensor{ids.data(), DType::kI32, Shape{1}}, View(out, {1, 2})).code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace nibble
