// Random tensors for tests: normal floats, and AWQ GEMM weights packed in AutoAWQ's nibble order
// (awq.md §7) with random codes, zero points and fp16 scales. Deterministic in the seed.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/io/host_model.h"

namespace nibble::testing {

// `count` values from normal(0, scale), each rounded to fp16 when `fp16_representable` (so that a CPU
// reference sees exactly what an fp16 backend sees).
std::vector<float> RandomFloats(size_t count, uint32_t seed, float scale = 1.0f, bool fp16_representable = true);

// An AWQ weight for a Linear of `in` -> `out` features with groups of `group_size` inputs.
AwqWeight RandomAwq(int64_t in, int64_t out, int group_size, uint32_t seed);

// A Linear holding RandomAwq weights (and a random fp32 bias when `with_bias`).
HostLinear RandomAwqLinear(int64_t in, int64_t out, int group_size, uint32_t seed, bool with_bias = false);

}  // namespace nibble::testing
