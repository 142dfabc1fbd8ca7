#include "quantizer/group_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/base/dtype.h"

namespace nibble {

absl::Status ValidateQuantSpec(const QuantSpec& spec, absl::string_view what) {
  if (spec.bits != 3 && spec.bits != 4) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": bits must be 3 or 4, not ", spec.bits));
  }
  if (spec.group_size != 32 && spec.group_size != 64 && spec.group_size != 128) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": group size must be 32, 64 or 128, not ", spec.group_size));
  }
  return absl::OkStatus();
}

GroupParams ComputeGroupParams(std::span<const float> group, const QuantSpec& spec) {
  const auto [min_it, max_it] = std::minmax_element(group.begin(), group.end());
  const float max_code = static_cast<float>(spec.max_code());
  GroupParams params;
  // scale = max(wmax - wmin, 1e-5) / (2^b - 1); zero = clamp(-rint(wmin / scale), 0, 2^b - 1).
  params.scale = std::max(*max_it - *min_it, 1e-5f) / max_code;
  params.zero = std::clamp(-std::nearbyint(*min_it / params.scale), 0.0f, max_code);
  return params;
}

int QuantizeValue(float w, const GroupParams& params, int max_code) {
  const float code = std::nearbyint(w / params.scale) + params.zero;
  return static_cast<int>(std::clamp(code, 0.0f, static_cast<float>(max_code)));
}

void FakeQuantizeGroup(std::span<float> group, const QuantSpec& spec) {
  const GroupParams params = ComputeGroupParams(group, spec);
  for (float& w : group) {
    w = (static_cast<float>(QuantizeValue(w, params, spec.max_code())) - params.zero) * params.scale;
  }
}

namespace {
// Calls body(begin, end) over [0, count), in parallel on `pool` when there is one.
void ForRanges(ThreadPool* pool, int64_t count, const std::function<void(int64_t, int64_t)>& body) {
  if (pool == nullptr) return body(0, count);
  pool->ParallelFor(count, /*min_per_thread=*/8, body);
}
}  // namespace

void FakeQuantize(std::span<float> weight, int64_t out_features, int64_t in_features, const QuantSpec& spec,
                  ThreadPool* pool) {
  ForRanges(pool, out_features, [&](int64_t first_row, int64_t end_row) {
    for (int64_t row = first_row; row < end_row; ++row) {
      for (int64_t begin = 0; begin < in_features; begin += spec.group_size) {
        const int64_t length = std::min<int64_t>(spec.group_size, in_features - begin);
        FakeQuantizeGroup(weight.subspan(static_cast<size_t>(row * in_features + begin), static_cast<size_t>(length)),
                          spec);
      }
    }
  });
}

AwqWeight PackAwq(std::span<const float> weight, int64_t out_features, int64_t in_features, const QuantSpec& spec,
                  ThreadPool* pool) {
  const int64_t groups = spec.GroupsPerRow(in_features);
  const int64_t words = (out_features + 7) / 8;
  std::vector<int32_t> qweight(static_cast<size_t>(in_features * words), 0);
  std::vector<int32_t> qzeros(static_cast<size_t>(groups * words), 0);
  std::vector<uint16_t> scales(static_cast<size_t>(groups * out_features));
  // Output column c sits in word c / 8 at the nibble i with kAwqNibbleColumn[i] == c % 8.
  int nibble_of_column[8];
  for (int i = 0; i < 8; ++i) nibble_of_column[kAwqNibbleColumn[i]] = i;
  auto put = [&](std::vector<int32_t>& words_out, int64_t row, int64_t column, int code) {
    const int shift = 4 * nibble_of_column[column % 8];
    uint32_t& word = reinterpret_cast<uint32_t&>(words_out[static_cast<size_t>(row * words + column / 8)]);
    word |= static_cast<uint32_t>(code) << shift;
  };
  // Each range of words owns its 8 columns' nibbles in every packed row, so ranges never share a word.
  ForRanges(pool, words, [&](int64_t first_word, int64_t end_word) {
    for (int64_t column = first_word * 8; column < std::min(end_word * 8, out_features);
         ++column) {  // output column = row of `weight`
      for (int64_t group = 0; group < groups; ++group) {
        const int64_t begin = group * spec.group_size;
        const int64_t length = std::min<int64_t>(spec.group_size, in_features - begin);
        const std::span<const float> values =
            weight.subspan(static_cast<size_t>(column * in_features + begin), static_cast<size_t>(length));
        GroupParams params = ComputeGroupParams(values, spec);
        const uint16_t stored_scale = FloatToHalf(params.scale);
        params.scale = HalfToFloat(stored_scale);
        scales[static_cast<size_t>(group * out_features + column)] = stored_scale;
        put(qzeros, group, column, static_cast<int>(params.zero));
        for (int64_t k = 0; k < length; ++k) {
          put(qweight, begin + k, column, QuantizeValue(values[static_cast<size_t>(k)], params, spec.max_code()));
        }
      }
    }
  });
  auto bytes_of = [](const auto& values) {
    std::vector<std::byte> bytes(values.size() * sizeof(values[0]));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
  };
  AwqWeight awq;
  awq.group_size = spec.group_size;
  awq.qweight = HostTensor::FromBytes(bytes_of(qweight), DType::kI32, Shape{in_features, words});
  awq.qzeros = HostTensor::FromBytes(bytes_of(qzeros), DType::kI32, Shape{groups, words});
  awq.scales = HostTensor::FromBytes(bytes_of(scales), DType::kF16, Shape{groups, out_features});
  return awq;
}

}  // namespace nibble
