// One Generate call: the engine's GenerationSink on one side, gRPC's ServerWriteReactor on the other.
//
// The engine thread hands events to OnEvent, which queues them (merging what arrives while a write is in
// flight into the next chunk) and never blocks. One write is in flight at a time. After the final event
// the stream writes the Final message (unless the client cancelled or a write failed) and finishes with
// the request's status: OK for stop/length, otherwise its code (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE
// when a drain cut it, ...). A failed write or an RPC cancellation (client gone, deadline) cancels the
// engine request, which ends within one step and frees its KV blocks; the stream then finishes on the
// engine's final event.
//
// Lifetime: Create returns a stream that keeps itself alive until gRPC calls OnDone; the engine holds it
// (as the sink) until its final event, which always comes before Finish. Threading: OnEvent on the engine
// thread, reactions on gRPC threads, Begin/Refuse on the handler's thread; one mutex orders them and is
// never held while calling into gRPC (a reaction may run inline).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/serving/generation_request.h"
#include "engine/serving/serving_engine.h"
#include "grpcpp/support/server_callback.h"
#include "nibble/v1/inference.pb.h"

namespace nibble::server {

class GenerateStream : public grpc::ServerWriteReactor<v1::GenerateResponse>, public GenerationSink {
 public:
  static std::shared_ptr<GenerateStream> Create(std::string request_id);
  const std::string& request_id() const { return request_id_; }

  // The request was refused before reaching the engine: finish with `status` at once.
  void Refuse(const grpc::Status& status);
  // The engine accepted the request (this stream is its sink).
  void Begin(RequestHandle handle, ModelLabel model);

  // GenerationSink (engine thread).
  void OnEvent(GenerationEvent event) override;

  // ServerWriteReactor.
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  explicit GenerateStream(std::string request_id) : request_id_(std::move(request_id)) {}

  enum class Action { kNone, kWrite, kFinish };
  // Picks the next gRPC operation (caller holds mutex_) and performs it (without the lock).
  Action NextAction();
  void Pump();

  const std::string request_id_;
  std::shared_ptr<GenerateStream> self_;  // released in OnDone

  std::mutex mutex_;
  RequestHandle handle_;
  ModelLabel model_;
  bool cancelled_ = false;  // the RPC was cancelled (client gone, deadline)
  bool write_failed_ = false;
  bool write_in_flight_ = false;
  bool finish_called_ = false;
  bool final_written_ = false;
  v1::TokenChunk pending_;                  // events not yet written
  std::optional<GenerationFinish> finish_;  // from the final event
  grpc::Status status_;                     // what Finish sends
  v1::GenerateResponse response_;           // the write in flight
};

}  // namespace nibble::server
