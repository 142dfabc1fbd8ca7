#include "service/inference_server/inference_service.h"

#include <chrono>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/base/quote.h"
#include "service/common/grpc_status.h"
#include "service/inference_server/generate_stream.h"
#include "service/inference_server/request_translation.h"
#include "spdlog/spdlog.h"

namespace nibble::server {
namespace {

constexpr size_t kMaxRequestIdLength = 128;

// The RPC's deadline on the steady clock; nullopt when the client set none.
std::optional<std::chrono::steady_clock::time_point> DeadlineOf(const grpc::CallbackServerContext& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return std::nullopt;
  const auto left = deadline - std::chrono::system_clock::now();
  if (left > std::chrono::hours(24 * 365)) return std::nullopt;  // "infinite" as a far date
  return std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
}

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace

InferenceService::InferenceService(ModelManager& manager, const service::TokenCheck& token_check,
                                   const AdminCheck& admin_check, std::shared_ptr<ServerMetrics> metrics,
                                   StreamWatchdog& watchdog, PromptWorkers& prompt_workers, size_t inline_prompt_bytes)
    : manager_(manager),
      token_check_(token_check),
      admin_check_(admin_check),
      metrics_(std::move(metrics)),
      watchdog_(watchdog),
      prompt_workers_(prompt_workers),
      inline_prompt_bytes_(inline_prompt_bytes) {}

std::string InferenceService::RequestId(const v1::GenerateRequest& request) {
  const std::string& given = request.request_id();
  const bool usable = !given.empty() && given.size() <= kMaxRequestIdLength &&
                      std::all_of(given.begin(), given.end(), [](char c) { return absl::ascii_isgraph(c); });
  return usable ? given : absl::StrCat("req-", next_request_.fetch_add(1));
}

uint64_t InferenceService::RandomSeed() {
  std::lock_guard lock(seed_mutex_);
  return seeds_();
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(grpc::CallbackServerContext* context,
                                                                           const v1::GenerateRequest* request) {
  std::shared_ptr<GenerateStream> stream = GenerateStream::Create(RequestId(*request), metrics_, context);
  const std::string id = stream->request_id();
  if (grpc::Status allowed = token_check_.Check(*context); !allowed.ok()) {
    stream->Refuse(allowed);
    return stream.get();
  }
  absl::StatusOr<GenerationRequest> translated = ToGenerationRequest(*request, id, DeadlineOf(*context), RandomSeed());
  if (!translated.ok()) {
    stream->Refuse(service::ToGrpcStatus(translated.status()));
    return stream.get();
  }
  if (translated->prompt.size() <= inline_prompt_bytes_) {
    Submit(stream, request->model(), request->version(), *std::move(translated));
    return stream.get();
  }
  const bool posted = prompt_workers_.TryPost(
      [this, stream, model = request->model(), version = request->version(),
       generation = *std::move(translated)]() mutable { Submit(stream, model, version, std::move(generation)); });
  if (!posted) {
    stream->Refuse(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("request ", id, ": ", prompt_workers_.max_pending(),
                     " long prompts are already waiting to be tokenized, the limit (--max-pending-prompts)")));
  }
  return stream.get();
}

void InferenceService::Submit(const std::shared_ptr<GenerateStream>& stream, const std::string& model, uint64_t version,
                              GenerationRequest request) {
  if (stream->Cancelled()) {  // gone while its prompt waited for a worker: not worth tokenizing
    stream->Refuse(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled before its prompt was tokenized"));
    return;
  }
  auto submitted = manager_.Submit(model, version, std::move(request), stream);
  if (!submitted.ok()) {
    stream->Refuse(service::ToGrpcStatus(submitted.status()));
    return;
  }
  stream->Begin(submitted->first, submitted->second->label());
  watchdog_.Watch(stream);
}

grpc::ServerUnaryReactor* InferenceService::ListModels(grpc::CallbackServerContext* context,
                                                       const v1::ListModelsRequest*, v1::ListModelsResponse* response) {
  if (grpc::Status allowed = token_check_.Check(*context); !allowed.ok()) return FinishUnary(context, allowed);
  for (const ModelInfo& info : manager_.List()) *response->add_models() = ToProto(info);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::LoadModel(grpc::CallbackServerContext* context,
                                                      const v1::LoadModelRequest* request,
                                                      v1::LoadModelResponse* response) {
  if (grpc::Status allowed = admin_check_.Check(*context); !allowed.ok()) return FinishUnary(context, allowed);
  spdlog::info("LoadModel {} version {}", QuotedPrefix(request->model()), request->version());
  absl::StatusOr<ModelInfo> info = manager_.Load(request->model(), request->version());
  if (!info.ok()) return FinishUnary(context, service::ToGrpcStatus(info.status()));
  *response->mutable_model() = ToProto(*info);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::UnloadModel(grpc::CallbackServerContext* context,
                                                        const v1::UnloadModelRequest* request,
                                                        v1::UnloadModelResponse*) {
  if (grpc::Status allowed = admin_check_.Check(*context); !allowed.ok()) return FinishUnary(context, allowed);
  spdlog::info("UnloadModel {}", QuotedPrefix(request->model()));
  return FinishUnary(context, service::ToGrpcStatus(manager_.Unload(request->model())));
}

}  // namespace nibble::server
