#include "engine/serving/generation_state.h"

#include <algorithm>

namespace nibble {

GenerationState::GenerationState(PreparedRequest request, const Tokenizer* tokenizer)
    : prepared_(std::move(request)), tokens_(prepared_.prompt), stop_filter_(prepared_.request.stop) {
  if (tokenizer != nullptr) {
    streamer_.emplace(*tokenizer, prepared_.continues_text ? StreamStart::kContinuesText : StreamStart::kStartsText);
  }
}

SamplingRequest GenerationState::sampling_request() const {
  const std::span<const int32_t> tokens(tokens_);
  return SamplingRequest{&prepared_.request.sampling, static_cast<uint64_t>(num_generated()),
                         tokens.first(static_cast<size_t>(prompt_size())),
                         tokens.subspan(static_cast<size_t>(prompt_size()))};
}

std::optional<FinishReason> GenerationState::Add(const SampledToken& sampled, GenerationEvent& event) {
  const std::vector<int32_t>& stop_ids = prepared_.stop_token_ids;
  if (std::find(stop_ids.begin(), stop_ids.end(), sampled.token) != stop_ids.end()) {
    FlushText(event);
    return FinishReason::kStop;
  }
  tokens_.push_back(sampled.token);
  event.token_ids.push_back(sampled.token);
  if (prepared_.request.sampling.num_logprobs > 0) event.logprobs.push_back(sampled);
  if (streamer_) {
    StopStringFilter::Output output = stop_filter_.Push(streamer_->Push(sampled.token));
    event.text += output.text;
    if (output.stopped) return FinishReason::kStop;
  }
  if (num_generated() >= prepared_.max_tokens) {
    FlushText(event);
    return FinishReason::kLength;
  }
  return std::nullopt;
}

void GenerationState::FlushText(GenerationEvent& event) {
  if (!streamer_) return;
  StopStringFilter::Output output = stop_filter_.Push(streamer_->Finish());
  event.text += output.text;
  if (!output.stopped) event.text += stop_filter_.Finish();
}

}  // namespace nibble
