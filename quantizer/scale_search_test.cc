#include "quantizer/scale_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nibble {
namespace {

TEST(ScaleSearchTest, StatisticsAreMeansOfAbsoluteValues) {
  // x [2, 3]
  const std::vector<float> x = {1.0f, -2.0f, 0.0f, -3.0f, 4.0f, 1.0f};
  EXPECT_THAT(ActivationMean(x, 3), ::testing::ElementsAre(2.0f, 3.0f, 0.5f));
  // One Linear [2 rows, 4 in], group 2: each |w| over its group's max |w|.
  FloatLinear linear{"l", 4, 2, {1.0f, -2.0f, 4.0f, 4.0f, 3.0f, 3.0f, -1.0f, 0.5f}, std::nullopt};
  const FloatLinear* layers[] = {&linear};
  const std::vector<float> wmean = WeightMean(layers, 2);
  EXPECT_NEAR(wmean[0], (0.5f + 1.0f) / 2, 1e-5f);
  EXPECT_NEAR(wmean[1], (1.0f + 1.0f) / 2, 1e-5f);
  EXPECT_NEAR(wmean[2], (1.0f + 1.0f) / 2, 1e-5f);
  EXPECT_NEAR(wmean[3], (1.0f + 0.5f) / 2, 1e-5f);
}

TEST(ScaleSearchTest, CandidatesAreNormalisedToUnitGeometricMeanOfTheExtremes) {
  const std::vector<float> xmean = {0.5f, 2.0f, 8.0f};
  const std::vector<float> wmean = {0.9f, 0.5f, 0.25f};
  EXPECT_THAT(CandidateScales(xmean, wmean, ScaleFormula::kActivation, 0.0), ::testing::Each(1.0f));
  const std::vector<float> act = CandidateScales(xmean, wmean, ScaleFormula::kActivation, 0.5);
  // sqrt(x) = {0.707, 1.414, 2.828}, divided by sqrt(0.707 * 2.828) = 1.414.
  EXPECT_NEAR(act[0], 0.5f, 1e-5f);
  EXPECT_NEAR(act[1], 1.0f, 1e-5f);
  EXPECT_NEAR(act[2], 2.0f, 1e-5f);
  const std::vector<float> duo = CandidateScales(xmean, wmean, ScaleFormula::kDuo, 0.5);
  std::vector<float> expected(3);
  for (int c = 0; c < 3; ++c) expected[c] = std::sqrt(xmean[c]) / (std::sqrt(wmean[c]) + 1e-4f);
  const float norm = std::sqrt(*std::max_element(expected.begin(), expected.end()) *
                               *std::min_element(expected.begin(), expected.end()));
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(duo[c], expected[c] / norm, 1e-5f);
  // A dead channel is floored at 1e-4 before normalising, never 0 or inf.
  const std::vector<float> dead =
      CandidateScales(std::vector<float>{0.0f, 1.0f}, wmean, ScaleFormula::kActivation, 0.5);
  EXPECT_TRUE(std::isfinite(dead[0]) && dead[0] > 0.0f);
}

TEST(ScaleSearchTest, KeepsTheLowestLossOverBothFormulas) {
  const std::vector<float> xmean = {1.0f, 4.0f};
  const std::vector<float> wmean = {0.5f, 0.5f};
  int calls = 0;
  // A loss minimised by the duo candidate at alpha 0.35.
  const std::vector<float> target = CandidateScales(xmean, wmean, ScaleFormula::kDuo, 0.35);
  auto loss = [&](const std::vector<float>& scales) -> absl::StatusOr<double> {
    ++calls;
    return std::abs(scales[1] - target[1]) + std::abs(scales[0] - target[0]);
  };
  auto both = SearchScales(xmean, wmean, ScaleSearchMode::kBoth, loss, "layer 0");
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(calls, 40);
  EXPECT_EQ(both->formula, ScaleFormula::kDuo);
  EXPECT_DOUBLE_EQ(both->alpha, 0.35);
  EXPECT_NEAR(both->loss, 0.0, 1e-9);
  calls = 0;
  auto act = SearchScales(xmean, wmean, ScaleSearchMode::kActivation, loss, "layer 0");
  ASSERT_TRUE(act.ok());
  EXPECT_EQ(calls, 20);
  EXPECT_EQ(act->formula, ScaleFormula::kActivation);
  EXPECT_GE(act->loss, both->loss);
}

TEST(ScaleSearchTest, NoFiniteLossFailsNamingTheLayers) {
  auto nan_loss = [](const std::vector<float>&) -> absl::StatusOr<double> {
    return std::numeric_limits<double>::quiet_NaN();
  };
  auto result = SearchScales(std::vector<float>{1.0f}, std::vector<float>{1.0f}, ScaleSearchMode::kBoth, nan_loss,
                             "model.layers.3 (gate,up)");
  EXPECT_TRUE(absl::IsFailedPrecondition(result.status()));
  EXPECT_THAT(std::string(result.status().message()), ::testing::HasSubstr("model.layers.3 (gate,up)"));
}

TEST(ScaleSearchTest, ScaledFakeQuantizationProtectsSalientChannels) {
  // Channel 0 carries large activations; scaling it up before quantizing shrinks its relative error.
  FloatLinear linear{"l", 32, 1, std::vector<float>(32), std::nullopt};
  for (int c = 0; c < 32; ++c) linear.weight[c] = 0.013f * static_cast<float>((c * 7) % 11) - 0.05f;
  linear.weight[0] = 0.0123f;  // between grid points of the group's range [-0.05, 0.08]
  std::vector<float> scales(32, 1.0f);
  const QuantSpec spec{3, 32};
  const float plain_error = std::abs(ScaledFakeQuantized(linear, scales, spec).weight[0] - linear.weight[0]);
  scales[0] = 4.0f;
  const float scaled_error = std::abs(ScaledFakeQuantized(linear, scales, spec).weight[0] - linear.weight[0]);
  EXPECT_LT(scaled_error, plain_error);
}

}  // namespace
}  // namespace nibble
