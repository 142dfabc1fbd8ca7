#include "quantizer/scale_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble {

absl::string_view ScaleFormulaName(ScaleFormula formula) {
  return formula == ScaleFormula::kActivation ? "act" : "duo";
}

absl::string_view ScaleSearchModeName(ScaleSearchMode mode) {
  switch (mode) {
    case ScaleSearchMode::kActivation:
      return "act";
    case ScaleSearchMode::kDuo:
      return "duo";
    case ScaleSearchMode::kBoth:
      return "both";
  }
  return "both";
}

absl::StatusOr<ScaleSearchMode> ParseScaleSearchMode(absl::string_view name) {
  if (name == "act") return ScaleSearchMode::kActivation;
  if (name == "duo") return ScaleSearchMode::kDuo;
  if (name == "both") return ScaleSearchMode::kBoth;
  return absl::InvalidArgumentError(absl::StrCat("scale search \"", name, "\" must be act, duo or both"));
}

std::vector<float> ActivationMean(std::span<const float> x, int64_t in_features) {
  const int64_t rows = static_cast<int64_t>(x.size()) / in_features;
  std::vector<float> sum(static_cast<size_t>(in_features), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < in_features; ++c)
      sum[static_cast<size_t>(c)] += std::abs(x[static_cast<size_t>(r * in_features + c)]);
  }
  for (float& value : sum) value /= static_cast<float>(rows);
  return sum;
}

std::vector<float> WeightMean(std::span<const FloatLinear* const> layers, int group_size) {
  const int64_t in = layers.front()->in_features;
  std::vector<float> sum(static_cast<size_t>(in), 0.0f);
  int64_t rows = 0;
  for (const FloatLinear* layer : layers) {
    for (int64_t r = 0; r < layer->out_features; ++r, ++rows) {
      const float* row = layer->weight.data() + r * in;
      for (int64_t begin = 0; begin < in; begin += group_size) {
        const int64_t end = std::min<int64_t>(in, begin + group_size);
        float group_max = 0.0f;
        for (int64_t c = begin; c < end; ++c) group_max = std::max(group_max, std::abs(row[c]));
        for (int64_t c = begin; c < end; ++c) sum[static_cast<size_t>(c)] += std::abs(row[c]) / (group_max + 1e-6f);
      }
    }
  }
  for (float& value : sum) value /= static_cast<float>(rows);
  return sum;
}

std::vector<float> CandidateScales(std::span<const float> xmean, std::span<const float> wmean, ScaleFormula formula,
                                   double alpha) {
  std::vector<float> scales(xmean.size());
  const float a = static_cast<float>(alpha);
  for (size_t c = 0; c < scales.size(); ++c) {
    float s = std::pow(xmean[c], a);
    if (formula == ScaleFormula::kDuo) s /= std::pow(wmean[c], 1.0f - a) + 1e-4f;
    scales[c] = std::max(s, 1e-4f);
  }
  const auto [min_it, max_it] = std::minmax_element(scales.begin(), scales.end());
  const float norm = std::sqrt(*max_it * *min_it);
  for (float& s : scales) {
    s /= norm;
    if (!std::isfinite(s)) s = 1.0f;
  }
  return scales;
}

FloatLinear ScaledFakeQuantized(const FloatLinear& linear, std::span<const float> scales, const QuantSpec& spec) {
  FloatLinear result = linear;
  const int64_t in = linear.in_features;
  for (int64_t r = 0; r < linear.out_features; ++r) {
    for (int64_t c = 0; c < in; ++c) result.at(r, c) *= scales[static_cast<size_t>(c)];
  }
  FakeQuantize(result.weight, linear.out_features, in, spec);
  for (int64_t r = 0; r < linear.out_features; ++r) {
    for (int64_t c = 0; c < in; ++c) result.at(r, c) /= scales[static_cast<size_t>(c)];
  }
  return result;
}

absl::StatusOr<ScaleChoice> SearchScales(std::span<const float> xmean, std::span<const float> wmean,
                                         ScaleSearchMode mode, const ScaleLoss& loss, absl::string_view what) {
  std::vector<ScaleFormula> formulas;
  if (mode != ScaleSearchMode::kDuo) formulas.push_back(ScaleFormula::kActivation);
  if (mode != ScaleSearchMode::kActivation) formulas.push_back(ScaleFormula::kDuo);
  ScaleChoice best;
  best.loss = std::numeric_limits<double>::infinity();
  bool first = true;
  for (ScaleFormula formula : formulas) {
    for (int i = 0; i < kScaleGridSize; ++i) {
      const double alpha = static_cast<double>(i) / kScaleGridSize;
      std::vector<float> scales = CandidateScales(xmean, wmean, formula, alpha);
      NIBBLE_ASSIGN_OR_RETURN(double value, loss(scales));
      if (first) best.loss_at_alpha0 = value;
      first = false;
      if (std::isfinite(value) && value < best.loss) {
        best.loss = value;
        best.scales = std::move(scales);
        best.formula = formula;
        best.alpha = alpha;
      }
    }
  }
  if (best.scales.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": no scale candidate gave a finite loss (NaN or infinite activations or weights)"));
  }
  return best;
}

double MeanSquaredError(std::span<const float> a, std::span<const float> b) {
  double sum = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    sum += d * d;
  }
  return a.empty() ? 0.0 : sum / static_cast<double>(a.size());
}

}  // namespace nibble
