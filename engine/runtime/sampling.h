// Turning logits into the next token: penalties, temperature, top-k, top-p, min-p, seeded randomness,
// and log-probabilities.
//
// The algorithm, defined once here and implemented by SampleFromLogits (the CPU backend) and by the CUDA
// backend's sampling kernel alike:
//   1. logprobs come from the raw logits (log-softmax before penalties and temperature);
//   2. penalties adjust the logits w of seen tokens;
//   3. temperature 0: the argmax of w (lowest id on ties);
//   4. otherwise p_i = exp((w_i - max w) / T) and a cutoff value c is the largest of:
//        top-k: the k-th largest w;  top-p: the largest v such that the tokens with w >= v (among those
//        top-k keeps) hold at least top_p of their probability;  min-p: max w + T ln(min_p);
//      every token with w >= c is kept (ties at the cutoff are all kept);
//   5. with u = CounterUniform(seed, step), the token is where the running sum of kept p, in token-id order,
//      first exceeds u times their total.
// Sorting is never needed, and a seeded request repeats exactly on one backend. Pure functions: thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace nibble {

struct SamplingParams {
  float temperature = 1.0f;         // 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 0;                // keep the k most likely tokens; 0: all
  float top_p = 1.0f;               // keep the smallest set whose probability reaches top_p; (0, 1]
  float min_p = 0.0f;               // drop tokens below min_p * (probability of the most likely); [0, 1]
  float repetition_penalty = 1.0f;  // > 0; divides positive / multiplies negative logits of seen tokens
  float presence_penalty = 0.0f;    // subtracted once from the logit of every generated token
  float frequency_penalty = 0.0f;   // subtracted per occurrence among generated tokens
  uint64_t seed = 0;
  int32_t num_logprobs = 0;  // most likely alternatives to report with each token (0..kMaxLogprobs)
};
inline constexpr int32_t kMaxLogprobs = 20;

struct SamplingRequest {
  const SamplingParams* params = nullptr;
  uint64_t step = 0;                       // tokens this sequence has sampled so far (the RNG counter)
  std::span<const int32_t> prompt_tokens;  // for the repetition penalty
  std::span<const int32_t> output_tokens;  // for all three penalties
};

struct SampledToken {
  int32_t token = -1;
  float logprob = 0.0f;  // log-softmax of the raw logits (before penalties and temperature)
  std::vector<std::pair<int32_t, float>> top_logprobs;  // num_logprobs most likely (token, logprob)
};

// A uniform number in [0, 1) from a counter-based generator (splitmix64 of seed and step).
float CounterUniform(uint64_t seed, uint64_t step);

// Samples one token from `logits` (fp32 [vocab], modified in place by penalties and temperature).
SampledToken SampleFromLogits(std::span<float> logits, const SamplingRequest& request);

}  // namespace nibble
