// Offline generation for one request (`nibble generate --model`, tests): the server's Scheduler, run on the
// calling thread for a single request. Prompt handling, chunked prefill, sampling and every stop condition
// are the server's own (scheduler.h, generation_state.h); only the thread and the queue are missing.
//
// Runs on the calling thread, which must own the model for the duration (see model.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/runtime/model.h"
#include "engine/runtime/sampling.h"
#include "engine/serving/generation_request.h"

namespace nibble {

class Tokenizer;

struct GenerationResult {
  std::vector<int32_t> tokens;         // generated tokens (a stop token id excluded)
  std::string text;                    // their text (cut before a stop string); empty without a tokenizer
  std::vector<SampledToken> logprobs;  // one per token when the request asked for logprobs
  FinishReason finish_reason = FinishReason::kLength;
  Usage usage;
};

// Generates for `request` (validated by PrepareRequest: INVALID_ARGUMENT naming the field). `tokenizer` may
// be null: then the request needs prompt_token_ids and no stop strings, and no text is produced.
// `on_event` (optional) sees each event as it is produced; returning false cancels (kCancelled). A failed
// step is returned as its status (the request's final kError status).
absl::StatusOr<GenerationResult> Generate(Model& model, const Tokenizer* tokenizer, GenerationRequest request,
                                          const std::function<bool(const GenerationEvent&)>& on_event = nullptr);

}  // namespace nibble
