// Element types of tensors and the host-side conversions between them.
//
// Conversions are exact where the target can represent the value and round to nearest even otherwise
// (what PyTorch and the CUDA intrinsics do), so the CPU reference and the CUDA backend see the same fp16
// weights. All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace nibble {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kI32,
  kI64,
  kU8,
};

// Bytes of one element.
size_t DTypeSize(DType dtype);
// "F32", "F16", ... as safetensors spells them.
absl::string_view DTypeName(DType dtype);
// Parses a safetensors dtype name; an unknown name is an InvalidArgument naming it.
absl::StatusOr<DType> ParseDType(absl::string_view name);
bool IsFloat(DType dtype);

// IEEE binary16 and bfloat16 bit patterns <-> binary32.
float HalfToFloat(uint16_t half);
uint16_t FloatToHalf(float value);
float BFloat16ToFloat(uint16_t bf16);
uint16_t FloatToBFloat16(float value);

// Converts `count` elements of a float dtype (F32, F16 or BF16) at `src` into fp32.
void ConvertToFloat(DType src_dtype, const void* src, std::span<float> dst);
// Converts fp32 values into a float dtype (F32, F16 or BF16) at `dst` (dst holds src.size() elements).
void ConvertFromFloat(std::span<const float> src, DType dst_dtype, void* dst);

}  // namespace nibble
