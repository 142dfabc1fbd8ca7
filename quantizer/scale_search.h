// AWQ's scale search (../shared/docs/awq.md §5): per scale group, candidate per-input-channel scales from the
// activation statistic (and, for the duo formula, the weight statistic), each scored by the caller's loss,
// the lowest kept. Pure math over fp32 host arrays; any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quantizer/float_layer.h"
#include "quantizer/group_quantizer.h"

namespace nibble {

enum class ScaleFormula {
  kActivation,  // s = xmean^alpha (the paper; llm-awq)
  kDuo,         // s = xmean^alpha / (wmean^(1 - alpha) + 1e-4) (AutoAWQ's default)
};
enum class ScaleSearchMode { kActivation, kDuo, kBoth };
absl::string_view ScaleFormulaName(ScaleFormula formula);                      // "act", "duo"
absl::string_view ScaleSearchModeName(ScaleSearchMode mode);                   // "act", "duo", "both"
absl::StatusOr<ScaleSearchMode> ParseScaleSearchMode(absl::string_view name);  // the inverse

inline constexpr int kScaleGridSize = 20;  // alpha = i / 20, i = 0..19

// xmean[c] = mean over the rows of x [rows, in] of |x[r, c]|, accumulated in fp32 (awq.md §5).
std::vector<float> ActivationMean(std::span<const float> x, int64_t in_features);
// wmean[c] = mean over the rows of all `layers` (which share their input) of |W[r, c]| divided by the
// largest |W| of that row's group, plus 1e-6 in the divisor.
std::vector<float> WeightMean(std::span<const FloatLinear* const> layers, int group_size);
// One candidate: the formula at `alpha`, then s = max(s, 1e-4), s /= sqrt(max(s) * min(s)), non-finite
// entries set to 1.
std::vector<float> CandidateScales(std::span<const float> xmean, std::span<const float> wmean, ScaleFormula formula,
                                   double alpha);

// `linear` with its input columns multiplied by `scales`, fake-quantized, and divided back: what the scaled
// layer computes once quantized, in the unscaled input space.
FloatLinear ScaledFakeQuantized(const FloatLinear& linear, std::span<const float> scales, const QuantSpec& spec);

struct ScaleChoice {
  std::vector<float> scales;
  ScaleFormula formula = ScaleFormula::kActivation;
  double alpha = 0;
  double loss = 0;            // of the winner
  double loss_at_alpha0 = 0;  // the first candidate tried (act at alpha 0 is plain RTN of the group)
};

// Tries the 20 (one formula) or 40 (both) candidates in order and keeps the one with the lowest finite loss
// (the earlier one on ties). FailedPrecondition naming `what` (block and layers) when no loss is finite.
using ScaleLoss = std::function<absl::StatusOr<double>(const std::vector<float>& scales)>;
absl::StatusOr<ScaleChoice> SearchScales(std::span<const float> xmean, std::span<const float> wmean,
                                         ScaleSearchMode mode, const ScaleLoss& loss, absl::string_view what);

// Mean squared difference of two equally long arrays, in double.
double MeanSquaredError(std::span<const float> a, std::span<const float> b);

}  // namespace nibble
