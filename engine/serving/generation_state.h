// One request's generation: its tokens (prompt, then output) and the one place where its output is
// decided. The scheduler keeps one per request (offline Generate runs through the scheduler too), so stop
// conditions and sampling-request construction exist once:
//   - sampling_request(): the SamplingRequest for its next token (its params, step, prompt and output);
//   - Add(token): stop token ids (EOS included unless ignore_eos: finish kStop, the token is not sent),
//     stop strings (kStop; text cut before the stop string, which may span tokens: text that could begin
//     one is held back until it cannot), max_tokens (kLength; the context limit is folded into max_tokens
//     by PrepareRequest), and the event carrying the token, its UTF-8-safe text delta and its logprobs.
//
// Not thread-safe (the engine thread). Keeps a pointer to the tokenizer, which must outlive it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/runtime/sampling.h"
#include "engine/serving/generation_request.h"
#include "engine/serving/stop_strings.h"
#include "engine/tokenizer/text_streamer.h"

namespace nibble {

class GenerationState {
 public:
  // `tokenizer` may be null (then events carry no text; PrepareRequest refuses stop strings without one).
  GenerationState(PreparedRequest request, const Tokenizer* tokenizer);
  GenerationState(const GenerationState&) = delete;
  GenerationState& operator=(const GenerationState&) = delete;

  const PreparedRequest& prepared() const { return prepared_; }
  const std::string& id() const { return prepared_.request.id; }
  // The prompt, then every generated token sent so far: what the KV cache must hold.
  std::span<const int32_t> tokens() const { return tokens_; }
  int32_t prompt_size() const { return static_cast<int32_t>(prepared_.prompt.size()); }
  int32_t num_generated() const { return static_cast<int32_t>(tokens_.size()) - prompt_size(); }

  // The sampling request for the next token; its views are valid until the next Add.
  SamplingRequest sampling_request() const;

  // Takes the token sampled for this request and appends what it produces to `event` (token id, text
  // delta, logprobs). Returns the finish reason when the request is done; then `event` also holds the rest
  // of the text (flushed) unless a stop string ended it.
  std::optional<FinishReason> Add(const SampledToken& sampled, GenerationEvent& event);

 private:
  // Text of the streamer and the stop-string filter at a finish other than a stop string.
  void FlushText(GenerationEvent& event);

  PreparedRequest prepared_;
  std::vector<int32_t> tokens_;
  std::optional<TextStreamer> streamer_;  // absent without a tokenizer
  StopStringFilter stop_filter_;
};

}  // namespace nibble
