// nibble.v1.Inference over gRPC's callback API. Handlers only translate: check the token (the admin check for
// LoadModel and UnloadModel), turn the proto
// into engine types, call the model manager (and through it the serving engine), turn the result back.
//
// Threading: handlers run on gRPC's threads and never wait for the engine, except LoadModel, which returns
// once the model is loaded (it blocks its gRPC thread meanwhile). A Generate whose text prompt is longer than
// `inline_prompt_bytes` is submitted (and so tokenized) on the PromptWorkers instead; when they are full it is
// RESOURCE_EXHAUSTED at once. The manager, the checks, the watchdog and the workers must outlive the service.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>

#include "nibble/v1/inference.grpc.pb.h"
#include "service/common/security.h"
#include "service/inference_server/admin_check.h"
#include "service/inference_server/generate_stream.h"
#include "service/inference_server/metrics.h"
#include "service/inference_server/model_manager.h"
#include "service/inference_server/prompt_workers.h"
#include "service/inference_server/stream_watchdog.h"

namespace nibble::server {

class InferenceService : public v1::Inference::CallbackService {
 public:
  // `metrics` receives each accepted stream's outcome (GenerateStream); `watchdog` watches each accepted
  // stream's writes.
  InferenceService(ModelManager& manager, const service::TokenCheck& token_check, const AdminCheck& admin_check,
                   std::shared_ptr<ServerMetrics> metrics, StreamWatchdog& watchdog, PromptWorkers& prompt_workers,
                   size_t inline_prompt_bytes);

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                           const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context, const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* LoadModel(grpc::CallbackServerContext* context, const v1::LoadModelRequest* request,
                                      v1::LoadModelResponse* response) override;
  grpc::ServerUnaryReactor* UnloadModel(grpc::CallbackServerContext* context, const v1::UnloadModelRequest* request,
                                        v1::UnloadModelResponse* response) override;

 private:
  // The client's request_id (bounded, printable) or "req-<n>".
  std::string RequestId(const v1::GenerateRequest& request);
  uint64_t RandomSeed();
  // Submits `request` to the manager and begins `stream` on the engine's handle, or refuses it.
  void Submit(const std::shared_ptr<GenerateStream>& stream, const std::string& model, uint64_t version,
              GenerationRequest request);

  ModelManager& manager_;
  const service::TokenCheck& token_check_;
  const AdminCheck& admin_check_;
  const std::shared_ptr<ServerMetrics> metrics_;
  StreamWatchdog& watchdog_;
  PromptWorkers& prompt_workers_;
  const size_t inline_prompt_bytes_;
  std::atomic<uint64_t> next_request_ = 1;
  std::mutex seed_mutex_;
  std::mt19937_64 seeds_{std::random_device{}()};  // guarded by seed_mutex_
};

}  // namespace nibble::server
