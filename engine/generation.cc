#include "engine/generation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace nibble {

absl::StatusOr<GenerationResult> Generate(Model& model, std::span<const int32_t> prompt,
                                          const GenerationOptions& options,
                                          const std::function<bool(const SampledToken&)>& on_token) {
  const int32_t context = model.options().max_context;
  if (prompt.empty()) return absl::InvalidArgumentError("generate: the prompt has no tokens");
  if (static_cast<int64_t>(prompt.size()) >= context) {
    return absl::InvalidArgumentError(
        absl::StrCat("generate: the prompt has ", prompt.size(), " tokens; the context holds ", context));
  }
  KvSequence sequence(model.kv_pool());
  std::vector<int32_t> output;
  GenerationResult result;
  const std::vector<int32_t> prompt_tokens(prompt.begin(), prompt.end());

  // 1. Prefill the prompt in chunks; the last chunk yields the logits of the first new token.
  // 2. Decode: feed back each sampled token until a stop condition.
  std::vector<int32_t> pending(prompt.begin(), prompt.end());
  int32_t position = 0;
  while (static_cast<int32_t>(output.size()) < options.max_tokens) {
    const int32_t chunk = std::min<int32_t>(static_cast<int32_t>(pending.size()), model.options().max_step_tokens);
    const bool last_chunk = chunk == static_cast<int32_t>(pending.size());
    NIBBLE_RETURN_IF_ERROR(sequence.Reserve(position + chunk));
    StepBatch step;
    step.AddSequence(std::span(pending).first(static_cast<size_t>(chunk)), position, sequence.blocks(),
                     last_chunk ? StepBatch::Logits::kLast : StepBatch::Logits::kNone);
    position += chunk;
    if (!last_chunk) {
      NIBBLE_RETURN_IF_ERROR(model.Forward(step).status());
      pending.erase(pending.begin(), pending.begin() + chunk);
      continue;
    }
    const SamplingRequest request{&options.sampling, static_cast<uint64_t>(output.size()), prompt_tokens, output};
    NIBBLE_ASSIGN_OR_RETURN(std::vector<SampledToken> sampled, model.ForwardAndSample(step, {&request, 1}));
    const SampledToken& token = sampled.front();
    if (std::find(options.stop_token_ids.begin(), options.stop_token_ids.end(), token.token) !=
        options.stop_token_ids.end()) {
      result.finish_reason = FinishReason::kStop;
      break;
    }
    output.push_back(token.token);
    if (on_token && !on_token(token)) {
      result.finish_reason = FinishReason::kCancelled;
      break;
    }
    if (position >= context) break;  // no slot left for the token just sampled: finish by length
    pending.assign(1, token.token);
  }
  result.tokens = std::move(output);
  return result;
}

}  // namespace nibble
