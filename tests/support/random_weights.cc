#include "tests/support/random_weights.h"

#include <random>

namespace nibble::testing {

std::vector<float> RandomFloats(size_t count, uint32_t seed, float scale, bool fp16_representable) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(count);
  for (float& value : values) {
    value = normal(rng);
    if (fp16_representable) value = HalfToFloat(FloatToHalf(value));
  }
  return values;
}

AwqWeight RandomAwq(int64_t in, int64_t out, int group_size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<uint32_t> code(0, 15);
  std::uniform_real_distribution<float> scale(0.002f, 0.02f);
  const int64_t groups = (in + group_size - 1) / group_size;
  const int64_t words = (out + 7) / 8;
  auto pack = [&](int64_t rows) {
    std::vector<std::byte> bytes(static_cast<size_t>(rows * words) * sizeof(uint32_t));
    auto* packed = reinterpret_cast<uint32_t*>(bytes.data());
    for (int64_t i = 0; i < rows * words; ++i) {
      for (int nibble = 0; nibble < 8; ++nibble) {
        if ((i % words) * 8 + kAwqNibbleColumn[nibble] < out) packed[i] |= code(rng) << (4 * nibble);
      }
    }
    return HostTensor::FromBytes(std::move(bytes), DType::kI32, Shape{rows, words});
  };
  AwqWeight awq;
  awq.group_size = group_size;
  awq.qweight = pack(in);
  awq.qzeros = pack(groups);
  std::vector<float> scales(static_cast<size_t>(groups * out));
  for (float& s : scales) s = scale(rng);
  std::vector<std::byte> scale_bytes(scales.size() * 2);
  ConvertFromFloat(scales, DType::kF16, scale_bytes.data());
  awq.scales = HostTensor::FromBytes(std::move(scale_bytes), DType::kF16, Shape{groups, out});
  return awq;
}

HostLinear RandomAwqLinear(int64_t in, int64_t out, int group_size, uint32_t seed, bool with_bias) {
  HostLinear linear;
  linear.in_features = in;
  linear.out_features = out;
  linear.weight = RandomAwq(in, out, group_size, seed);
  if (with_bias)
    linear.bias = HostTensor::FromFloats(RandomFloats(static_cast<size_t>(out), seed + 1, 0.1f), Shape{out});
  return linear;
}

}  // namespace nibble::testing
