#include "engine/io/weight_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "engine/tools/synth.h"

namespace nibble {
namespace {

using ::testing::HasSubstr;

// Replaces element `index` of `tensor` by `value` in a copy the tensor then owns.
void Poison(HostTensor& tensor, int64_t index, float value) {
  std::vector<float> values = tensor.ToFloats();
  values[static_cast<size_t>(index)] = value;
  const DType dtype = tensor.dtype;
  std::vector<std::byte> bytes(static_cast<size_t>(tensor.numel()) * DTypeSize(dtype));
  ConvertFromFloat(values, dtype, bytes.data());
  tensor = HostTensor::FromBytes(std::move(bytes), dtype, tensor.shape);
}

TEST(WeightCheckTest, ASynthesizedModelIsFinite) {
  const HostModel model = SynthesizeModel("tiny", 1).value();
  EXPECT_TRUE(CheckFiniteWeights(model).ok());
}

TEST(WeightCheckTest, ANonFiniteValueIsRefusedNamingTheTensorAndTheElement) {
  HostModel model = SynthesizeModel("tiny", 1).value();
  Poison(model.layers[1].down.weight.index() == 0 ? std::get<HostTensor>(model.layers[1].down.weight)
                                                  : std::get<AwqWeight>(model.layers[1].down.weight).scales,
         5, std::numeric_limits<float>::quiet_NaN());
  absl::Status status = CheckFiniteWeights(model);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("model.layers.1.mlp.down_proj"));
  EXPECT_THAT(status.message(), HasSubstr("element 5"));

  model = SynthesizeModel("tiny", 1).value();
  Poison(model.final_norm, 0, std::numeric_limits<float>::infinity());
  status = CheckFiniteWeights(model);
  EXPECT_THAT(status.message(), HasSubstr("model.norm.weight holds a non-finite value (inf at element 0)"));
}

}  // namespace
}  // namespace nibble
