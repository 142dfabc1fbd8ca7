#include "service/inference_server/generate_stream.h"

#include "service/common/grpc_status.h"
#include "service/inference_server/request_translation.h"
#include "spdlog/spdlog.h"

namespace nibble::server {

std::shared_ptr<GenerateStream> GenerateStream::Create(std::string request_id) {
  std::shared_ptr<GenerateStream> stream(new GenerateStream(std::move(request_id)));
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
  std::shared_ptr<GenerateStream> self = std::move(self_);  // `this` dies with `self` at the end of this call
  if (!finish_) return;                                     // refused: logged by Refuse
  const Usage& usage = finish_->usage;
  spdlog::info(
      "request {}: done: model {} version {}, finish {}, status {}, {} prompt + {} generated tokens, "
      "queue {:.3f} s, ttft {:.3f} s, total {:.3f} s{}",
      request_id_, model_.name, model_.version, std::string(FinishReasonName(finish_->reason)),
      static_cast<int>(status_.error_code()), usage.prompt_tokens, usage.completion_tokens, usage.queue_seconds,
      usage.time_to_first_token_seconds.value_or(0.0), usage.total_seconds, write_failed_ ? ", client gone" : "");
}

GenerateStream::Action GenerateStream::NextAction() {
  if (write_in_flight_ || finish_called_) return Action::kNone;
  const bool writable = !write_failed_ && !cancelled_;
  if (writable && (pending_.token_ids_size() > 0 || !pending_.text().empty())) {
    response_.Clear();
    response_.mutable_chunk()->Swap(&pending_);
    write_in_flight_ = true;
    return Action::kWrite;
  }
  if (!finish_) return Action::kNone;
  if (writable && !final_written_ && finish_->status.code() != absl::StatusCode::kCancelled) {
    response_.Clear();
    *response_.mutable_final() = ToFinal(*finish_, model_);
    final_written_ = true;
    write_in_flight_ = true;
    return Action::kWrite;
  }
  status_ = service::ToGrpcStatus(finish_->status);
  finish_called_ = true;
  return Action::kFinish;
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
