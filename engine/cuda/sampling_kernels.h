// Sampling on the GPU, one block per logits row, exactly the algorithm of engine/runtime/sampling.h (value cutoffs,
// inverse CDF in token-id order, CounterUniform for the random number). Deterministic: every sum has a
// fixed order, so a seeded row gives the same token on every run.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace nibble::cuda {

inline constexpr int kMaxTopLogprobs = 20;

struct SamplingRow {  // uploaded per logits row
  float temperature;
  float top_p;
  float min_p;
  float repetition_penalty;
  float presence_penalty;
  float frequency_penalty;
  int top_k;
  int num_logprobs;
  unsigned long long seed;
  unsigned long long step;
  int penalty_begin;  // this row's entries in the penalty list: [penalty_begin, penalty_end)
  int penalty_end;
};

struct PenaltyEntry {  // one distinct token seen by the row's request
  int token;
  int output_count;  // occurrences among generated tokens
  int in_prompt;     // 1 if it occurs in the prompt
};

struct SampledRow {
  int token;
  float logprob;
  int top_tokens[kMaxTopLogprobs];
  float top_logprobs[kMaxTopLogprobs];
};

// logits fp32 [rows, vocab] (read only); work fp32 [rows, vocab] scratch; out [rows].
absl::Status LaunchSample(const float* logits, float* work, int rows, int vocab, const SamplingRow* params,
                          const PenaltyEntry* penalties, SampledRow* out, cudaStream_t stream);

}  // namespace nibble::cuda
