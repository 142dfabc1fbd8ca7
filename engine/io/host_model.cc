#include "engine/io/host_model.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace nibble {
namespace {

int64_t PackedWords(int64_t columns) { return (columns + 7) / 8; }

// The 4-bit code of column `col` from a row of packed words.
int UnpackNibble(const int32_t* row, int64_t col) {
  const uint32_t word = static_cast<uint32_t>(row[col / 8]);
  const int within = static_cast<int>(col % 8);
  for (int nibble = 0; nibble < 8; ++nibble) {
    if (kAwqNibbleColumn[nibble] == within) return static_cast<int>((word >> (4 * nibble)) & 0xFu);
  }
  return 0;
}

// Unpacks an int32 [rows, ceil(cols/8)] packed tensor into codes [rows, cols].
std::vector<uint8_t> UnpackCodes(const HostTensor& packed, int64_t rows, int64_t cols) {
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  const auto words = packed.span<int32_t>();
  const int64_t words_per_row = PackedWords(cols);
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* row = words.data() + r * words_per_row;
    for (int64_t c = 0; c < cols; ++c) codes[r * cols + c] = static_cast<uint8_t>(UnpackNibble(row, c));
  }
  return codes;
}

HostTensor PackCodes(const std::vector<uint8_t>& codes, int64_t rows, int64_t cols) {
  const int64_t words_per_row = PackedWords(cols);
  std::vector<std::byte> bytes(static_cast<size_t>(rows * words_per_row) * sizeof(int32_t));
  auto* words = reinterpret_cast<uint32_t*>(bytes.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < words_per_row; ++j) {
      uint32_t word = 0;
      for (int nibble = 0; nibble < 8; ++nibble) {
        const int64_t col = 8 * j + kAwqNibbleColumn[nibble];
        if (col < cols) word |= static_cast<uint32_t>(codes[r * cols + col] & 0xF) << (4 * nibble);
      }
      words[r * words_per_row + j] = word;
    }
  }
  return HostTensor::FromBytes(std::move(bytes), DType::kI32, Shape{rows, words_per_row});
}

}  // namespace

HostTensor HostTensor::FromFloats(std::vector<float> values, Shape shape) {
  auto storage = std::make_shared<std::vector<float>>(std::move(values));
  HostTensor tensor;
  tensor.dtype = DType::kF32;
  tensor.shape = shape;
  tensor.data = reinterpret_cast<const std::byte*>(storage->data());
  tensor.owner = std::move(storage);
  return tensor;
}

HostTensor HostTensor::FromBytes(std::vector<std::byte> bytes, DType dtype, Shape shape) {
  auto storage = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  HostTensor tensor;
  tensor.dtype = dtype;
  tensor.shape = shape;
  tensor.data = storage->data();
  tensor.owner = std::move(storage);
  return tensor;
}

std::vector<float> HostTensor::ToFloats() const {
  std::vector<float> values(static_cast<size_t>(numel()));
  ConvertToFloat(dtype, data, values);
  return values;
}

std::vector<float> DequantizeAwq(const AwqWeight& awq, int64_t in_features, int64_t out_features) {
  const int64_t groups = (in_features + awq.group_size - 1) / awq.group_size;
  const std::vector<uint8_t> codes = UnpackCodes(awq.qweight, in_features, out_features);
  const std::vector<uint8_t> zeros = UnpackCodes(awq.qzeros, groups, out_features);
  const std::vector<float> scales = awq.scales.ToFloats();
  std::vector<float> weight(static_cast<size_t>(out_features * in_features));
  for (int64_t k = 0; k < in_features; ++k) {
    const int64_t group = k / awq.group_size;
    for (int64_t n = 0; n < out_features; ++n) {
      const float zero = zeros[group * out_features + n];
      const float scale = scales[group * out_features + n];
      weight[n * in_features + k] = (static_cast<float>(codes[k * out_features + n]) - zero) * scale;
    }
  }
  return weight;
}

std::vector<float> LinearWeightToFloats(const HostLinear& linear) {
  if (const auto* awq = std::get_if<AwqWeight>(&linear.weight)) {
    return DequantizeAwq(*awq, linear.in_features, linear.out_features);
  }
  return std::get<HostTensor>(linear.weight).ToFloats();
}

