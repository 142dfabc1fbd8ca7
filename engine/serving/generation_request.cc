#include "engine/serving/generation_request.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/base/utf8.h"
#include "engine/tokenizer/tokenizer.h"

namespace nibble {
namespace {

// Builds "request <id>: <field> <problem>" errors.
class FieldErrors {
 public:
  explicit FieldErrors(absl::string_view id) : id_(id) {}
  template <typename... Parts>
  absl::Status operator()(absl::string_view field, const Parts&... parts) const {
    return absl::InvalidArgumentError(absl::StrCat("request ", id_, ": ", field, " ", parts...));
  }

 private:
  absl::string_view id_;
};

bool InVocabulary(int32_t id, const RequestLimits& limits) { return id >= 0 && id < limits.vocab_size; }

absl::Status CheckSampling(const SamplingParams& p, const FieldErrors& error) {
  // Written as "not (valid)" so that NaN is refused too.
  if (!(p.temperature >= 0.0f) || std::isinf(p.temperature)) {
    return error("temperature", "must be a finite number >= 0, got ", p.temperature);
  }
  if (p.top_k < 0) return error("top_k", "must be >= 0 (0: no limit), got ", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return error("top_p", "must be in (0, 1], got ", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return error("min_p", "must be in [0, 1], got ", p.min_p);
  if (!(p.repetition_penalty > 0.0f) || std::isinf(p.repetition_penalty)) {
    return error("repetition_penalty", "must be a finite number > 0, got ", p.repetition_penalty);
  }
  if (!(p.presence_penalty >= -kMaxPenalty && p.presence_penalty <= kMaxPenalty)) {
    return error("presence_penalty", "must be in [", -kMaxPenalty, ", ", kMaxPenalty, "], got ", p.presence_penalty);
  }
  if (!(p.frequency_penalty >= -kMaxPenalty && p.frequency_penalty <= kMaxPenalty)) {
    return error("frequency_penalty", "must be in [", -kMaxPenalty, ", ", kMaxPenalty, "], got ", p.frequency_penalty);
  }
  if (p.num_logprobs < 0 || p.num_logprobs > kMaxLogprobs) {
    return error("logprobs", "must be in [0, ", kMaxLogprobs, "], got ", p.num_logprobs);
  }
  return absl::OkStatus();
}

absl::Status CheckStops(const GenerationRequest& request, const RequestLimits& limits, const Tokenizer* tokenizer,
                        const FieldErrors& error) {
  if (request.stop.size() > static_cast<size_t>(kMaxStopStrings)) {
    return error("stop", "has ", request.stop.size(), " strings; at most ", kMaxStopStrings, " are allowed");
  }
  if (!request.stop.empty() && tokenizer == nullptr) {
    return error("stop", "needs text, and this model has no tokenizer");
  }
  for (size_t i = 0; i < request.stop.size(); ++i) {
    const std::string field = absl::StrCat("stop[", i, "]");
    if (request.stop[i].empty()) return error(field, "is empty");
    if (request.stop[i].size() > kMaxStopStringBytes) {
      return error(field, "has ", request.stop[i].size(), " bytes; at most ", kMaxStopStringBytes, " are allowed");
    }
    if (!IsValidUtf8(request.stop[i])) return error(field, "is not valid UTF-8");
  }
  if (request.stop_token_ids.size() > kMaxStopTokenIds) {
    return error("stop_token_ids", "has ", request.stop_token_ids.size(), " ids; at most ", kMaxStopTokenIds,
                 " are allowed");
  }
  for (size_t i = 0; i < request.stop_token_ids.size(); ++i) {
    if (!InVocabulary(request.stop_token_ids[i], limits)) {
      return error(absl::StrCat("stop_token_ids[", i, "]"), "= ", request.stop_token_ids[i],
                   " is outside the vocabulary of ", limits.vocab_size, " tokens");
    }
  }
  return absl::OkStatus();
}

// Exactly one of text and token ids, the ids in the vocabulary, text that a tokenizer could encode.
absl::Status CheckPromptShape(const GenerationRequest& request, const RequestLimits& limits, const Tokenizer* tokenizer,
                              const FieldErrors& error) {
  const bool has_text = !request.prompt.empty();
  const bool has_ids = !request.prompt_token_ids.empty();
  if (has_text && has_ids) return error("prompt", "and prompt_token_ids are both set; send one of them");
  if (!has_text && !has_ids) return error("prompt", "is empty");
  for (size_t i = 0; i < request.prompt_token_ids.size(); ++i) {
    if (!InVocabulary(request.prompt_token_ids[i], limits)) {
      return error(absl::StrCat("prompt_token_ids[", i, "]"), "= ", request.prompt_token_ids[i],
                   " is outside the vocabulary of ", limits.vocab_size, " tokens");
    }
  }
  if (has_text && tokenizer == nullptr) {
    return error("prompt", "is text, and this model has no tokenizer; send prompt_token_ids");
  }
  return absl::OkStatus();
}

// A text prompt longer than `room` tokens can stand for cannot fit: refused before it is encoded.
absl::Status CheckPromptBytes(const GenerationRequest& request, int32_t room, const Tokenizer* tokenizer,
                              const FieldErrors& error) {
  if (request.prompt.empty()) return absl::OkStatus();
  const int64_t max_bytes = static_cast<int64_t>(room) * tokenizer->max_token_bytes();
  if (static_cast<int64_t>(request.prompt.size()) > max_bytes) {
    return error("prompt", "has ", request.prompt.size(), " bytes, more than the ", room,
                 " tokens of room in this model can hold (at most ", max_bytes,
                 " bytes: ", tokenizer->max_token_bytes(), " per token)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> PromptTokens(const GenerationRequest& request, const Tokenizer* tokenizer,
                                                  const FieldErrors& error) {
  if (!request.prompt_token_ids.empty()) return request.prompt_token_ids;
  absl::StatusOr<std::vector<int32_t>> encoded = tokenizer->Encode(request.prompt);
  if (!encoded.ok()) {
    return absl::Status(encoded.status().code(),
                        absl::StrCat("request ", request.id, ": ", encoded.status().message()));
  }
  std::vector<int32_t> tokens;
  if (request.add_bos && tokenizer->bos_id() >= 0) tokens.push_back(tokenizer->bos_id());
  tokens.insert(tokens.end(), encoded->begin(), encoded->end());
  if (tokens.empty()) return error("prompt", "encodes to no tokens");
  return tokens;
}

}  // namespace

absl::StatusOr<PreparedRequest> PrepareRequest(GenerationRequest request, const RequestLimits& limits,
                                               const Tokenizer* tokenizer) {
  const FieldErrors error(request.id);
  // The sequence (prompt + output) must fit in the context, and in the KV cache on its own.
  const int32_t room = std::min(limits.max_context, limits.kv_capacity);
  NIBBLE_RETURN_IF_ERROR(CheckPromptShape(request, limits, tokenizer, error));
  NIBBLE_RETURN_IF_ERROR(CheckSampling(request.sampling, error));
  NIBBLE_RETURN_IF_ERROR(CheckStops(request, limits, tokenizer, error));
  NIBBLE_RETURN_IF_ERROR(CheckPromptBytes(request, room, tokenizer, error));

  PreparedRequest prepared;
  NIBBLE_ASSIGN_OR_RETURN(prepared.prompt, PromptTokens(request, tokenizer, error));
  const int32_t prompt_size = static_cast<int32_t>(prepared.prompt.size());
  if (prompt_size >= room) {
    return error("prompt", "has ", prompt_size, " tokens, which leaves no room to generate in ",
                 limits.max_context <= limits.kv_capacity ? "the model's context of " : "the KV cache of ", room,
                 " tokens");
  }
  if (request.max_tokens.has_value()) {
    const int32_t max_tokens = *request.max_tokens;
    if (max_tokens <= 0) return error("max_tokens", "must be positive, got ", max_tokens);
    if (static_cast<int64_t>(prompt_size) + max_tokens > limits.max_context) {
      return error("max_tokens", "= ", max_tokens, " with a prompt of ", prompt_size,
                   " tokens exceeds the model's context of ", limits.max_context, " tokens");
    }
    if (static_cast<int64_t>(prompt_size) + max_tokens > limits.kv_capacity) {
      return error("max_tokens", "= ", max_tokens, " with a prompt of ", prompt_size,
                   " tokens exceeds the KV cache of ", limits.kv_capacity, " tokens");
    }
    prepared.max_tokens = max_tokens;
  } else {
    prepared.max_tokens = room - prompt_size;
  }

  prepared.stop_token_ids = request.stop_token_ids;
  if (!request.ignore_eos) {
    prepared.stop_token_ids.insert(prepared.stop_token_ids.end(), limits.eos_token_ids.begin(),
                                   limits.eos_token_ids.end());
  }
  prepared.continues_text = tokenizer != nullptr && !tokenizer->Decode(prepared.prompt).empty();
  prepared.request = std::move(request);
  return prepared;
}

absl::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "error";
}

}  // namespace nibble
