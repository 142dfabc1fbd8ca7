// The asymmetric group quantizer of ../shared/docs/awq.md §1, shared by the scale search, the clipping
// search, RTN, fake-quant evaluation and packing (so every path quantizes the same way).
//
// Weights are fp32 row-major [out, in]. A group is up to `group_size` consecutive input columns of one row;
// a row whose `in` is not a multiple of the group size ends with one shorter group. Rounding is rint (round
// half to even, like torch.round) under the default floating-point rounding mode. Pure functions, any thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/base/parallel_for.h"
#include "engine/io/host_model.h"

namespace nibble {

struct QuantSpec {
  int bits = 4;          // 3 or 4 (3 only for fake-quant evaluation)
  int group_size = 128;  // 32, 64 or 128

  int64_t GroupsPerRow(int64_t in_features) const { return (in_features + group_size - 1) / group_size; }
  int max_code() const { return (1 << bits) - 1; }
};

// InvalidArgument naming `what` (a layer or the job) when the spec is not one we support.
absl::Status ValidateQuantSpec(const QuantSpec& spec, absl::string_view what);

// One group's quantization parameters (scale and zero point as awq.md §1 defines them).
struct GroupParams {
  float scale = 1.0f;
  float zero = 0.0f;  // an integer in [0, max_code]
};
GroupParams ComputeGroupParams(std::span<const float> group, const QuantSpec& spec);
// The code of one weight: clamp(rint(w / scale) + zero, 0, max_code).
int QuantizeValue(float w, const GroupParams& params, int max_code);

// Replaces every group of `weight` [out, in] by its quantize-dequantize image (q - zero) * scale. Rows are
// independent: with a pool they run in parallel, with the same result.
void FakeQuantize(std::span<float> weight, int64_t out_features, int64_t in_features, const QuantSpec& spec,
                  ThreadPool* pool = nullptr);
// The same for one group (used by the clipping search on clamped copies).
void FakeQuantizeGroup(std::span<float> group, const QuantSpec& spec);

// Quantizes `weight` [out, in] to 4 bits and packs it in AutoAWQ's GEMM layout (awq.md §7). The scales are
// stored as fp16; codes are computed against the stored (fp16-rounded) scale so that the artifact
// dequantizes to what was searched. `bits` must be 4. With a pool, runs of 8 output columns (one packed word
// each) are packed in parallel, with the same result.
AwqWeight PackAwq(std::span<const float> weight, int64_t out_features, int64_t in_features, const QuantSpec& spec,
                  ThreadPool* pool = nullptr);

}  // namespace nibble
