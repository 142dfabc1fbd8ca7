#include "engine/base/dtype.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace nibble {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kF16:
      return 2;
    case DType::kBF16:
      return 2;
    case DType::kI32:
      return 4;
    case DType::kI64:
      return 8;
    case DType::kU8:
      return 1;
  }
  return 0;
}

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI32:
      return "I32";
    case DType::kI64:
      return "I64";
    case DType::kU8:
      return "U8";
  }
  return "?";
}

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64, DType::kU8}) {
    if (name == DTypeName(dtype)) return dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported dtype \"", name, "\""));
}

bool IsFloat(DType dtype) { return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16; }

float HalfToFloat(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1Fu;
  uint32_t mantissa = half & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {  // inf or NaN
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal half: normalise into a float
    int shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x3FFu;
    bits = sign | static_cast<uint32_t>(113 - shift) << 23 | (mantissa << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t FloatToHalf(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs_bits = bits & 0x7FFFFFFFu;
  if (abs_bits >= 0x7F800000u) {  // inf or NaN (keep NaN quiet)
    return sign | 0x7C00u | (abs_bits > 0x7F800000u ? 0x200u : 0u);
  }
  if (abs_bits >= 0x477FF000u) {  // rounds to >= 65520: overflow to inf
    return sign | 0x7C00u;
  }
  if (abs_bits < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    // value = m * 2^(e-150) with the implicit bit; the half subnormal unit is 2^-24.
    const uint32_t exponent = abs_bits >> 23;
    if (exponent < 102) return sign;  // < 2^-25: rounds to zero
    const uint32_t mantissa = (abs_bits & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24
    uint32_t result = mantissa >> shift;
    const uint32_t remainder = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (result & 1u))) ++result;
    return sign | static_cast<uint16_t>(result);
  }
  // Normal: rebias 127 -> 15 and round the 13 dropped mantissa bits to nearest even.
  uint32_t result = ((abs_bits >> 13) - (112u << 10));
  const uint32_t remainder = abs_bits & 0x1FFFu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (result & 1u))) ++result;
  return sign | static_cast<uint16_t>(result);
}

float BFloat16ToFloat(uint16_t bf16) { return std::bit_cast<float>(static_cast<uint32_t>(bf16) << 16); }

uint16_t FloatToBFloat16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  const uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);                                     // round to nearest even
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

void ConvertToFloat(DType src_dtype, const void* src, std::span<float> dst) {
  switch (src_dtype) {
    case DType::kF32:
      std::memcpy(dst.data(), src, dst.size_bytes());
      return;
    case DType::kF16: {
      const auto* halves = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < dst.size(); ++i) dst[i] = HalfToFloat(halves[i]);
      return;
    }
    case DType::kBF16: {
      const auto* values = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < dst.size(); ++i) dst[i] = BFloat16ToFloat(values[i]);
      return;
    }
    default:
      for (float& value : dst) value = std::nanf("");  // callers check IsFloat first
  }
}

void ConvertFromFloat(std::span<const float> src, DType dst_dtype, void* dst) {
  switch (dst_dtype) {
    case DType::kF32:
      std::memcpy(dst, src.data(), src.size_bytes());
      return;
    case DType::kF16: {
      auto* halves = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < src.size(); ++i) halves[i] = FloatToHalf(src[i]);
      return;
    }
    case DType::kBF16: {
      auto* values = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < src.size(); ++i) values[i] = FloatToBFloat16(src[i]);
      return;
    }
    default:
      return;  // callers check IsFloat first
  }
}

}  // namespace nibble
