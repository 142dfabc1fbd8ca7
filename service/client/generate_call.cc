#include "service/client/generate_call.h"

#include <chrono>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"

namespace nibble::client {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Reads the stream one message at a time; deletes itself in OnDone.
class GenerateCall final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  GenerateCall(const Connection& connection, v1::GenerateRequest request, ChunkCallback on_chunk, DoneCallback on_done)
      : connection_(connection),
        request_(std::move(request)),
        on_chunk_(std::move(on_chunk)),
        on_done_(std::move(on_done)) {
    connection_.Prepare(context_);
  }

  void Start() {
    start_ = Clock::now();
    connection_.inference().async()->Generate(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone follows
    if (response_.has_chunk()) {
      Record(response_.chunk());
      if (on_chunk_) on_chunk_(response_.chunk());
    } else if (response_.has_final()) {
      outcome_.final = response_.final();
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    outcome_.e2e_seconds = SecondsBetween(start_, Clock::now());
    outcome_.status = connection_.CallStatus(status, "Generate");
    if (outcome_.status.ok() && !outcome_.final) {
      outcome_.status = absl::InternalError(
          absl::StrCat(connection_.server(), ": Generate: the stream ended without its final message"));
    } else if (outcome_.status.ok() && outcome_.final->finish_reason() == v1::FINISH_REASON_ERROR) {
      outcome_.status = absl::UnknownError(absl::StrCat(connection_.server(), ": Generate: model \"", request_.model(),
                                                        "\": ", outcome_.final->error()));
    }
    DoneCallback on_done = std::move(on_done_);
    GenerateOutcome outcome = std::move(outcome_);
    delete this;
    on_done(std::move(outcome));
  }

 private:
  void Record(const v1::TokenChunk& chunk) {
    const int tokens = chunk.token_ids_size();
    if (tokens == 0) return;
    const Clock::time_point now = Clock::now();
    std::vector<double>& gaps = outcome_.inter_token_seconds;
    if (!outcome_.time_to_first_token_seconds) {
      outcome_.time_to_first_token_seconds = SecondsBetween(start_, now);
      gaps.insert(gaps.end(), tokens - 1, 0.0);  // the first chunk's other tokens came with no gap
    } else {
      gaps.insert(gaps.end(), tokens, SecondsBetween(last_tokens_, now) / tokens);
    }
    outcome_.tokens += tokens;
    last_tokens_ = now;
  }

  const Connection& connection_;
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateResponse response_;
  ChunkCallback on_chunk_;
  DoneCallback on_done_;
  GenerateOutcome outcome_;
  Clock::time_point start_;
  Clock::time_point last_tokens_;
};

}  // namespace

void StartGenerate(const Connection& connection, v1::GenerateRequest request, ChunkCallback on_chunk,
                   DoneCallback on_done) {
  (new GenerateCall(connection, std::move(request), std::move(on_chunk), std::move(on_done)))->Start();
}

GenerateOutcome RunGenerate(const Connection& connection, v1::GenerateRequest request, ChunkCallback on_chunk) {
  std::promise<GenerateOutcome> done;
  std::future<GenerateOutcome> outcome = done.get_future();
  StartGenerate(connection, std::move(request), std::move(on_chunk),
                [&done](GenerateOutcome result) { done.set_value(std::move(result)); });
  return outcome.get();
}

}  // namespace nibble::client
