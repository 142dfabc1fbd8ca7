#include "engine/runtime/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace nibble {
namespace {

SampledToken Sample(std::vector<float> logits, const SamplingParams& params, uint64_t step = 0,
                    std::vector<int32_t> prompt = {}, std::vector<int32_t> output = {}) {
  SamplingRequest request{&params, step, prompt, output};
  return SampleFromLogits(logits, request);
}

TEST(SamplingTest, GreedyTakesTheArgmaxAndReportsItsLogprob) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.num_logprobs = 2;
  const SampledToken token = Sample({0.0f, 3.0f, 1.0f, 3.0f}, params);
  EXPECT_EQ(token.token, 1);  // ties: the lower id
  const double log_sum = std::log(1 + 2 * std::exp(3.0) + std::exp(1.0));
  EXPECT_NEAR(token.logprob, 3.0 - log_sum, 1e-5);
  ASSERT_EQ(token.top_logprobs.size(), 2u);
  EXPECT_EQ(token.top_logprobs[0].first, 1);
  EXPECT_EQ(token.top_logprobs[1].first, 3);
}

TEST(SamplingTest, SeededSamplingRepeatsAndFollowsTheDistribution) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.seed = 1234;
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  std::map<int32_t, int> counts;
  const int draws = 20000;
  for (int step = 0; step < draws; ++step) {
    const int32_t token = Sample(logits, params, step).token;
    ASSERT_EQ(token, Sample(logits, params, step).token);  // same seed and step: same token
    ++counts[token];
  }
  EXPECT_NEAR(counts[0] / double(draws), 0.5, 0.015);
  EXPECT_NEAR(counts[1] / double(draws), 0.3, 0.015);
  EXPECT_NEAR(counts[2] / double(draws), 0.2, 0.015);
}

TEST(SamplingTest, TopKTopPAndMinPRestrictTheSupport) {
  const std::vector<float> logits = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  SamplingParams top_k;
  top_k.top_k = 2;
  SamplingParams top_p;
  top_p.top_p = 0.65f;  // 0.4 + 0.3 reaches 0.65: tokens 0 and 1
  SamplingParams min_p;
  min_p.min_p = 0.6f;  // keeps probabilities >= 0.24: tokens 0 and 1
  for (const SamplingParams* params : {&top_k, &top_p, &min_p}) {
    std::map<int32_t, int> counts;
    for (int step = 0; step < 4000; ++step) ++counts[Sample(logits, *params, step).token];
    EXPECT_EQ(counts.count(2) + counts.count(3), 0u);
    EXPECT_NEAR(counts[0] / 4000.0, 0.4 / 0.7, 0.03);
  }
}

TEST(SamplingTest, PenaltiesFollowTheirDefinitions) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 2.0f;
  // Token 0 (logit 4, seen in the prompt) becomes 2, below token 1's 3.
  EXPECT_EQ(Sample({4.0f, 3.0f, -1.0f}, params, 0, {0}).token, 1);
  SamplingParams frequency;
  frequency.temperature = 0.0f;
  frequency.frequency_penalty = 0.6f;
  // Token 0 appeared twice in the output: 4 - 1.2 = 2.8 < 3.
  EXPECT_EQ(Sample({4.0f, 3.0f}, frequency, 0, {}, {0, 0}).token, 1);
  EXPECT_EQ(Sample({4.0f, 3.0f}, frequency, 0, {}, {0}).token, 0);  // 3.4 > 3
  SamplingParams presence;
  presence.temperature = 0.0f;
  presence.presence_penalty = 1.5f;
  EXPECT_EQ(Sample({4.0f, 3.0f}, presence, 0, {}, {0}).token, 1);
  EXPECT_EQ(Sample({4.0f, 3.0f}, presence, 0, {0}, {}).token, 0);  // prompt tokens are not penalised
}

TEST(SamplingTest, CounterUniformIsInRangeAndVaries) {
  float previous = -1.0f;
  for (uint64_t step = 0; step < 1000; ++step) {
    const float u = CounterUniform(7, step);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    EXPECT_NE(u, previous);
    previous = u;
  }
  EXPECT_NE(CounterUniform(1, 0), CounterUniform(2, 0));
}

}  // namespace
}  // namespace nibble