absl::StatusOr<HostLinear> ConcatOutputs(std::span<const HostLinear* const> parts, absl::string_view name) {
  if (parts.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": nothing to concatenate"));
  HostLinear fused;
  fused.in_features = parts[0]->in_features;
  const bool quantized = parts[0]->quantized();
  const bool any_bias =
      std::any_of(parts.begin(), parts.end(), [](const HostLinear* p) { return p->bias.has_value(); });
  for (const HostLinear* part : parts) {
    if (part->in_features != fused.in_features || part->quantized() != quantized) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": the fused projections disagree on in_features or on being quantized"));
    }
    fused.out_features += part->out_features;
  }
  const int64_t in = fused.in_features;
  const int64_t out = fused.out_features;

  const bool word_aligned =
      std::all_of(parts.begin(), parts.end(), [](const HostLinear* p) { return p->out_features % 8 == 0; });
  if (quantized && word_aligned) {
    // Every part fills whole packed words: concatenate the words of each row (and the scales) directly.
    const int group_size = std::get<AwqWeight>(parts[0]->weight).group_size;
    const int64_t groups = (in + group_size - 1) / group_size;
    std::vector<std::byte> qweight(static_cast<size_t>(in * out / 8) * 4),
        qzeros(static_cast<size_t>(groups * out / 8) * 4), scales(static_cast<size_t>(groups * out) * 2);
    int64_t col0 = 0;
    for (const HostLinear* part : parts) {
      const auto& awq = std::get<AwqWeight>(part->weight);
      if (awq.group_size != group_size || awq.scales.dtype != DType::kF16) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": the fused projections use different group sizes or scale dtypes"));
      }
      const int64_t n = part->out_features;
      auto copy_rows = [&](const HostTensor& from, std::vector<std::byte>& to, int64_t rows, int64_t row_bytes,
                           int64_t to_row_bytes, int64_t offset_bytes) {
        for (int64_t r = 0; r < rows; ++r) {
          std::memcpy(to.data() + r * to_row_bytes + offset_bytes, from.data + r * row_bytes,
                      static_cast<size_t>(row_bytes));
        }
      };
      copy_rows(awq.qweight, qweight, in, n / 8 * 4, out / 8 * 4, col0 / 8 * 4);
      copy_rows(awq.qzeros, qzeros, groups, n / 8 * 4, out / 8 * 4, col0 / 8 * 4);
      copy_rows(awq.scales, scales, groups, n * 2, out * 2, col0 * 2);
      col0 += n;
    }
    AwqWeight awq;
    awq.group_size = group_size;
    awq.qweight = HostTensor::FromBytes(std::move(qweight), DType::kI32, Shape{in, out / 8});
    awq.qzeros = HostTensor::FromBytes(std::move(qzeros), DType::kI32, Shape{groups, out / 8});
    awq.scales = HostTensor::FromBytes(std::move(scales), DType::kF16, Shape{groups, out});
    fused.weight = std::move(awq);
  } else if (quantized) {
    const int group_size = std::get<AwqWeight>(parts[0]->weight).group_size;
    const int64_t groups = (in + group_size - 1) / group_size;
    std::vector<uint8_t> codes(static_cast<size_t>(in * out));
    std::vector<uint8_t> zeros(static_cast<size_t>(groups * out));
    std::vector<float> scales(static_cast<size_t>(groups * out));
    int64_t col0 = 0;
    for (const HostLinear* part : parts) {
      const auto& awq = std::get<AwqWeight>(part->weight);
      if (awq.group_size != group_size) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": the fused projections use different group sizes"));
      }
      const int64_t n = part->out_features;
      const std::vector<uint8_t> part_codes = UnpackCodes(awq.qweight, in, n);
      const std::vector<uint8_t> part_zeros = UnpackCodes(awq.qzeros, groups, n);
      const std::vector<float> part_scales = awq.scales.ToFloats();
      for (int64_t k = 0; k < in; ++k) std::memcpy(&codes[k * out + col0], &part_codes[k * n], n);
      for (int64_t g = 0; g < groups; ++g) {
        std::memcpy(&zeros[g * out + col0], &part_zeros[g * n], n);
        std::memcpy(&scales[g * out + col0], &part_scales[g * n], n * sizeof(float));
      }
      col0 += n;
    }
    AwqWeight awq;
    awq.group_size = group_size;
    awq.qweight = PackCodes(codes, in, out);
    awq.qzeros = PackCodes(zeros, groups, out);
    std::vector<std::byte> scale_bytes(scales.size() * 2);
    ConvertFromFloat(scales, DType::kF16, scale_bytes.data());
    awq.scales = HostTensor::FromBytes(std::move(scale_bytes), DType::kF16, Shape{groups, out});
    fused.weight = std::move(awq);
  } else {
    DType dtype = std::get<HostTensor>(parts[0]->weight).dtype;
    for (const HostLinear* part : parts) {
      if (std::get<HostTensor>(part->weight).dtype != dtype) dtype = DType::kF32;
    }
    std::vector<std::byte> bytes;
    bytes.reserve(static_cast<size_t>(in * out) * DTypeSize(dtype));
    for (const HostLinear* part : parts) {
      const auto& weight = std::get<HostTensor>(part->weight);
      if (weight.dtype == dtype) {
        bytes.insert(bytes.end(), weight.data, weight.data + weight.bytes());
      } else {
        const std::vector<float> values = weight.ToFloats();
        const auto* raw = reinterpret_cast<const std::byte*>(values.data());
        bytes.insert(bytes.end(), raw, raw + values.size() * sizeof(float));
      }
    }
    fused.weight = HostTensor::FromBytes(std::move(bytes), dtype, Shape{out, in});
  }

  if (any_bias) {
    std::vector<float> bias;
    bias.reserve(static_cast<size_t>(out));
    for (const HostLinear* part : parts) {
      if (part->bias) {
        const std::vector<float> values = part->bias->ToFloats();
        bias.insert(bias.end(), values.begin(), values.end());
      } else {
        bias.insert(bias.end(), static_cast<size_t>(part->out_features), 0.0f);
      }
    }
    fused.bias = HostTensor::FromFloats(std::move(bias), Shape{out});
  }
  return fused;
}

std::vector<uint8_t> UnpackAwqNibbles(const HostTensor& packed, int64_t rows, int64_t cols, ThreadPool* pool) {
  const int64_t words_per_row = (cols + 7) / 8;
  const auto words = packed.span<int32_t>();
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  auto unpack_rows = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t j = 0; j < words_per_row; ++j) {
        const uint32_t word = static_cast<uint32_t>(words[r * words_per_row + j]);
        for (int nibble = 0; nibble < 8; ++nibble) {
          const int64_t c = 8 * j + kAwqNibbleColumn[nibble];
          if (c < cols) codes[r * cols + c] = static_cast<uint8_t>((word >> (4 * nibble)) & 0xFu);
        }
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(rows, 64, unpack_rows);
  } else {
    unpack_rows(0, rows);
  }
  return codes;
}

}  // namespace nibble
