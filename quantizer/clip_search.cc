#include "quantizer/clip_search.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

namespace nibble {

ClipResult ClipWeights(FloatLinear& linear, std::span<const float> x, const QuantSpec& spec, ThreadPool& pool) {
  const int64_t in = linear.in_features;
  const int64_t tokens = static_cast<int64_t>(x.size()) / in;
  // Sample tokens evenly: stride max(1, n / 512).
  const int64_t stride = std::max<int64_t>(1, tokens / kClipSampleTokens);
  std::vector<int64_t> sampled;
  for (int64_t t = 0; t < tokens && static_cast<int64_t>(sampled.size()) < kClipSampleTokens; t += stride) {
    sampled.push_back(t);
  }
  const int64_t groups = spec.GroupsPerRow(in);
  std::vector<double> row_error(static_cast<size_t>(linear.out_features), 0.0);
  std::vector<int64_t> row_clipped(static_cast<size_t>(linear.out_features), 0);

  pool.ParallelFor(linear.out_features, 4, [&](int64_t row_begin, int64_t row_end) {
    std::vector<float> reference(sampled.size());
    std::vector<float> candidate(static_cast<size_t>(spec.group_size));
    for (int64_t row = row_begin; row < row_end; ++row) {
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t begin = g * spec.group_size;
        const int64_t length = std::min<int64_t>(spec.group_size, in - begin);
        float* w = linear.weight.data() + row * in + begin;
        // The group's partial dot product with every sampled token, at full precision.
        for (size_t s = 0; s < sampled.size(); ++s) {
          const float* xs = x.data() + sampled[s] * in + begin;
          float dot = 0.0f;
          for (int64_t k = 0; k < length; ++k) dot += xs[k] * w[k];
          reference[s] = dot;
        }
        float max_abs = 0.0f;
        for (int64_t k = 0; k < length; ++k) max_abs = std::max(max_abs, std::abs(w[k]));
        double best_error = std::numeric_limits<double>::infinity();
        float best_threshold = max_abs;
        for (int i = 0; i < kClipSteps; ++i) {
          const float threshold = max_abs * (1.0f - static_cast<float>(i) / kClipGridSize);
          for (int64_t k = 0; k < length; ++k)
            candidate[static_cast<size_t>(k)] = std::clamp(w[k], -threshold, threshold);
          FakeQuantizeGroup(std::span<float>(candidate.data(), static_cast<size_t>(length)), spec);
          double error = 0.0;
          for (size_t s = 0; s < sampled.size(); ++s) {
            const float* xs = x.data() + sampled[s] * in + begin;
            float dot = 0.0f;
            for (int64_t k = 0; k < length; ++k) dot += xs[k] * candidate[static_cast<size_t>(k)];
            const double d = static_cast<double>(dot) - reference[s];
            error += d * d;
          }
          error /= static_cast<double>(sampled.size());
          if (error < best_error) {
            best_error = error;
            best_threshold = threshold;
          }
        }
        for (int64_t k = 0; k < length; ++k) w[k] = std::clamp(w[k], -best_threshold, best_threshold);
        row_error[static_cast<size_t>(row)] += best_error;
        if (best_threshold < max_abs) ++row_clipped[static_cast<size_t>(row)];
      }
    }
  });
  ClipResult result;
  for (size_t r = 0; r < row_error.size(); ++r) {
    result.mean_error += row_error[r];
    result.clipped_groups += row_clipped[r];
  }
  result.mean_error /= static_cast<double>(linear.out_features * groups);
  return result;
}

}  // namespace nibble
