#include "engine/io/host_model.h"

#include <gtest/gtest.h>

#include <random>

namespace nibble {
namespace {

// An AWQ weight built from explicit codes, zeros and scales with a packer written here from the documented
// nibble order (awq.md §7), independent of the engine's packing code.
struct AwqFixture {
  int64_t in, out;
  int group_size;
  std::vector<uint8_t> codes;  // [in, out]
  std::vector<uint8_t> zeros;  // [groups, out]
  std::vector<float> scales;   // [groups, out], fp16-representable
  AwqWeight weight;
};

HostTensor PackIndependently(const std::vector<uint8_t>& codes, int64_t rows, int64_t cols) {
  const int64_t words = (cols + 7) / 8;
  std::vector<std::byte> bytes(static_cast<size_t>(rows * words) * 4);
  auto* out = reinterpret_cast<uint32_t*>(bytes.data());
  // Word (r, j), nibble i holds column 8j + order[i] with order = 0, 2, 4, 6, 1, 3, 5, 7.
  const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < words; ++j) {
      uint32_t word = 0;
      for (int i = 0; i < 8; ++i) {
        const int64_t c = 8 * j + order[i];
        if (c < cols) word |= uint32_t{codes[r * cols + c]} << (4 * i);
      }
      out[r * words + j] = word;
    }
  }
  return HostTensor::FromBytes(std::move(bytes), DType::kI32, Shape{rows, words});
}

AwqFixture MakeAwq(int64_t in, int64_t out, int group_size, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(0, 15);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  AwqFixture f{in, out, group_size, {}, {}, {}, {}};
  const int64_t groups = (in + group_size - 1) / group_size;
  f.codes.resize(in * out);
  f.zeros.resize(groups * out);
  f.scales.resize(groups * out);
  for (auto& c : f.codes) c = static_cast<uint8_t>(code(rng));
  for (auto& z : f.zeros) z = static_cast<uint8_t>(code(rng));
  for (auto& s : f.scales) s = HalfToFloat(FloatToHalf(scale(rng)));
  f.weight.group_size = group_size;
  f.weight.qweight = PackIndependently(f.codes, in, out);
  f.weight.qzeros = PackIndependently(f.zeros, groups, out);
  std::vector<std::byte> scale_bytes(f.scales.size() * 2);
  ConvertFromFloat(f.scales, DType::kF16, scale_bytes.data());
  f.weight.scales = HostTensor::FromBytes(std::move(scale_bytes), DType::kF16, Shape{groups, out});
  return f;
}

float Expected(const AwqFixture& f, int64_t n, int64_t k) {
  const int64_t g = k / f.group_size;
  return (static_cast<float>(f.codes[k * f.out + n]) - f.zeros[g * f.out + n]) * f.scales[g * f.out + n];
}

TEST(HostModelTest, DequantizeAwqFollowsTheDocumentedLayout) {
  // 172 inputs with groups of 64: a shorter last group (44); 20 outputs: a partial last word.
  const AwqFixture f = MakeAwq(172, 20, 64, 1);
  const std::vector<float> w = DequantizeAwq(f.weight, f.in, f.out);
  ASSERT_EQ(w.size(), static_cast<size_t>(f.in * f.out));
  for (int64_t n = 0; n < f.out; ++n) {
    for (int64_t k = 0; k < f.in; ++k) ASSERT_EQ(w[n * f.in + k], Expected(f, n, k)) << n << "," << k;
  }
}

TEST(HostModelTest, ConcatOutputsOfAwqKeepsEveryWeight) {
  // q/k/v-like parts whose widths are not multiples of 8, so words must be repacked across parts.
  std::vector<AwqFixture> parts = {MakeAwq(96, 12, 32, 2), MakeAwq(96, 20, 32, 3), MakeAwq(96, 4, 32, 4)};
  std::vector<HostLinear> linears;
  for (const auto& p : parts) {
    HostLinear l;
    l.in_features = p.in;
    l.out_features = p.out;
    l.weight = p.weight;
    linears.push_back(l);
  }
  linears[1].bias = HostTensor::FromFloats(std::vector<float>(20, 0.5f), Shape{20});
  const HostLinear* pointers[] = {&linears[0], &linears[1], &linears[2]};
  const auto fused = ConcatOutputs(pointers, "qkv");
  ASSERT_TRUE(fused.ok()) << fused.status();
  ASSERT_EQ(fused->out_features, 36);
  const std::vector<float> w = LinearWeightToFloats(*fused);
  int64_t row = 0;
  for (const auto& p : parts) {
    for (int64_t n = 0; n < p.out; ++n, ++row) {
      for (int64_t k = 0; k < p.in; ++k) ASSERT_EQ(w[row * 96 + k], Expected(p, n, k));
    }
  }
  ASSERT_TRUE(fused->bias.has_value());
  const std::vector<float> bias = fused->bias->ToFloats();
  EXPECT_EQ(bias[0], 0.0f);   // q had no bias: zeros
  EXPECT_EQ(bias[12], 0.5f);  // k's bias
  EXPECT_EQ(bias[35], 0.0f);  // v had none
}

TEST(HostModelTest, ConcatOutputsOfDenseStacksRows) {
  HostLinear a, b;
  a.in_features = b.in_features = 3;
  a.out_features = 2;
  b.out_features = 1;
  a.weight = HostTensor::FromFloats({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  b.weight = HostTensor::FromFloats({7, 8, 9}, Shape{1, 3});
  const HostLinear* pointers[] = {&a, &b};
  const auto fused = ConcatOutputs(pointers, "gate_up");
  ASSERT_TRUE(fused.ok());
  EXPECT_EQ(LinearWeightToFloats(*fused), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(HostModelTest, ConcatOutputsRejectsMismatchedInputs) {
  HostLinear a, b;
  a.in_features = 3;
  b.in_features = 4;
  a.out_features = b.out_features = 1;
  a.weight = HostTensor::FromFloats({1, 2, 3}, Shape{1, 3});
  b.weight = HostTensor::FromFloats({1, 2, 3, 4}, Shape{1, 4});
  const HostLinear* pointers[] = {&a, &b};
  const auto fused = ConcatOutputs(pointers, "layers.0.qkv");
  ASSERT_FALSE(fused.ok());
  EXPECT_NE(fused.status().message().find("layers.0.qkv"), absl::string_view::npos);
}

}  // namespace
}  // namespace nibble
