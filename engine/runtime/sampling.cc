#include "engine/runtime/sampling.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace nibble {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// log-softmax of every logit: logit - max - log(sum(exp(logit - max))).
std::vector<float> LogSoftmax(std::span<const float> logits) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float logit : logits) sum += std::exp(static_cast<double>(logit - max));
  const float log_sum = static_cast<float>(std::log(sum));
  std::vector<float> result(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) result[i] = logits[i] - max - log_sum;
  return result;
}

void ApplyPenalties(std::span<float> logits, const SamplingRequest& request) {
  const SamplingParams& p = *request.params;
  if (p.repetition_penalty != 1.0f) {
    auto penalise = [&](int32_t token) {
      float& logit = logits[static_cast<size_t>(token)];
      logit = logit > 0 ? logit / p.repetition_penalty : logit * p.repetition_penalty;
    };
    std::vector<bool> seen(logits.size(), false);
    for (auto tokens : {request.prompt_tokens, request.output_tokens}) {
      for (int32_t token : tokens) {
        if (token >= 0 && static_cast<size_t>(token) < logits.size() && !seen[token]) {
          seen[token] = true;
          penalise(token);
        }
      }
    }
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int32_t> counts;
    for (int32_t token : request.output_tokens) {
      if (token >= 0 && static_cast<size_t>(token) < logits.size()) ++counts[token];
    }
    for (const auto& [token, count] : counts) {
      logits[static_cast<size_t>(token)] -= p.presence_penalty + p.frequency_penalty * static_cast<float>(count);
    }
  }
}

int32_t Argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

}  // namespace

float CounterUniform(uint64_t seed, uint64_t step) {
  const uint64_t bits = SplitMix64(SplitMix64(seed) ^ step);
  return static_cast<float>(bits >> 40) * 0x1.0p-24f;  // top 24 bits: exact in a float, < 1
}

SampledToken SampleFromLogits(std::span<float> logits, const SamplingRequest& request) {
  const SamplingParams& p = *request.params;
  SampledToken result;
  // 1. Log-probabilities come from the raw distribution, before penalties and temperature.
  const std::vector<float> logprobs = LogSoftmax(logits);
  // 2. Penalties.
  ApplyPenalties(logits, request);

  if (p.temperature <= 0.0f) {
    // 3. Greedy.
    result.token = Argmax(logits);
  } else {
    // 4. Probabilities at this temperature and the cutoff value of the logits.
    const float max = *std::max_element(logits.begin(), logits.end());
    std::vector<float> probs(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) probs[i] = std::exp((logits[i] - max) / p.temperature);
    float cutoff = -std::numeric_limits<float>::infinity();
    if (p.top_k > 0 && static_cast<size_t>(p.top_k) < logits.size()) {
      std::vector<float> sorted(logits.begin(), logits.end());
      std::nth_element(sorted.begin(), sorted.begin() + (p.top_k - 1), sorted.end(), std::greater<float>());
      cutoff = sorted[static_cast<size_t>(p.top_k - 1)];
    }
    if (p.top_p < 1.0f) {
      // Kept so far, most likely first; the cutoff moves up to the last one needed to reach top_p.
      std::vector<size_t> kept;
      double total = 0.0;
      for (size_t i = 0; i < logits.size(); ++i) {
        if (logits[i] >= cutoff) {
          kept.push_back(i);
          total += probs[i];
        }
      }
      std::sort(kept.begin(), kept.end(), [&](size_t a, size_t b) { return logits[a] > logits[b]; });
      double cumulative = 0.0;
      for (size_t i : kept) {
        cumulative += probs[i];
        if (cumulative >= static_cast<double>(p.top_p) * total) {
          cutoff = std::max(cutoff, logits[i]);
          break;
        }
      }
    }
    if (p.min_p > 0.0f) cutoff = std::max(cutoff, max + p.temperature * std::log(p.min_p));

    // 5. Inverse CDF over the kept tokens in id order.
    double total = 0.0;
    int32_t last_kept = Argmax(logits);
    for (size_t i = 0; i < logits.size(); ++i) {
      if (logits[i] >= cutoff) total += probs[i];
    }
    const double target = static_cast<double>(CounterUniform(p.seed, request.step)) * total;
    double cumulative = 0.0;
    result.token = -1;
    for (size_t i = 0; i < logits.size() && result.token < 0; ++i) {
      if (logits[i] < cutoff) continue;
      cumulative += probs[i];
      last_kept = static_cast<int32_t>(i);
      if (target < cumulative) result.token = static_cast<int32_t>(i);
    }
    if (result.token < 0) result.token = last_kept;  // rounding left the target at the very end
  }

  result.logprob = logprobs[static_cast<size_t>(result.token)];
  if (p.num_logprobs > 0) {
    const size_t n = std::min(static_cast<size_t>(std::min(p.num_logprobs, kMaxLogprobs)), logits.size());
    std::vector<int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](int32_t a, int32_t b) {
      return logprobs[a] > logprobs[b] || (logprobs[a] == logprobs[b] && a < b);
    });
    for (size_t i = 0; i < n; ++i) result.top_logprobs.emplace_back(order[i], logprobs[order[i]]);
  }
  return result;
}

}  // namespace nibble
