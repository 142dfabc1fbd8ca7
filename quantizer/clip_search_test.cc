#include "quantizer/clip_search.h"

#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"
#include "tests/support/random_weights.h"

namespace nibble {
namespace {

// Mean over tokens and rows of the squared output error of the fake-quantized weight.
double OutputError(const FloatLinear& linear, const std::vector<float>& x, const QuantSpec& spec) {
  std::vector<float> fake = linear.weight;
  FakeQuantize(fake, linear.out_features, linear.in_features, spec);
  const int64_t in = linear.in_features;
  const int64_t tokens = static_cast<int64_t>(x.size()) / in;
  double error = 0.0;
  for (int64_t r = 0; r < linear.out_features; ++r) {
    for (int64_t t = 0; t < tokens; ++t) {
      double exact = 0.0, quantized = 0.0;
      for (int64_t c = 0; c < in; ++c) {
        exact += x[t * in + c] * linear.weight[r * in + c];
        quantized += x[t * in + c] * fake[r * in + c];
      }
      error += (exact - quantized) * (exact - quantized);
    }
  }
  return error / static_cast<double>(linear.out_features * tokens);
}

TEST(ClipSearchTest, ClippingAnOutlierReducesTheQuantizedOutputError) {
  const int64_t out = 16, in = 64, tokens = 300;
  FloatLinear linear{"l", in, out, testing::RandomFloats(out * in, /*seed=*/5, 0.1f), std::nullopt};
  for (int64_t r = 0; r < out; ++r) linear.weight[r * in + 3] = 0.9f;  // a lone outlier in every row's first group
  const std::vector<float> x = testing::RandomFloats(tokens * in, /*seed=*/6, 1.0f);
  const QuantSpec spec{3, 32};
  const FloatLinear original = linear;
  const ClipResult result = ClipWeights(linear, x, spec);
  EXPECT_GT(result.clipped_groups, 0);
  // Every weight moved only toward zero, within half the group's range.
  for (size_t i = 0; i < linear.weight.size(); ++i) {
    EXPECT_LE(std::abs(linear.weight[i]), std::abs(original.weight[i]) + 1e-7f);
  }
  // The clipped weights, once quantized, reproduce the original outputs better than quantizing unclipped ones
  // (measured against the unclipped full-precision output).
  std::vector<float> clipped_fake = linear.weight;
  FakeQuantize(clipped_fake, out, in, spec);
  FloatLinear clipped_quantized = original;
  clipped_quantized.weight = clipped_fake;
  double clipped_error = 0.0;
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t t = 0; t < tokens; ++t) {
      double exact = 0.0, quantized = 0.0;
      for (int64_t c = 0; c < in; ++c) {
        exact += x[t * in + c] * original.weight[r * in + c];
        quantized += x[t * in + c] * clipped_fake[r * in + c];
      }
      clipped_error += (exact - quantized) * (exact - quantized);
    }
  }
  clipped_error /= static_cast<double>(out * tokens);
  EXPECT_LT(clipped_error, OutputError(original, x, spec));
}

TEST(ClipSearchTest, NothingIsClippedWhenClippingCannotHelp) {
  // Weights already on a 4-bit grid quantize exactly: the unclipped candidate has zero error and wins.
  const int64_t out = 4, in = 32;
  FloatLinear linear{"l", in, out, std::vector<float>(out * in), std::nullopt};
  for (int64_t i = 0; i < out * in; ++i) linear.weight[i] = 0.1f * static_cast<float>(i % 16) - 0.7f;
  const std::vector<float> x = testing::RandomFloats(64 * in, /*seed=*/7, 1.0f);
  const std::vector<float> before = linear.weight;
  const ClipResult result = ClipWeights(linear, x, QuantSpec{4, 32});
  EXPECT_EQ(result.clipped_groups, 0);
  EXPECT_EQ(linear.weight, before);
}

}  // namespace
}  // namespace nibble
