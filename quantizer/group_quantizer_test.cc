#include "quantizer/group_quantizer.h"

#include <cstring>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/random_weights.h"

namespace nibble {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::Pointwise;

TEST(GroupQuantizerTest, ParamsAndCodesFollowTheSpecWithHalfToEvenRounding) {
  // wmin -1, wmax 2: scale = 3 / 15 = 0.2, zero = -rint(-1 / 0.2) = 5.
  const std::vector<float> group = {-1.0f, 0.0f, 0.5f, 2.0f};
  const GroupParams params = ComputeGroupParams(group, QuantSpec{4, 32});
  EXPECT_FLOAT_EQ(params.scale, 0.2f);
  EXPECT_FLOAT_EQ(params.zero, 5.0f);
  EXPECT_EQ(QuantizeValue(-1.0f, params, 15), 0);
  EXPECT_EQ(QuantizeValue(2.0f, params, 15), 15);
  // 0.5 / 0.2 = 2.5 rounds to even (2), not away from zero (3): code 7, value 0.4.
  EXPECT_EQ(QuantizeValue(0.5f, params, 15), 7);
  EXPECT_EQ(QuantizeValue(10.0f, params, 15), 15);  // clamped
  std::vector<float> fake = group;
  FakeQuantizeGroup(fake, QuantSpec{4, 32});
  EXPECT_THAT(fake, Pointwise(FloatNear(1e-6f), std::vector<float>{-1.0f, 0.0f, 0.4f, 2.0f}));
}

TEST(GroupQuantizerTest, OneSignGroupsClampTheZeroAsTheReferenceDoes) {
  // All positive: wmin 1 -> zero = clamp(-rint(1 / scale), 0, 15) = 0, so values below wmax lose resolution.
  const std::vector<float> group = {1.0f, 2.0f, 4.0f};
  const GroupParams params = ComputeGroupParams(group, QuantSpec{4, 32});
  EXPECT_FLOAT_EQ(params.scale, 0.2f);
  EXPECT_FLOAT_EQ(params.zero, 0.0f);
  // A constant group: the range floor 1e-5 keeps the scale finite.
  const GroupParams flat = ComputeGroupParams(std::vector<float>(8, 0.0f), QuantSpec{3, 32});
  EXPECT_FLOAT_EQ(flat.scale, 1e-5f / 7.0f);
}

TEST(GroupQuantizerTest, ShorterLastGroupIsQuantizedOnItsOwn) {
  // in = 40, group 32: the last group holds 8 columns with their own range.
  std::vector<float> weight(40, 0.0f);
  for (int c = 0; c < 32; ++c) weight[c] = static_cast<float>(c);                // range 31
  for (int c = 32; c < 40; ++c) weight[c] = 0.01f * static_cast<float>(c - 32);  // range 0.07
  std::vector<float> fake = weight;
  FakeQuantize(fake, 1, 40, QuantSpec{4, 32});
  for (int c = 32; c < 40; ++c) EXPECT_NEAR(fake[c], weight[c], 0.07f / 15 / 2 + 1e-6f) << c;
}

TEST(GroupQuantizerTest, PackedWeightsDequantizeToTheFakeQuantizedOnes) {
  // 20 outputs (not a multiple of 8), 72 inputs (a short last group of 8 at g = 32).
  const int64_t out = 20, in = 72;
  const QuantSpec spec{4, 32};
  const std::vector<float> weight = testing::RandomFloats(out * in, /*seed=*/3, 0.5f);
  const AwqWeight awq = PackAwq(weight, out, in, spec);
  EXPECT_EQ(awq.qweight.shape, (Shape{in, 3}));
  EXPECT_EQ(awq.qzeros.shape, (Shape{3, 3}));
  EXPECT_EQ(awq.scales.shape, (Shape{3, out}));
  std::vector<float> fake = weight;
  FakeQuantize(fake, out, in, spec);
  // The engine's independent reader; the only difference is the fp16 rounding of the stored scales.
  const std::vector<float> dequantized = DequantizeAwq(awq, in, out);
  ASSERT_EQ(dequantized.size(), fake.size());
  for (size_t i = 0; i < fake.size(); ++i) EXPECT_NEAR(dequantized[i], fake[i], 2e-3f) << i;
}

TEST(GroupQuantizerTest, NibblesFollowAutoAwqColumnOrder) {
  // 8 outputs whose single group spans 0..15 (scale 1, zero 0), so input row 0 of output column r holds code r.
  const int64_t out = 8, in = 32;
  std::vector<float> weight(out * in);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t k = 0; k < in; ++k) weight[r * in + k] = static_cast<float>(k % 16);  // range 0..15: scale 1, zero 0
    weight[r * in] = static_cast<float>(r);
  }
  const AwqWeight awq = PackAwq(weight, out, in, QuantSpec{4, 32});
  uint32_t word;
  std::memcpy(&word, awq.qweight.data, sizeof(word));  // (k = 0, j = 0)
  // Nibble i holds column [0, 2, 4, 6, 1, 3, 5, 7][i], so the word reads 7 5 3 1 6 4 2 0 from the top.
  EXPECT_EQ(word, 0x75316420u);
}

TEST(GroupQuantizerTest, PackingAndFakeQuantizationOnAPoolGiveTheSameBytes) {
  // 300 outputs (38 words, the last one short) over 4 threads, against the single-threaded result.
  const int64_t out = 300, in = 96;
  const QuantSpec spec{4, 32};
  const std::vector<float> weight = testing::RandomFloats(out * in, /*seed=*/5, 0.5f);
  ThreadPool pool(4);
  const AwqWeight alone = PackAwq(weight, out, in, spec);
  const AwqWeight pooled = PackAwq(weight, out, in, spec, &pool);
  for (const auto member : {&AwqWeight::qweight, &AwqWeight::qzeros, &AwqWeight::scales}) {
    const HostTensor& a = alone.*member;
    const HostTensor& b = pooled.*member;
    ASSERT_EQ(a.bytes(), b.bytes());
    EXPECT_EQ(std::memcmp(a.data, b.data, a.bytes()), 0);
  }
  std::vector<float> fake_alone = weight;
  std::vector<float> fake_pooled = weight;
  FakeQuantize(fake_alone, out, in, spec);
  FakeQuantize(fake_pooled, out, in, spec, &pool);
  EXPECT_EQ(fake_alone, fake_pooled);
}

TEST(GroupQuantizerTest, UnsupportedSpecsAreRefusedByName) {
  EXPECT_TRUE(ValidateQuantSpec(QuantSpec{4, 128}, "job").ok());
  EXPECT_TRUE(ValidateQuantSpec(QuantSpec{3, 32}, "job").ok());
  const absl::Status bits = ValidateQuantSpec(QuantSpec{8, 128}, "job");
  EXPECT_TRUE(absl::IsInvalidArgument(bits));
  EXPECT_THAT(std::string(bits.message()), ::testing::HasSubstr("bits"));
  const absl::Status group = ValidateQuantSpec(QuantSpec{4, 100}, "job");
  EXPECT_THAT(std::string(group.message()), ::testing::HasSubstr("group size"));
}

}  // namespace
}  // namespace nibble
