// AWQ's clipping search (../shared/docs/awq.md §6): for every output row and group of a Linear, the clipping
// threshold m = max|w| * (1 - i/20), i = 0..9, whose fake-quantized group best preserves the group's partial
// dot products with (at most 512 evenly sampled) calibration inputs; the weights are then clamped to
// [-m, m]. Pure math over fp32 host arrays, parallel over rows on the caller's thread pool; call from one thread.
#pragma once

#include <cstdint>
#include <span>

#include "engine/base/parallel_for.h"
#include "quantizer/float_layer.h"
#include "quantizer/group_quantizer.h"

namespace nibble {

inline constexpr int kClipGridSize = 20;  // shrink steps of 1/20
inline constexpr int kClipSteps = 10;     // i = 0..9: at most half the range is clipped
inline constexpr int64_t kClipSampleTokens = 512;

struct ClipResult {
  double mean_error = 0;       // mean over rows and groups of the best candidate's error
  int64_t clipped_groups = 0;  // groups whose best threshold is below their max |w|
};

// Clamps `linear`'s weights in place. `x` holds the Linear's inputs [tokens, in].
ClipResult ClipWeights(FloatLinear& linear, std::span<const float> x, const QuantSpec& spec, ThreadPool& pool);

}  // namespace nibble
