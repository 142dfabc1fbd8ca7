// Continuous batching for one model over its paged KV cache. ServingEngine runs one Scheduler per loaded
// model on its engine thread; offline Generate runs one on the calling thread.
//
// Policy, one Step at a time (requests join and leave between steps):
//   1. Requests cancelled or past their deadline end now (waiting ones past SchedulerOptions::queue_timeout
//      too), and their KV blocks go back to the pool.
//   2. Decode: every running sequence whose prompt is computed runs its last token (oldest admitted first).
//      When one needs a KV block and the pool is dry, the most recently admitted running sequence is
//      preempted: its blocks are freed and it goes back to the front of the queue, to recompute its prompt
//      and the tokens generated so far when readmitted (its stream continues unchanged).
//   3. Chunked prefill with what is left of ModelOptions::max_step_tokens: first sequences admitted but not
//      yet computed, then waiting requests in arrival order, each admitted when the blocks for all its
//      tokens are free and a seat is (ModelOptions::max_seqs); the first that cannot be admitted stops
//      admission (no overtaking). A long prompt thus costs running streams at most one chunk per step.
//   4. One StepBatch, one Model::ForwardAndSample over the last token of every sequence that completes its
//      tokens; each sampled token goes through the request's GenerationState and out to its sink (at most
//      one event per request per step). A finished request's blocks go back to the pool at once.
//
// Ownership and threading: the model, tokenizer and observer must outlive the scheduler. A Scheduler is
// used by one thread (the one that owns the model); only RequestControl is touched by other threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "engine/runtime/model.h"
#include "engine/serving/generation_request.h"
#include "engine/serving/serving_observer.h"

namespace nibble {

struct SchedulerOptions {
  int32_t max_waiting = 256;  // requests waiting for admission (ServingEngine refuses more: RESOURCE_EXHAUSTED)
  std::chrono::milliseconds queue_timeout{0};  // longest wait for admission (DEADLINE_EXCEEDED); 0: none
};

// A request's cancellation flag: set from any thread (RequestHandle::Cancel), read by the scheduler
// before and after every step.
struct RequestControl {
  std::atomic<bool> cancelled{false};
};

// Request counts a Scheduler keeps current for readers on other threads (metrics, the queue bound). A request
// leaves them before its final event is sent.
struct SchedulerGauges {
  std::atomic<int32_t> running{0};
  std::atomic<int32_t> waiting{0};
};

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;

  // `tokenizer` and `observer` may be null. `label` names the model to the observer.
  Scheduler(Model& model, const Tokenizer* tokenizer, ModelLabel label, SchedulerOptions options,
            ServingObserver* observer);
  // Requests still here end with kCancelled / UNAVAILABLE.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The limits to PrepareRequest requests against; the EOS ids are config.json's and the tokenizer's (may be null).
  static RequestLimits LimitsOf(const Model& model, const Tokenizer* tokenizer);
  const RequestLimits& limits() const { return limits_; }
  const ModelLabel& label() const { return label_; }
  const SchedulerOptions& options() const { return options_; }

  // Queues a request prepared against limits(). `arrival` is when it was submitted: queue time and the
  // queue timeout count from there.
  void Add(PreparedRequest request, std::shared_ptr<GenerationSink> sink, std::shared_ptr<const RequestControl> control,
           Clock::time_point arrival);

  // Runs one step as described above. Returns whether a batch ran. A failed forward pass ends the requests
  // of that batch with kError and the failure; the others carry on.
  bool Step();

  // Ends every request now with `reason` and `status` (drain deadline, shutdown).
  void EndAll(FinishReason reason, const absl::Status& status);

  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  bool idle() const { return running_.empty() && waiting_.empty(); }
  // The same counts for other threads, updated whenever requests are queued, admitted, preempted or end.
  std::shared_ptr<const SchedulerGauges> gauges() const { return gauges_; }

 private:
  struct Sequence;
  struct Work;  // one sequence's part of a step

  void EndExpiredAndCancelled(Clock::time_point now);
  void ScheduleDecodes(std::vector<Work>& work);
  void SchedulePrefills(std::vector<Work>& work, int32_t budget);
  // Frees the blocks of the most recently admitted running sequence and requeues it; returns it.
  const Sequence* PreemptNewest();
  // Runs the batch and hands out the sampled tokens.
  void Run(const std::vector<Work>& work);
  // Drops the sequence's blocks, tells the observer and sends the final event.
  void Finish(Sequence& sequence, GenerationEvent event, FinishReason reason, absl::Status status,
              Clock::time_point now);
  void PublishGauges();

  Model& model_;
  const Tokenizer* tokenizer_;
  ModelLabel label_;
  SchedulerOptions options_;
  ServingObserver* observer_;
  RequestLimits limits_;
  int32_t max_running_;  // seats: ModelOptions::max_seqs, and no more than one decode token each per step
  uint64_t admissions_ = 0;
  std::deque<std::unique_ptr<Sequence>> waiting_;   // arrival order; preempted sequences at the front
  std::vector<std::unique_ptr<Sequence>> running_;  // admission order
  std::shared_ptr<SchedulerGauges> gauges_ = std::make_shared<SchedulerGauges>();
};

}  // namespace nibble
