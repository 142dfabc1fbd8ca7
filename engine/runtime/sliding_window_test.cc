// Mistral's sliding window through the one forward pass, on the CPU backend: a 40-token sequence on a small
// Mistral-shaped model with sliding_window 8 against the same weights without it. The query at position i sees
// the keys i - 7 .. i, so positions 0..7 (which see everything either way) must give the very same logits and
// every later position different ones; prefill and decode must agree with each other. (The attention op itself
// is checked against a masked softmax in cpu_backend_test.)
#include <gtest/gtest.h>

#include <iostream>

#include "engine/cpu/cpu_backend.h"
#include "tests/support/sliding_window_model.h"

namespace nibble {
namespace {

using testing::LogitsAtEveryPosition;
using testing::RelativeError;
using testing::SyntheticMistral;

constexpr int64_t kWindow = 8;

std::vector<int32_t> FortyTokens() {
  std::vector<int32_t> tokens(40);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(1 + (i * 53) % 500);
  return tokens;
}

TEST(SlidingWindowTest, OnlyMistralAppliesItsWindow) {
  ModelConfig config;
  config.sliding_window = 4096;
  EXPECT_EQ(config.attention_window(), 0) << "Llama";
  config.architecture = Architecture::kQwen2;  // Qwen2's is ignored without use_sliding_window
  EXPECT_EQ(config.attention_window(), 0);
  config.architecture = Architecture::kMistral;
  EXPECT_EQ(config.attention_window(), 4096);
  config.sliding_window.reset();
  EXPECT_EQ(config.attention_window(), 0);
}

TEST(SlidingWindowTest, CpuLogitsChangeExactlyWhereTheWindowHidesKeys) {
  auto windowed = SyntheticMistral(kWindow, 7);
  auto full = SyntheticMistral(std::nullopt, 7);
  ASSERT_TRUE(windowed.ok() && full.ok()) << windowed.status() << full.status();
  std::unique_ptr<Backend> cpu = MakeCpuBackend();
  const std::vector<int32_t> tokens = FortyTokens();
  // Prefill 24 positions, then 16 decode steps.
  auto with_window = LogitsAtEveryPosition(*cpu, *windowed, tokens, 24);
  auto without = LogitsAtEveryPosition(*cpu, *full, tokens, 24);
  ASSERT_TRUE(with_window.ok() && without.ok()) << with_window.status() << without.status();
  ASSERT_EQ(with_window->size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const double difference = RelativeError((*with_window)[i], (*without)[i]);
    if (i < kWindow) {
      EXPECT_EQ((*with_window)[i], (*without)[i]) << "position " << i << " sees all of its keys either way";
    } else {
      EXPECT_GT(difference, 1e-3) << "position " << i << " must not see keys before " << i - kWindow + 1;
    }
    if (i == kWindow || i == 23 || i == 39)
      std::cout << "position " << i << ": windowed vs full " << difference << "\n";
  }
  // The same sequence prefilled in one step and decoded one token at a time from position 1 give the same logits.
  auto one_step = LogitsAtEveryPosition(*cpu, *windowed, tokens, 40);
  auto all_decoded = LogitsAtEveryPosition(*cpu, *windowed, tokens, 1);
  ASSERT_TRUE(one_step.ok() && all_decoded.ok());
  for (size_t i = 0; i < tokens.size(); ++i) {
    EXPECT_LT(RelativeError((*one_step)[i], (*with_window)[i]), 1e-5) << "one-step prefill, position " << i;
    EXPECT_LT(RelativeError((*all_decoded)[i], (*with_window)[i]), 1e-5) << "decode only, position " << i;
  }
}

}  // namespace
}  // namespace nibble
