#include "engine/serving/serving_engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/tokenizer.h"

namespace nibble {
namespace {

using Clock = std::chrono::steady_clock;

std::string Describe(const ModelLabel& label) { return absl::StrCat("model ", label.name, " version ", label.version); }

}  // namespace

struct ServingEngine::ModelSlot {
  std::shared_ptr<LoadedModel> handle;
  std::unique_ptr<Model> model;
  std::unique_ptr<Scheduler> scheduler;  // after `model`: destroyed before it
};

struct ServingEngine::PendingLoad {
  ModelLabel label;
  std::shared_ptr<const HostModel> host;
  std::shared_ptr<const Tokenizer> tokenizer;
  ModelOptions model_options;
  SchedulerOptions scheduler_options;
  std::promise<absl::StatusOr<std::shared_ptr<LoadedModel>>> result;
};

struct ServingEngine::Submission {
  std::shared_ptr<LoadedModel> model;
  PreparedRequest request;
  std::shared_ptr<GenerationSink> sink;
  std::shared_ptr<RequestControl> control;
  Clock::time_point arrival;
};

// --- LoadedModel and RequestHandle -------------------------------------------------------------------------

LoadedModel::LoadedModel(const ServingEngine* engine, ModelLabel label, ModelConfig config, RequestLimits limits,
                         std::shared_ptr<const Tokenizer> tokenizer, SchedulerOptions scheduler_options,
                         std::shared_ptr<const SchedulerGauges> gauges, std::shared_ptr<const KvBlockPool> kv_pool,
                         size_t weight_bytes)
    : engine_(engine),
      label_(std::move(label)),
      config_(std::move(config)),
      limits_(std::move(limits)),
      tokenizer_(std::move(tokenizer)),
      scheduler_options_(scheduler_options),
      gauges_(std::move(gauges)),
      kv_pool_(std::move(kv_pool)),
      weight_bytes_(weight_bytes) {}

ModelStats LoadedModel::stats() const {
  ModelStats stats;
  stats.label = label_;
  stats.state = state_.load();
  stats.running = gauges_->running;
  stats.waiting = gauges_->waiting + posted_;
  stats.kv_cache_usage = kv_pool_->usage();
  stats.weight_bytes = weight_bytes_;
  return stats;
}

void RequestHandle::Cancel() const {
  if (control_ != nullptr) control_->cancelled = true;
}

// --- RPC threads -------------------------------------------------------------------------------------------

ServingEngine::ServingEngine(std::unique_ptr<Backend> backend, ServingEngineOptions options)
    : backend_name_(backend->name()), backend_(std::move(backend)), observer_(std::move(options.observer)) {
  thread_ = std::thread(&ServingEngine::Loop, this);
}

ServingEngine::~ServingEngine() { Shutdown(); }

absl::StatusOr<std::shared_ptr<LoadedModel>> ServingEngine::LoadModel(ModelLabel label,
                                                                      std::shared_ptr<const HostModel> host,
                                                                      std::shared_ptr<const Tokenizer> tokenizer,
                                                                      const ModelOptions& model_options,
                                                                      const SchedulerOptions& scheduler_options) {
  if (host == nullptr) return absl::InvalidArgumentError(absl::StrCat(Describe(label), ": no weights"));
  if (tokenizer != nullptr && tokenizer->vocab_size() > host->config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(Describe(label), ": the tokenizer has ", tokenizer->vocab_size(),
                                                   " tokens, more than the model's vocabulary of ",
                                                   host->config.vocab_size));
  }
  if (scheduler_options.max_waiting <= 0 || scheduler_options.queue_timeout.count() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe(label), ": max_waiting must be positive and queue_timeout not negative"));
  }
  auto load = std::make_unique<PendingLoad>();
  load->label = std::move(label);
  load->host = std::move(host);
  load->tokenizer = std::move(tokenizer);
  load->model_options = model_options;
  load->scheduler_options = scheduler_options;
  std::future<absl::StatusOr<std::shared_ptr<LoadedModel>>> result = load->result.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || draining_) {
      return absl::UnavailableError(
          absl::StrCat(Describe(load->label), ": the engine is ", stopping_ ? "shut down" : "draining"));
    }
    loads_.push_back(std::move(load));
    work_posted_ = true;
  }
  wake_.notify_one();
  return result.get();
}

