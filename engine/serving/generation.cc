#include "engine/serving/generation.h"

#include <memory>
#include <optional>

#include "engine/base/status_macros.h"
#include "engine/serving/scheduler.h"

namespace nibble {
namespace {

// Gathers the request's events into a GenerationResult, passing each to the caller's callback first.
class ResultSink : public GenerationSink {
 public:
  ResultSink(const std::function<bool(const GenerationEvent&)>& on_event, RequestControl& control)
      : on_event_(on_event), control_(control) {}

  void OnEvent(GenerationEvent event) override {
    if (on_event_ && !on_event_(event)) control_.cancelled = true;
    result_.tokens.insert(result_.tokens.end(), event.token_ids.begin(), event.token_ids.end());
    result_.text += event.text;
    result_.logprobs.insert(result_.logprobs.end(), event.logprobs.begin(), event.logprobs.end());
    if (event.finish) finish_ = std::move(event.finish);
  }

  absl::StatusOr<GenerationResult> TakeResult() {
    if (!finish_) return absl::InternalError("generate: the request ended without a final event");
    if (finish_->reason == FinishReason::kError) return finish_->status;
    result_.finish_reason = finish_->reason;
    result_.usage = finish_->usage;
    return std::move(result_);
  }

 private:
  const std::function<bool(const GenerationEvent&)>& on_event_;
  RequestControl& control_;
  GenerationResult result_;
  std::optional<GenerationFinish> finish_;
};

}  // namespace

absl::StatusOr<GenerationResult> Generate(Model& model, const Tokenizer* tokenizer, GenerationRequest request,
                                          const std::function<bool(const GenerationEvent&)>& on_event) {
  if (request.id.empty()) request.id = "generate";
  Scheduler scheduler(model, tokenizer, ModelLabel{}, SchedulerOptions{}, /*observer=*/nullptr);
  NIBBLE_ASSIGN_OR_RETURN(PreparedRequest prepared, PrepareRequest(std::move(request), scheduler.limits(), tokenizer));
  auto control = std::make_shared<RequestControl>();
  auto sink = std::make_shared<ResultSink>(on_event, *control);
  scheduler.Add(std::move(prepared), sink, control, Scheduler::Clock::now());
  while (!scheduler.idle()) scheduler.Step();
  return sink->TakeResult();
}

}  // namespace nibble
