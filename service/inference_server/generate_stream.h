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
// Its metrics (ServerMetrics::OnStreamFinished, just before Finish) are what the client received: the tokens
// of the chunks written (OnWriteDone ok; nothing is written past the RPC's deadline), and the reason in the
// Final message; a stream cut before its Final counts as kError when the RPC's deadline cut it (the engine's
// reason for a deadline, even when gRPC's cancellation reached the engine first; a cancellation within 25 ms
// of the deadline counts as the deadline's, the client's clock running ahead of ours by its request's
// transit) and as kCancelled when its client cancelled or went away. A chunk still in flight when the client's own
// deadline fires may be counted and yet dropped by the client's gRPC library: the server cannot see that.
//
// A client that stops reading stalls the write in flight (HTTP/2 flow control). CutIfWriteStalled, called by
// the StreamWatchdog, cancels the RPC when one write has waited longer than --write-timeout: the write
// fails, the engine request is cancelled and frees its KV blocks, and the stream counts as kCancelled.
// What waits meanwhile is bounded: one message in flight and the tokens since merged into one chunk.
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
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "nibble/v1/inference.pb.h"
#include "service/inference_server/metrics.h"

namespace nibble::server {

class GenerateStream : public grpc::ServerWriteReactor<v1::GenerateResponse>, public GenerationSink {
 public:
  // `context` is the RPC's (valid until OnDone).
  static std::shared_ptr<GenerateStream> Create(std::string request_id, std::shared_ptr<ServerMetrics> metrics,
                                                grpc::CallbackServerContext* context);
  const std::string& request_id() const { return request_id_; }

  // The request was refused before reaching the engine: finish with `status` at once.
  void Refuse(const grpc::Status& status);
  // The engine accepted the request (this stream is its sink).
  void Begin(RequestHandle handle, ModelLabel model);
  // Whether the RPC was cancelled (client gone, deadline). Any thread.
  bool Cancelled();

  // Cancels the RPC when a write has been in flight since before `now - timeout`; returns whether it did.
  // Any thread (the watchdog's); does nothing after OnDone.
  bool CutIfWriteStalled(std::chrono::steady_clock::time_point now, std::chrono::steady_clock::duration timeout);

  // GenerationSink (engine thread).
  void OnEvent(GenerationEvent event) override;

  // ServerWriteReactor.
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  GenerateStream(std::string request_id, std::shared_ptr<ServerMetrics> metrics, grpc::CallbackServerContext* context)
      : request_id_(std::move(request_id)),
        metrics_(std::move(metrics)),
        deadline_(context->deadline()),
        context_(context) {}

  enum class Action { kNone, kWrite, kFinish };
  // Picks the next gRPC operation (caller holds mutex_) and performs it (without the lock).
  Action NextAction();
  void Pump();
  // Whether the RPC's deadline is less than `slack` away, or passed.
  bool DeadlinePassed(std::chrono::milliseconds slack = std::chrono::milliseconds(0)) const;
  // The finish reason the client saw (caller holds mutex_, finish_ is set).
  FinishReason ReasonSeenByClient() const;

  const std::string request_id_;
  const std::shared_ptr<ServerMetrics> metrics_;
  const std::chrono::system_clock::time_point deadline_;
  std::shared_ptr<GenerateStream> self_;  // released in OnDone

  // context_ is reset by OnDone. Recursive: TryCancel may run this stream's reactions, OnDone included,
  // inline on the calling thread.
  std::recursive_mutex context_mutex_;
  grpc::CallbackServerContext* context_;

  std::mutex mutex_;
  RequestHandle handle_;
  ModelLabel model_;
  bool cancelled_ = false;  // the RPC was cancelled (client gone, deadline)
  bool write_failed_ = false;
  bool write_in_flight_ = false;
  std::chrono::steady_clock::time_point write_started_;  // of the write in flight
  bool write_timed_out_ = false;                         // CutIfWriteStalled cancelled the RPC
  bool finish_called_ = false;
  bool final_written_ = false;              // the Final message was started
  bool final_delivered_ = false;            // and its write succeeded
  int64_t streamed_tokens_ = 0;             // token ids of the chunks written
  v1::TokenChunk pending_;                  // events not yet written
  std::optional<GenerationFinish> finish_;  // from the final event
  grpc::Status status_;                     // what Finish sends
  v1::GenerateResponse response_;           // the write in flight
};

}  // namespace nibble::server