absl::Status ServingEngine::Unload(const std::shared_ptr<LoadedModel>& model) {
  if (model == nullptr || model->engine_ != this) return absl::NotFoundError("unload: the model is not in this engine");
  {
    std::lock_guard lock(mutex_);
    if (model->state_ != ModelState::kServing) return absl::OkStatus();
    model->state_ = ModelState::kUnloading;
    work_posted_ = true;
  }
  wake_.notify_one();
  return absl::OkStatus();
}

absl::StatusOr<RequestHandle> ServingEngine::Submit(const std::shared_ptr<LoadedModel>& model,
                                                    GenerationRequest request, std::shared_ptr<GenerationSink> sink) {
  if (model == nullptr || model->engine_ != this) return absl::NotFoundError("submit: the model is not in this engine");
  if (sink == nullptr) return absl::InvalidArgumentError("submit: no sink for the request's events");
  if (request.id.empty()) request.id = absl::StrCat("req-", next_request_id_++);
  const std::string id = request.id;
  absl::StatusOr<PreparedRequest> prepared =
      PrepareRequest(std::move(request), model->limits(), model->tokenizer().get());
  if (!prepared.ok()) return prepared.status();
  auto control = std::make_shared<RequestControl>();
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || draining_) {
      return absl::UnavailableError(
          absl::StrCat("request ", id, ": the engine is ", stopping_ ? "shut down" : "draining"));
    }
    if (model->state_ != ModelState::kServing) {
      return absl::FailedPreconditionError(
          absl::StrCat("request ", id, ": ", Describe(model->label()), " is unloading and takes no new requests"));
    }
    const int32_t waiting = model->gauges_->waiting + model->posted_;
    if (waiting >= model->scheduler_options().max_waiting) {
      return absl::ResourceExhaustedError(absl::StrCat("request ", id, ": ", Describe(model->label()), " has ", waiting,
                                                       " requests waiting, its queue's limit"));
    }
    ++model->posted_;
    submissions_.push_back(Submission{model, *std::move(prepared), std::move(sink), control, Clock::now()});
    work_posted_ = true;
  }
  wake_.notify_one();
  return RequestHandle(id, std::move(control));
}

void ServingEngine::BeginDrain(std::chrono::steady_clock::time_point deadline) {
  {
    std::lock_guard lock(mutex_);
    drain_deadline_ = draining_ ? std::min(drain_deadline_, deadline) : deadline;
    draining_ = true;
    work_posted_ = true;
  }
  wake_.notify_one();
}

void ServingEngine::Drain(std::chrono::steady_clock::time_point deadline) {
  BeginDrain(deadline);
  std::unique_lock lock(mutex_);
  settled_.wait(lock, [&] { return stopping_ || (idle_ && submissions_.empty()); });
}

void ServingEngine::Shutdown() {
  std::call_once(shutdown_once_, [&] {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      work_posted_ = true;
    }
    wake_.notify_one();
    thread_.join();
  });
}

EngineStats ServingEngine::Stats() const {
  EngineStats stats;
  stats.backend = backend_name_;
  std::lock_guard lock(mutex_);
  stats.device_memory = device_memory_;
  for (const auto& model : models_) stats.models.push_back(model->stats());
  return stats;
}

// --- The engine thread -------------------------------------------------------------------------------------

void ServingEngine::Loop() {
  while (TakePosted()) {
    bool past_drain_deadline;
    {
      std::lock_guard lock(mutex_);
      past_drain_deadline = draining_ && Clock::now() >= drain_deadline_;
    }
    if (past_drain_deadline) EndAll(absl::UnavailableError("the engine is draining and its deadline has passed"));
    bool stepped = false;
    for (auto& slot : slots_) stepped = slot->scheduler->Step() || stepped;
    Reap();

    std::unique_lock lock(mutex_);
    if (!HasRequests()) {
      wake_.wait(lock, [&] { return work_posted_; });
    } else if (!stepped) {
      // Requests that cannot run now (none in practice: one always fits alone); do not spin.
      wake_.wait_for(lock, std::chrono::milliseconds(1), [&] { return work_posted_; });
    }
  }
  Stop();
}

