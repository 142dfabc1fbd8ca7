#include "service/inference_server/generate_stream.h"

#include "service/common/grpc_status.h"
#include "service/inference_server/request_translation.h"
#include "spdlog/spdlog.h"

namespace nibble::server {
namespace {

constexpr std::chrono::milliseconds kDeadlineSlack{25};

}  // namespace

std::shared_ptr<GenerateStream> GenerateStream::Create(std::string request_id, std::shared_ptr<ServerMetrics> metrics,
                                                       grpc::CallbackServerContext* context) {
  std::shared_ptr<GenerateStream> stream(new GenerateStream(std::move(request_id), std::move(metrics), context));
  stream->self_ = stream;
  return stream;
}

void GenerateStream::Refuse(const grpc::Status& status) {
  {
    std::lock_guard lock(mutex_);
    finish_called_ = true;
    status_ = status;
  }
  spdlog::info("request {}: refused: {} {}", request_id_, static_cast<int>(status.error_code()),
               status.error_message());
  Finish(status);
}

void GenerateStream::Begin(RequestHandle handle, ModelLabel model) {
  bool cancel = false;
  spdlog::info("request {}: accepted by model {} version {}", request_id_, model.name, model.version);
  {
    std::lock_guard lock(mutex_);
    handle_ = handle;
    model_ = std::move(model);
    cancel = cancelled_ || write_failed_;
  }
  if (cancel) handle.Cancel();
}

bool GenerateStream::Cancelled() {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

bool GenerateStream::CutIfWriteStalled(std::chrono::steady_clock::time_point now,
                                       std::chrono::steady_clock::duration timeout) {
  RequestHandle handle;
  std::chrono::steady_clock::duration waited;
  {
    std::lock_guard lock(mutex_);
    waited = now - write_started_;
    if (!write_in_flight_ || write_timed_out_ || waited < timeout) return false;
    write_timed_out_ = true;
    handle = handle_;
  }
  spdlog::info("request {}: cut: the client has not read for {:.1f} s (--write-timeout)", request_id_,
               std::chrono::duration<double>(waited).count());
  handle.Cancel();  // the engine stops generating for it within a step and frees its KV blocks
  std::lock_guard lock(context_mutex_);
  if (context_ != nullptr) context_->TryCancel();  // fails the stalled write, so that the stream can finish
  return true;
}

void GenerateStream::OnEvent(GenerationEvent event) {
  {
    std::lock_guard lock(mutex_);
    AppendToChunk(event, pending_);
    if (event.finish) finish_ = std::move(event.finish);
  }
  Pump();
}

void GenerateStream::OnWriteDone(bool ok) {
  RequestHandle cancel;
  {
    std::lock_guard lock(mutex_);
    write_in_flight_ = false;
    if (ok) streamed_tokens_ += response_.chunk().token_ids_size();  // 0 for the final message
    if (response_.has_final()) final_delivered_ = ok;
    if (!ok && !write_failed_) {
      write_failed_ = true;
      if (!finish_) cancel = handle_;
    }
  }
  cancel.Cancel();  // a default handle does nothing
  Pump();
}

void GenerateStream::OnCancel() {
  RequestHandle handle;
  {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    handle = handle_;  // empty before Begin, which then cancels; a no-op after the request ended
  }
  handle.Cancel();
}

void GenerateStream::OnDone() {
  {
    std::lock_guard lock(context_mutex_);
    context_ = nullptr;  // gRPC frees it after this call
  }
  std::shared_ptr<GenerateStream> self = std::move(self_);  // `this` dies with `self` at the end of this call
  if (!finish_) return;                                     // refused: logged by Refuse
  const Usage& usage = finish_->usage;
  spdlog::info(
      "request {}: done: model {} version {}, finish {}, status {}, {} prompt + {} generated tokens, "
      "queue {:.3f} s, ttft {:.3f} s, total {:.3f} s{}",
      request_id_, model_.name, model_.version, std::string(FinishReasonName(finish_->reason)),
      static_cast<int>(status_.error_code()), usage.prompt_tokens, usage.completion_tokens, usage.queue_seconds,
      usage.time_to_first_token_seconds.value_or(0.0), usage.total_seconds,
      write_timed_out_ ? ", client stopped reading" : (write_failed_ ? ", client gone" : ""));
}

GenerateStream::Action GenerateStream::NextAction() {
  if (write_in_flight_ || finish_called_) return Action::kNone;
  // Past its deadline the client takes nothing more (its own gRPC has ended the call): nothing is written
  // that the client would not see.
  const bool writable = !write_failed_ && !cancelled_ && !DeadlinePassed();
  if (writable && (pending_.token_ids_size() > 0 || !pending_.text().empty())) {
    response_.Clear();
    response_.mutable_chunk()->Swap(&pending_);
    write_in_flight_ = true;
    write_started_ = std::chrono::steady_clock::now();
    return Action::kWrite;
  }
  if (!finish_) return Action::kNone;
  if (writable && !final_written_ && finish_->status.code() != absl::StatusCode::kCancelled) {
    response_.Clear();
    *response_.mutable_final() = ToFinal(*finish_, model_);
    final_written_ = true;
    write_in_flight_ = true;
    write_started_ = std::chrono::steady_clock::now();
    return Action::kWrite;
  }
  status_ = service::ToGrpcStatus(finish_->status);
  finish_called_ = true;
  // Before Finish: a client that has its status finds the metrics updated.
  metrics_->OnStreamFinished(model_, ReasonSeenByClient(), streamed_tokens_);
  return Action::kFinish;
}

bool GenerateStream::DeadlinePassed(std::chrono::milliseconds slack) const {
  return deadline_ != std::chrono::system_clock::time_point::max() &&
         std::chrono::system_clock::now() + slack >= deadline_;
}

FinishReason GenerateStream::ReasonSeenByClient() const {
  if (final_delivered_) return finish_->reason;  // the Final message says it
  if (finish_->status.code() == absl::StatusCode::kDeadlineExceeded) return FinishReason::kError;
  // Cut before its Final: by the deadline (gRPC's cancellation, or a write it failed, may have reached the
  // engine first), or by a client that cancelled or went away. The client's deadline fires before ours, by
  // the time its request took to arrive, and its cancellation looks like any other: one that comes within
  // kDeadlineSlack of our deadline is the deadline's.
  if (DeadlinePassed(kDeadlineSlack)) return FinishReason::kError;
  if (cancelled_ || write_failed_) return FinishReason::kCancelled;
  return finish_->reason;
}

void GenerateStream::Pump() {
  Action action;
  {
    std::lock_guard lock(mutex_);
    action = NextAction();
  }
  // response_ and status_ are stable here: nothing else writes them until this write completes.
  if (action == Action::kWrite) StartWrite(&response_);
  if (action == Action::kFinish) Finish(status_);
}

}  // namespace nibble::server
