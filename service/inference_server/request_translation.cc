#include "service/inference_server/request_translation.h"

#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace nibble::server {
namespace {

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kError:
      return v1::FINISH_REASON_ERROR;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

v1::ModelState ToProto(VersionState state) {
  switch (state) {
    case VersionState::kLoading:
      return v1::MODEL_STATE_LOADING;
    case VersionState::kAvailable:
      return v1::MODEL_STATE_AVAILABLE;
    case VersionState::kUnloading:
      return v1::MODEL_STATE_UNLOADING;
    case VersionState::kFailed:
      return v1::MODEL_STATE_FAILED;
  }
  return v1::MODEL_STATE_UNSPECIFIED;
}

}  // namespace

absl::StatusOr<GenerationRequest> ToGenerationRequest(const v1::GenerateRequest& proto, std::string id,
                                                      std::optional<std::chrono::steady_clock::time_point> deadline,
                                                      uint64_t default_seed) {
  GenerationRequest request;
  request.id = std::move(id);
  if (proto.has_token_ids()) {
    request.prompt_token_ids.assign(proto.token_ids().ids().begin(), proto.token_ids().ids().end());
  } else {
    request.prompt = proto.text();
  }
  if (proto.max_tokens() > static_cast<uint32_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("request ", request.id, ": max_tokens must be positive and at most ",
                                                   std::numeric_limits<int32_t>::max(), ", got ", proto.max_tokens()));
  }
  request.max_tokens = static_cast<int32_t>(proto.max_tokens());  // 0 is refused by the engine, naming the field

  const v1::SamplingParameters& in = proto.sampling();
  SamplingParams& out = request.sampling;
  if (in.has_temperature()) out.temperature = in.temperature();
  if (in.has_top_k()) out.top_k = in.top_k();
  if (in.has_top_p()) out.top_p = in.top_p();
  if (in.has_min_p()) out.min_p = in.min_p();
  if (in.has_repetition_penalty()) out.repetition_penalty = in.repetition_penalty();
  if (in.has_presence_penalty()) out.presence_penalty = in.presence_penalty();
  if (in.has_frequency_penalty()) out.frequency_penalty = in.frequency_penalty();
  out.seed = in.has_seed() ? in.seed() : default_seed;
  if (proto.logprobs() > static_cast<uint32_t>(kMaxLogprobs)) {
    return absl::InvalidArgumentError(
        absl::StrCat("request ", request.id, ": logprobs must be in [0, ", kMaxLogprobs, "], got ", proto.logprobs()));
  }
  out.num_logprobs = static_cast<int32_t>(proto.logprobs());

  request.stop.assign(proto.stop().begin(), proto.stop().end());
  request.stop_token_ids.assign(proto.stop_token_ids().begin(), proto.stop_token_ids().end());
  request.ignore_eos = proto.ignore_eos();
  request.deadline = deadline;
  return request;
}

void AppendToChunk(const GenerationEvent& event, v1::TokenChunk& chunk) {
  for (int32_t id : event.token_ids) chunk.add_token_ids(id);
  chunk.mutable_text()->append(event.text);
  for (const SampledToken& sampled : event.logprobs) {
    v1::TokenLogprob* logprob = chunk.add_logprobs();
    logprob->set_token_id(sampled.token);
    logprob->set_logprob(sampled.logprob);
    for (const auto& [token, value] : sampled.top_logprobs) {
      v1::TopLogprob* top = logprob->add_top();
      top->set_token_id(token);
      top->set_logprob(value);
    }
  }
}

v1::Final ToFinal(const GenerationFinish& finish, const ModelLabel& model) {
  v1::Final final;
  final.set_finish_reason(ToProto(finish.reason));
  v1::Usage* usage = final.mutable_usage();
  usage->set_prompt_tokens(static_cast<uint32_t>(finish.usage.prompt_tokens));
  usage->set_completion_tokens(static_cast<uint32_t>(finish.usage.completion_tokens));
  usage->set_time_to_first_token_seconds(finish.usage.time_to_first_token_seconds.value_or(0.0));
  usage->set_queue_seconds(finish.usage.queue_seconds);
  usage->set_total_seconds(finish.usage.total_seconds);
  final.set_model(model.name);
  uint64_t version = 0;
  if (absl::SimpleAtoi(model.version, &version)) final.set_version(version);
  if (!finish.status.ok()) final.set_error(std::string(finish.status.message()));
  return final;
}

v1::ModelInfo ToProto(const ModelInfo& info) {
  v1::ModelInfo out;
  out.set_name(info.name);
  out.set_serving_version(info.serving_version);
  out.set_pinned(info.pinned);
  out.set_quantization(info.quantization);
  out.set_context_length(static_cast<uint32_t>(info.context_length));
  for (const VersionInfo& version : info.versions) {
    v1::ModelVersion* v = out.add_versions();
    v->set_version(version.version);
    v->set_state(ToProto(version.state));
    v->set_error(version.error);
    v->set_weight_bytes(version.weight_bytes);
    v->set_active_requests(static_cast<uint32_t>(version.active_requests));
  }
  return out;
}

}  // namespace nibble::server