bool ServingEngine::TakePosted() {
  std::vector<std::unique_ptr<PendingLoad>> loads;
  std::vector<Submission> submissions;
  bool stopping;
  {
    std::lock_guard lock(mutex_);
    stopping = stopping_;
    loads.swap(loads_);
    submissions.swap(submissions_);
    work_posted_ = false;
    if (!submissions.empty()) idle_ = false;
  }
  for (auto& load : loads) {
    if (stopping) {
      load->result.set_value(absl::UnavailableError(absl::StrCat(Describe(load->label), ": the engine is shut down")));
    } else {
      RunLoad(*load);
    }
  }
  // Each request moves from posted_ to its scheduler's waiting gauge under mutex_, which Submit's admission
  // check holds too: it never sees a request counted in both, or in neither.
  std::lock_guard lock(mutex_);
  for (Submission& submission : submissions) {
    const auto slot =
        std::find_if(slots_.begin(), slots_.end(), [&](const auto& slot) { return slot->handle == submission.model; });
    // The model is still here: it is not freed while it has posted submissions (see Reap).
    (*slot)->scheduler->Add(std::move(submission.request), std::move(submission.sink), std::move(submission.control),
                            submission.arrival);
    --submission.model->posted_;
  }
  return !stopping;
}

void ServingEngine::RunLoad(PendingLoad& load) {
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Create(*backend_, *load.host, load.model_options);
  load.host.reset();  // uploaded (or failed): the engine keeps no host copy
  if (!model.ok()) {
    load.result.set_value(
        absl::Status(model.status().code(), absl::StrCat(Describe(load.label), ": ", model.status().message())));
    return;
  }
  auto slot = std::make_unique<ModelSlot>();
  slot->model = *std::move(model);
  slot->scheduler = std::make_unique<Scheduler>(*slot->model, load.tokenizer.get(), load.label, load.scheduler_options,
                                                observer_.get());
  slot->handle = std::shared_ptr<LoadedModel>(new LoadedModel(
      this, load.label, slot->model->config(), slot->scheduler->limits(), load.tokenizer, load.scheduler_options,
      slot->scheduler->gauges(), slot->model->kv_pool(), slot->model->weight_bytes()));
  {
    std::lock_guard lock(mutex_);
    models_.push_back(slot->handle);
    device_memory_ = backend_->memory_usage();
  }
  load.result.set_value(slot->handle);
  slots_.push_back(std::move(slot));
}

void ServingEngine::Reap() {
  std::vector<std::unique_ptr<ModelSlot>> freed;
  for (auto it = slots_.begin(); it != slots_.end();) {
    const LoadedModel& handle = *(*it)->handle;
    if (handle.state_ == ModelState::kUnloading && (*it)->scheduler->idle() && handle.posted_ == 0) {
      freed.push_back(std::move(*it));
      it = slots_.erase(it);
    } else {
      ++it;
    }
  }
  Free(freed);
  std::lock_guard lock(mutex_);
  idle_ = !HasRequests();
  if (idle_) settled_.notify_all();
}

void ServingEngine::Free(std::vector<std::unique_ptr<ModelSlot>>& slots) {
  if (slots.empty()) return;
  std::vector<std::shared_ptr<LoadedModel>> handles;
  for (auto& slot : slots) handles.push_back(slot->handle);
  slots.clear();  // their schedulers, then their models: device memory is freed here, on the engine thread
  {
    std::lock_guard lock(mutex_);
    std::erase_if(models_,
                  [&](const auto& model) { return std::find(handles.begin(), handles.end(), model) != handles.end(); });
    device_memory_ = backend_->memory_usage();
  }
  // Last, so that whoever sees kUnloaded finds the stats updated.
  for (auto& handle : handles) handle->state_ = ModelState::kUnloaded;
}

bool ServingEngine::HasRequests() const {
  return std::any_of(slots_.begin(), slots_.end(), [](const auto& slot) { return !slot->scheduler->idle(); });
}

void ServingEngine::EndAll(const absl::Status& status) {
  for (auto& slot : slots_) slot->scheduler->EndAll(FinishReason::kCancelled, status);
}

void ServingEngine::Stop() {
  EndAll(absl::UnavailableError("the engine is shutting down"));
  Free(slots_);
  std::lock_guard lock(mutex_);
  idle_ = true;
  settled_.notify_all();
}

}  // namespace nibble
