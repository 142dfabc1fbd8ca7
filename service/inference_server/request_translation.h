// Translation between the public API (proto/nibble/v1/inference.proto) and the engine's types. Pure
// functions, no I/O: the RPC handlers call these and the engine, nothing else. Validation of the request's
// values is the engine's (PrepareRequest, called by ServingEngine::Submit); this file only refuses what
// cannot be represented in the engine's types.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/serving/generation_request.h"
#include "engine/serving/serving_observer.h"
#include "grpcpp/support/status.h"
#include "nibble/v1/inference.pb.h"
#include "service/inference_server/model_manager.h"

namespace nibble::server {

// The engine request for `proto`, named `id`. `deadline` is the RPC's (nullopt: none); `default_seed` is used
// when the client gave none. InvalidArgument naming the field for values the engine types cannot hold.
absl::StatusOr<GenerationRequest> ToGenerationRequest(const v1::GenerateRequest& proto, std::string id,
                                                      std::optional<std::chrono::steady_clock::time_point> deadline,
                                                      uint64_t default_seed);

// Appends an event's tokens, text and logprobs to `chunk` (several events may merge into one chunk: the
// text stays whole characters because each event's text is).
void AppendToChunk(const GenerationEvent& event, v1::TokenChunk& chunk);

v1::Final ToFinal(const GenerationFinish& finish, const ModelLabel& model);

v1::ModelInfo ToProto(const ModelInfo& info);

}  // namespace nibble::server
