#include "engine/serving/scheduler.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/serving/generation_state.h"

namespace nibble {
namespace {

double Seconds(Scheduler::Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

}  // namespace

struct Scheduler::Sequence {
  Sequence(PreparedRequest request, const Tokenizer* tokenizer, std::shared_ptr<KvBlockPool> pool)
      : state(std::move(request), tokenizer), kv(std::move(pool)) {}

  // Tokens of state.tokens() not yet in the KV cache: the whole prompt at first (and everything again after
  // a preemption), then the last sampled token.
  int32_t pending() const { return static_cast<int32_t>(state.tokens().size()) - computed; }
  bool cancelled() const { return control->cancelled.load(); }

  GenerationState state;
  KvSequence kv;
  int32_t computed = 0;    // tokens whose keys and values are in `kv`
  uint64_t admission = 0;  // order of its latest admission
  bool done = false;       // its final event has been sent
  std::shared_ptr<GenerationSink> sink;
  std::shared_ptr<const RequestControl> control;
  Clock::time_point arrival;
  std::optional<Clock::time_point> admitted;     // first admission
  std::optional<Clock::time_point> first_token;  // when its first token was sent
  Clock::time_point last_token;                  // when its latest token was sent
};

struct Scheduler::Work {
  Sequence* sequence;
  int32_t chunk;  // tokens it runs in this step, from sequence->computed on
  bool samples;   // the chunk completes its tokens: its last row yields the next token
};

Scheduler::Scheduler(Model& model, const Tokenizer* tokenizer, ModelLabel label, SchedulerOptions options,
                     ServingObserver* observer)
    : model_(model),
      tokenizer_(tokenizer),
      label_(std::move(label)),
      options_(options),
      observer_(observer),
      limits_(LimitsOf(model, tokenizer)),
      max_running_(std::min(model.options().max_seqs, model.options().max_step_tokens)) {}

Scheduler::~Scheduler() {
  EndAll(FinishReason::kCancelled,
         absl::UnavailableError(absl::StrCat("model ", label_.name, " version ", label_.version, " was unloaded")));
}

RequestLimits Scheduler::LimitsOf(const Model& model, const Tokenizer* tokenizer) {
  RequestLimits limits;
  limits.vocab_size = static_cast<int32_t>(model.config().vocab_size);
  limits.max_context = model.options().max_context;
  limits.kv_capacity = model.kv_pool()->num_blocks() * model.kv_pool()->block_size();
  limits.eos_token_ids = model.config().eos_token_ids;
  if (tokenizer != nullptr) {  // generation_config.json may list more end tokens than config.json
    for (const int32_t id : tokenizer->eos_ids()) {
      if (std::find(limits.eos_token_ids.begin(), limits.eos_token_ids.end(), id) == limits.eos_token_ids.end()) {
        limits.eos_token_ids.push_back(id);
      }
    }
  }
  return limits;
}

void Scheduler::Add(PreparedRequest request, std::shared_ptr<GenerationSink> sink,
                    std::shared_ptr<const RequestControl> control, Clock::time_point arrival) {
  auto sequence = std::make_unique<Sequence>(std::move(request), tokenizer_, model_.kv_pool());
  sequence->sink = std::move(sink);
  sequence->control = std::move(control);
  sequence->arrival = arrival;
  waiting_.push_back(std::move(sequence));
  PublishGauges();
}

bool Scheduler::Step() {
  EndExpiredAndCancelled(Clock::now());
  std::vector<Work> work;
  ScheduleDecodes(work);
  SchedulePrefills(work, model_.options().max_step_tokens - static_cast<int32_t>(work.size()));
  PublishGauges();
  if (work.empty()) return false;
  Run(work);
  PublishGauges();
  return true;
}

void Scheduler::EndExpiredAndCancelled(Clock::time_point now) {
  auto end_if_due = [&](Sequence& sequence) {
    const GenerationRequest& request = sequence.state.prepared().request;
    if (sequence.cancelled()) {
      Finish(sequence, {}, FinishReason::kCancelled,
             absl::CancelledError(absl::StrCat("request ", request.id, " was cancelled")), now);
    } else if (request.deadline.has_value() && now >= *request.deadline) {
      Finish(sequence, {}, FinishReason::kError,
             absl::DeadlineExceededError(absl::StrCat("request ", request.id, " passed its deadline ",
                                                      sequence.admitted ? "while generating" : "while waiting")),
             now);
    } else if (!sequence.admitted && options_.queue_timeout.count() > 0 &&
               now - sequence.arrival >= options_.queue_timeout) {
      Finish(sequence, {}, FinishReason::kError,
             absl::DeadlineExceededError(absl::StrCat("request ", request.id, " waited more than ",
                                                      options_.queue_timeout.count(), " ms in the queue of model ",
                                                      label_.name)),
             now);
    }
  };
  for (auto& sequence : waiting_) end_if_due(*sequence);
  for (auto& sequence : running_) end_if_due(*sequence);
  std::erase_if(waiting_, [](const auto& sequence) { return sequence->done; });
  std::erase_if(running_, [](const auto& sequence) { return sequence->done; });
}

void Scheduler::ScheduleDecodes(std::vector<Work>& work) {
  // Oldest first: preemption takes the newest (running_.back()), which is never one scheduled already.
  for (size_t i = 0; i < running_.size(); ++i) {
    Sequence* sequence = running_[i].get();
    if (sequence->pending() != 1) continue;  // still prefilling
    bool preempted = false;
    while (!preempted && !sequence->kv.Reserve(sequence->computed + 1).ok()) {
      preempted = PreemptNewest() == sequence;
    }
    if (!preempted) work.push_back(Work{sequence, 1, true});
  }
}

void Scheduler::SchedulePrefills(std::vector<Work>& work, int32_t budget) {
  auto schedule = [&](Sequence* sequence) {
    const int32_t chunk = std::min(sequence->pending(), budget);
    work.push_back(Work{sequence, chunk, chunk == sequence->pending()});
    budget -= chunk;
  };
  // Admitted sequences still computing their prompt hold blocks for all of it already.
  for (const auto& sequence : running_) {
    if (budget <= 0) return;
    if (sequence->pending() > 1) schedule(sequence.get());
  }
  while (budget > 0 && !waiting_.empty() && static_cast<int32_t>(running_.size()) < max_running_) {
    Sequence& next = *waiting_.front();
    if (!next.kv.Reserve(static_cast<int64_t>(next.state.tokens().size())).ok()) return;  // no overtaking
    next.admission = ++admissions_;
    if (!next.admitted) next.admitted = Clock::now();
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    schedule(&next);
  }
}

const Scheduler::Sequence* Scheduler::PreemptNewest() {
  std::unique_ptr<Sequence> victim = std::move(running_.back());
  running_.pop_back();
  victim->kv.Release();
  victim->computed = 0;
  if (observer_ != nullptr) observer_->OnPreemption(label_);
  waiting_.push_front(std::move(victim));
  return waiting_.front().get();
}

void Scheduler::Run(const std::vector<Work>& work) {
  StepBatch batch;
  std::vector<SamplingRequest> requests;
  for (const Work& item : work) {
    Sequence& sequence = *item.sequence;
    batch.AddSequence(
        sequence.state.tokens().subspan(static_cast<size_t>(sequence.computed), static_cast<size_t>(item.chunk)),
        sequence.computed, sequence.kv.blocks(), item.samples ? StepBatch::Logits::kLast : StepBatch::Logits::kNone);
    if (item.samples) requests.push_back(sequence.state.sampling_request());
  }
  absl::StatusOr<std::vector<SampledToken>> sampled = model_.ForwardAndSample(batch, requests);
  const Clock::time_point now = Clock::now();

  size_t row = 0;
  for (const Work& item : work) {
    Sequence& sequence = *item.sequence;
    if (!sampled.ok()) {
      Finish(
          sequence, {}, FinishReason::kError,
          absl::Status(sampled.status().code(), absl::StrCat("request ", sequence.state.id(), ": model ", label_.name,
                                                             " step failed: ", sampled.status().message())),
          now);
      continue;
    }
    sequence.computed += item.chunk;
    if (!item.samples) continue;
    const SampledToken& token = (*sampled)[row++];
    if (sequence.cancelled()) {
      Finish(sequence, {}, FinishReason::kCancelled,
             absl::CancelledError(absl::StrCat("request ", sequence.state.id(), " was cancelled")), now);
      continue;
    }
    GenerationEvent event;
    const std::optional<FinishReason> finished = sequence.state.Add(token, event);
    if (!event.token_ids.empty()) {
      if (!sequence.first_token) {
        sequence.first_token = now;
      } else if (observer_ != nullptr) {
        observer_->OnTokenLatency(label_, Seconds(now - sequence.last_token));
      }
      sequence.last_token = now;
    }
    if (finished) {
      Finish(sequence, std::move(event), *finished, absl::OkStatus(), now);
    } else {
      sequence.sink->OnEvent(std::move(event));
    }
  }
  std::erase_if(running_, [](const auto& sequence) { return sequence->done; });
}

void Scheduler::Finish(Sequence& sequence, GenerationEvent event, FinishReason reason, absl::Status status,
                       Clock::time_point now) {
  sequence.kv.Release();
  Usage usage;
  usage.prompt_tokens = sequence.state.prompt_size();
  usage.completion_tokens = sequence.state.num_generated();
  usage.queue_seconds = Seconds(sequence.admitted.value_or(now) - sequence.arrival);
  if (sequence.first_token) usage.time_to_first_token_seconds = Seconds(*sequence.first_token - sequence.arrival);
  usage.total_seconds = Seconds(now - sequence.arrival);
  event.finish = GenerationFinish{reason, std::move(status), usage};
  sequence.done = true;
  PublishGauges();  // before the final event: whoever sees it finds the request counted no more
  // The observer first: whoever sees the final event finds the metrics updated.
  if (observer_ != nullptr) observer_->OnRequestFinished(label_, reason, usage);
  sequence.sink->OnEvent(std::move(event));
  sequence.sink.reset();
}

void Scheduler::EndAll(FinishReason reason, const absl::Status& status) {
  const Clock::time_point now = Clock::now();
  for (auto& sequence : running_) Finish(*sequence, {}, reason, status, now);
  for (auto& sequence : waiting_) Finish(*sequence, {}, reason, status, now);
  running_.clear();
  waiting_.clear();
  PublishGauges();
}

void Scheduler::PublishGauges() {
  // Finished sequences leave running_ and waiting_ only after the loop that ends them: not counted here.
  const auto live = [](const auto& sequence) { return !sequence->done; };
  gauges_->running = static_cast<int32_t>(std::count_if(running_.begin(), running_.end(), live));
  gauges_->waiting = static_cast<int32_t>(std::count_if(waiting_.begin(), waiting_.end(), live));
}

}  // namespace nibble
