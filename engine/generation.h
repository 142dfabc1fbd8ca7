// Offline generation for one prompt: prefill (in chunks of the model's step size), then decode one token
// at a time until a stop token, max_tokens, the end of the context, or the callback says stop. The server
// uses the continuous-batching scheduler instead; this is for `nibble generate --model` and tests.
//
// Runs on the calling thread, which must own the model for the duration (see model.h).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model.h"
#include "engine/sampling.h"

namespace nibble {

struct GenerationOptions {
  int32_t max_tokens = 256;
  SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;  // generation ends after emitting one of these (not passed on)
};

enum class FinishReason { kStop, kLength, kCancelled };

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated tokens, stop token excluded
  FinishReason finish_reason = FinishReason::kLength;
};

// `prompt` must be non-empty (BOS included where the model wants it). `on_token` is called with each
// generated token before the next step; returning false cancels.
absl::StatusOr<GenerationResult> Generate(Model& model, std::span<const int32_t> prompt,
                                          const GenerationOptions& options,
                                          const std::function<bool(const SampledToken&)>& on_token = nullptr);

}  // namespace nibble
