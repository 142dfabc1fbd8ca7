#include "quantizer/clip_search.h"

#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"
#include "tests/support/random_weights.h"

namespace nibble {
namespace {

// Mean over tokens and rows of the squared difference between the outputs of `reference`'s weights and of
// `weights` once fake-quantized (both [out, in]), on inputs x [tokens, in].
double QuantizedOutputError(const FloatLinear& reference, std::vector<float> weights, const std::vector<float>& x,
                            const QuantSpec& spec) {
  FakeQuantize(weights, reference.out_features, reference.in_features, spec);
  const int64_t in = reference.in_features;
  const int64_t tokens = static_cast<int64_t>(x.size()) / in;
  double error = 0.0;
  for (int64_t r = 0; r < reference.out_features; ++r) {
    for (int64_t t = 0; t < tokens; ++t) {
      double exact = 0.0, quantized = 0.0;
      for (int64_t c = 0; c < in; ++c) {
        exact += x[t * in + c] * reference.weight[r * in + c];
        quantized += x[t * in + c] * weights[r * in + c];
      }
      error += (exact - quantized) * (exact - quantized);
    }
  }
  return error / static_cast<double>(reference.out_features * tokens);
}

TEST(ClipSearchTest, ClippingAnOutlierReducesTheQuantizedOutputError) {
  const int64_t out = 16, in = 64, tokens = 300;
  FloatLinear linear{"l", in, out, testing::RandomFloats(out * in, /*seed=*/5, 0.1f), std::nullopt};
  for (int64_t r = 0; r < out; ++r) linear.weight[r * in + 3] = 0.9f;  // a lone outlier in every row's first group
  const std::vector<float> x = testing::RandomFloats(tokens * in, /*seed=*/6, 1.0f);
  const QuantSpec spec{3, 32};
  const FloatLinear original = linear;
  ThreadPool pool;
  const ClipResult result = ClipWeights(linear, x, spec, pool);
  EXPECT_GT(result.clipped_groups, 0);
  // Every weight moved only toward zero, within half the group's range.
  for (size_t i = 0; i < linear.weight.size(); ++i) {
    EXPECT_LE(std::abs(linear.weight[i]), std::abs(original.weight[i]) + 1e-7f);
  }
  // The clipped weights, once quantized, reproduce the original outputs better than quantizing unclipped ones
  // (measured against the unclipped full-precision output).
  EXPECT_LT(QuantizedOutputError(original, linear.weight, x, spec),
            QuantizedOutputError(original, original.weight, x, spec));
}

TEST(ClipSearchTest, NothingIsClippedWhenClippingCannotHelp) {
  // Weights already on a 4-bit grid quantize exactly: the unclipped candidate has zero error and wins.
  const int64_t out = 4, in = 32;
  FloatLinear linear{"l", in, out, std::vector<float>(out * in), std::nullopt};
  for (int64_t i = 0; i < out * in; ++i) linear.weight[i] = 0.1f * static_cast<float>(i % 16) - 0.7f;
  const std::vector<float> x = testing::RandomFloats(64 * in, /*seed=*/7, 1.0f);
  const std::vector<float> before = linear.weight;
  ThreadPool pool;
  const ClipResult result = ClipWeights(linear, x, QuantSpec{4, 32}, pool);
  EXPECT_EQ(result.clipped_groups, 0);
  EXPECT_EQ(linear.weight, before);
}

}  // namespace
}  // namespace nibble
